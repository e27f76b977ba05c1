package model

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kinds of message that report on, or change, a referral after it was
// accepted (flows F2 to F8). Each travels as an Event attached to the
// referral it is about (Referral.Event), so that the same per-recipient cut
// applies to the referral's fields and to the event's.
const (
	// KindOrderStatus is a provider's order status event (F3).
	KindOrderStatus Kind = "order-status"
	// KindSafeguarding is a safeguarding concern raised by the provider
	// (F4). It travels on urgent queues and never waits behind routine
	// traffic.
	KindSafeguarding Kind = "safeguarding"
	// KindEquipmentIssue is an equipment issue the provider reports:
	// unsafe, unsuitable, failed installation (F5).
	KindEquipmentIssue Kind = "equipment-issue"
	// KindComplaint is a council complaint about the service raised
	// against an order (F6).
	KindComplaint Kind = "complaint"
	// KindComplaintReply is the provider's reply to a complaint (F7).
	KindComplaintReply Kind = "complaint-reply"
	// KindCancellation is the NHS cancelling an order (F2).
	KindCancellation Kind = "cancellation"
	// KindAmendment is the NHS changing an order (F2): the stored referral
	// is replaced by the amended one, and the copies cut from it.
	KindAmendment Kind = "amendment"
	// KindCollection is a request to collect equipment no longer needed
	// (F8), from the NHS or a council.
	KindCollection Kind = "collection"
)

// KindStatistics is the month's anonymised statistics of the service, as
// published for commissioners (issue 19, flow F9). It is about no
// referral and no person: a copy of it (Delivery.Statistics) carries a
// published table, never a referral, and is not among Kinds.
const KindStatistics Kind = "statistics"

// Kinds returns every kind of message about a referral, the referral first.
func Kinds() []Kind {
	return []Kind{KindReferral, KindOrderStatus, KindSafeguarding, KindEquipmentIssue, KindComplaint,
		KindComplaintReply, KindCancellation, KindAmendment, KindCollection}
}

// Urgent reports whether messages of kind k must never wait behind routine
// traffic: they travel on a partner's urgent queue.
func (k Kind) Urgent() bool { return k == KindSafeguarding }

// OrderStatus is where an equipment order stands, as the provider reports
// it (KindOrderStatus) or as the hub records it.
type OrderStatus string

// Order statuses, in the order an order normally passes through them.
const (
	StatusOrdered             OrderStatus = "ordered" // accepted by the hub, not yet by the provider
	StatusAccepted            OrderStatus = "accepted"
	StatusScheduled           OrderStatus = "scheduled"
	StatusOutForDelivery      OrderStatus = "out-for-delivery"
	StatusDelivered           OrderStatus = "delivered"
	StatusInstalled           OrderStatus = "installed"
	StatusFailedDelivery      OrderStatus = "failed-delivery"
	StatusCollectionRequested OrderStatus = "collection-requested"
	StatusCollected           OrderStatus = "collected"
	StatusCancelled           OrderStatus = "cancelled"
)

// OrderStatuses returns every status a provider may report.
func OrderStatuses() []OrderStatus {
	return []OrderStatus{StatusAccepted, StatusScheduled, StatusOutForDelivery, StatusDelivered, StatusInstalled,
		StatusFailedDelivery, StatusCollectionRequested, StatusCollected, StatusCancelled}
}

// next lists, for each status, the statuses an order may move to from it,
// in the order an order normally passes through them. The delivery path is
// ordered -> accepted -> scheduled -> out-for-delivery -> delivered ->
// installed, and an order may skip forward along it (a same-day delivery
// goes from ordered straight to delivered); a failed delivery may be
// followed by a new booking, a new attempt or the delivery itself; only
// delivered equipment is asked for and collected. Repeating the current
// status is also allowed, except after a final status (a rescheduled date,
// a resent event). Anything else is refused: going back along the path, or
// anything after collected or cancelled.
var next = map[OrderStatus][]OrderStatus{
	StatusOrdered:             {StatusAccepted, StatusScheduled, StatusOutForDelivery, StatusDelivered, StatusInstalled, StatusFailedDelivery, StatusCancelled},
	StatusAccepted:            {StatusScheduled, StatusOutForDelivery, StatusDelivered, StatusInstalled, StatusFailedDelivery, StatusCancelled},
	StatusScheduled:           {StatusOutForDelivery, StatusDelivered, StatusInstalled, StatusFailedDelivery, StatusCancelled},
	StatusOutForDelivery:      {StatusDelivered, StatusInstalled, StatusFailedDelivery},
	StatusFailedDelivery:      {StatusScheduled, StatusOutForDelivery, StatusDelivered, StatusInstalled, StatusCancelled},
	StatusDelivered:           {StatusInstalled, StatusCollectionRequested, StatusCollected},
	StatusInstalled:           {StatusCollectionRequested, StatusCollected},
	StatusCollectionRequested: {StatusCollected},
	StatusCollected:           {},
	StatusCancelled:           {},
}

// Valid reports whether s is a known status.
func (s OrderStatus) Valid() bool {
	_, ok := next[s]
	return ok
}

// Terminal reports whether nothing can follow s.
func (s OrderStatus) Terminal() bool { return s.Valid() && len(next[s]) == 0 }

// Next returns the statuses an order at s may move to, besides reporting s
// again (allowed unless s is Terminal or StatusOrdered, which only the hub
// sets); nil for a final or unknown status.
// The empty status is StatusOrdered.
func (s OrderStatus) Next() []OrderStatus {
	if s == "" {
		s = StatusOrdered
	}
	if len(next[s]) == 0 {
		return nil
	}
	return append([]OrderStatus(nil), next[s]...)
}

