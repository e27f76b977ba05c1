package store

import (
	"errors"

	"github.com/iceshub/iceshub/internal/model"
)

// Case purposes recorded in case_refs.
const (
	CaseForOrder        = "order"
	CaseForSafeguarding = "safeguarding"
	CaseForComplaint    = "complaint"
)

// RefUpdate records what a step learnt about a referral's references, as
// part of a Batch. Empty fields change nothing.
type RefUpdate struct {
	ReferralID string
	// Council is the council of the person's area, chosen at fan-out.
	Council string
	// OrderReference and OrderSentTo: the provider accepted the order.
	OrderReference string
	OrderSentTo    string
	// TaskID is the id of the NHS Task the hub keeps for the referral.
	TaskID string
	// Case is a council's new case reference.
	Case *CaseRef
}

// CaseRef is one council case about a referral.
type CaseRef struct {
	Council   string
	Reference string
	// Purpose is CaseForOrder, CaseForSafeguarding or CaseForComplaint.
	Purpose string
}

// ErrAmbiguous is returned when a reference names more than one referral.
var ErrAmbiguous = errors.New("store: the reference names more than one referral")

// DeliveryState is what the delivery step must know before it sends a copy.
type DeliveryState struct {
	// Delivered: the partner already accepted a copy with this key.
	Delivered bool
	// LaneBusy: the lane has a parked copy, which this one must wait
	// behind.
	LaneBusy bool
	// Refs are the referral's references as the recipient sees them.
	Refs model.References
}
