package store

import (
	"encoding/json"
	"errors"
	"fmt"

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
	// Permission is the person's express permission, recorded by an
	// operator when releasing a held copy: it stands for the referral's
	// later messages (RecordedPermission), until an amendment brings a
	// permission of its own.
	Permission *model.Permission
}

// RecordedPermission applies to ref the permission an operator recorded
// for it (RefUpdate.Permission), as an engine keeps it: JSON, "" for none.
// Recorded after the referral's own, it stands in its place; an amendment
// that carries a permission clears it (the engines' amendment writes).
func RecordedPermission(ref *model.Referral, recorded string) error {
	if recorded == "" {
		return nil
	}
	var p model.Permission
	if err := json.Unmarshal([]byte(recorded), &p); err != nil {
		return fmt.Errorf("store: recorded permission of referral %s: %w", ref.ID, err)
	}
	ref.Permission = &p
	return nil
}

// EncodePermission is p as an engine keeps it for RecordedPermission.
func EncodePermission(p *model.Permission) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("store: encode permission: %w", err)
	}
	return string(b), nil
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