// TransitionError is CanMove's refusal of a move it does not allow. Its
// message names the statuses the order may move to instead, and holds no
// personal data (only order statuses).
type TransitionError struct {
	From, To OrderStatus
	// Allowed is From.Next(): empty when From is final.
	Allowed []OrderStatus
}

func (e *TransitionError) Error() string {
	if len(e.Allowed) == 0 {
		return fmt.Sprintf("an order cannot move from %q to %q: %q is final, nothing may follow it", e.From, e.To, e.From)
	}
	names := make([]string, len(e.Allowed))
	for i, s := range e.Allowed {
		names[i] = string(s)
	}
	again := ""
	if e.From != StatusOrdered { // the hub's own status, never reported
		again = fmt.Sprintf(" (or report %q again)", e.From)
	}
	return fmt.Sprintf("an order cannot move from %q to %q: from %q it may move to %s%s",
		e.From, e.To, e.From, strings.Join(names, ", "), again)
}

// CanMove reports whether an order may move from one status to another (see
// next): an unknown status is an error, and a move it does not allow is a
// *TransitionError naming the moves allowed.
func CanMove(from, to OrderStatus) error {
	if !to.Valid() || to == StatusOrdered {
		return fmt.Errorf("unknown order status %q", to)
	}
	if from == "" {
		from = StatusOrdered
	}
	if !from.Valid() {
		return fmt.Errorf("unknown order status %q", from)
	}
	if from == to && !from.Terminal() {
		return nil
	}
	if slices.Contains(next[from], to) {
		return nil
	}
	return &TransitionError{From: from, To: to, Allowed: from.Next()}
}

// Issue types a provider reports with KindEquipmentIssue.
const (
	IssueUnsafe             = "unsafe"
	IssueUnsuitable         = "unsuitable"
	IssueFailedInstallation = "failed-installation"
)

// Collection reasons (KindCollection).
const (
	CollectionNoLongerNeeded = "no-longer-needed"
	CollectionMoved          = "moved"
	CollectionDied           = "died"
)

// References are the identifiers each partner gave the referral: the
// cross-reference that lets an event from any partner find it. They hold no
// personal data and every copy keeps them.
type References struct {
	// ServiceRequestID is the NHS ServiceRequest's id (or fullUrl).
	ServiceRequestID string `json:"serviceRequestId,omitempty"`
	// TaskID is the id of the FHIR Task the hub keeps at the requester's
	// endpoint for this referral.
	TaskID string `json:"taskId,omitempty"`
	// OrderReference is the provider's order reference.
	OrderReference string `json:"orderReference,omitempty"`
	// CaseReference is the council's case reference (of the recipient
	// council, in a council's copy).
	CaseReference string `json:"caseReference,omitempty"`
	// Council is the partner id of the council of the person's area.
	Council string `json:"council,omitempty"`
	// RequesterODS is the ODS code of the requesting organisation.
	RequesterODS string `json:"requesterOds,omitempty"`
}

// Event is something that happened to an accepted referral, reported by a
// partner (or the NHS), to be passed on to the others.
//
// ID, Kind, ReferralID, From, FromEventID, OccurredAt, ReceivedAt,
// Status and the complaint's Reference are operational and every copy keeps
// them; the other fields are disclosed only when a recipient's field list
// names them (the event.* and complaint.* fields of the catalogue).
type Event struct {
	// ID is the hub's id of the event (a UUID).
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// ReferralID is the hub's id of the referral the event is about.
	ReferralID string `json:"referralId"`
	// From is who reported it: a partner id, or "nhs".
	From string `json:"from"`
	// FromEventID is the reporter's own id of the event, used to recognise
	// a resent event.
	FromEventID string    `json:"fromEventId,omitempty"`
	OccurredAt  time.Time `json:"occurredAt"`
	ReceivedAt  time.Time `json:"receivedAt"`

	// Status is the order status the event reports or causes.
	Status OrderStatus `json:"status,omitempty"`
	// ScheduledDate is the delivery or collection date (YYYY-MM-DD).
	ScheduledDate string `json:"scheduledDate,omitempty"`
	// Reason is why: a failed delivery's reason, an equipment issue's type,
	// a cancellation's or a collection's reason.
	Reason Coded `json:"reason,omitempty"`
	// Description is the reporter's free text: what is wrong with the
	// equipment, what the safeguarding concern is, what was amended.
	Description string `json:"description,omitempty"`
	// Complaint is set for KindComplaint and KindComplaintReply.
	Complaint *Complaint `json:"complaint,omitempty"`
}

// Complaint is a complaint about the service, raised by a council against
// an order, and the provider's reply.
type Complaint struct {
	// Reference is the council's complaint (case) reference; operational.
	Reference string `json:"reference"`
	// Council is the partner id of the council that raised it; operational.
	Council  string `json:"council,omitempty"`
	Category string `json:"category,omitempty"`
	Summary  string `json:"summary,omitempty"`
	// ContactAllowed is whether the council lets the provider contact the
	// complainant; Contact is empty unless it does.
	ContactAllowed bool           `json:"contactAllowed"`
	Contact        []ContactPoint `json:"contact,omitempty"`
	// Reply is the provider's answer (KindComplaintReply).
	Reply string `json:"reply,omitempty"`
}
