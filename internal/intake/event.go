package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
)

// TopicEventReceived is the durable topic of accepted events about
// referrals (flows F2 to F8); TopicUrgentEventReceived carries the urgent
// kinds (model.Kind.Urgent) so that they never queue behind routine ones.
const (
	TopicEventReceived       = "event.received"
	TopicUrgentEventReceived = "event.urgent"
)

// EventTopic returns the topic an event of kind k is published to.
func EventTopic(k model.Kind) string {
	if k.Urgent() {
		return TopicUrgentEventReceived
	}
	return TopicEventReceived
}

// MetaEventID is the metadata key of the hub's event id.
const MetaEventID = "event_id"

// Lookup names how an event finds its referral: by one of the references a
// partner knows it by. The first non-empty field wins, in this order:
// ReferralID, ServiceRequestID, OrderReference, CaseReference (with Council),
// ComplaintReference (with Council).
type Lookup struct {
	ReferralID         string
	ServiceRequestID   string
	OrderReference     string
	CaseReference      string
	ComplaintReference string
	// Council is the council whose case or complaint reference it is.
	Council string
}

// EventSubmission is one event an inbound adapter has parsed and checked.
type EventSubmission struct {
	// Keys de-duplicate repeated requests, as for Submission.
	Keys []string
	// Event is the event; its ReferralID is filled in from Find.
	Event model.Event
	// Find says which referral the event is about.
	Find Lookup
	// Amended is, for model.KindAmendment, the referral as it now stands;
	// it replaces the stored one (keeping its id).
	Amended *model.Referral
	// Response is what the sender is told on success. Its body may name the
	// referral with the placeholder ReferralIDPlaceholder, replaced once
	// the referral is found.
	Response Response
	// Sender is the partner that sent the event: it must be one that may
	// touch the referral (Sender.MayTouch).
	Sender Sender
}

// EventMessage is the payload of a message on the event topics.
type EventMessage struct {
	Event   model.Event     `json:"event"`
	Amended *model.Referral `json:"amended,omitempty"`
}

// Refusals of an event, each wrapped with detail. Adapters answer them with a
// 4xx: ErrUnknownReferral 404, ErrImpossibleTransition and ErrConflict 409,
// ErrNotYours 403. The refused event is recorded (Rejection), never applied.
var (
	ErrUnknownReferral      = errors.New("no referral is known by that reference")
	ErrImpossibleTransition = errors.New("impossible order status change")
	ErrNotYours             = errors.New("the referral is not the sender's to report on")
	// ErrConflict: the referral changed while the event was checked; the
	// sender may send it again.
	ErrConflict = errors.New("the referral changed meanwhile")
)

// Rejection records an event that was refused, without personal data.
type Rejection struct {
	At          time.Time
	From        string
	Kind        string
	FromEventID string
	ReferralID  string
	Reason      string
}

// Record is what the hub keeps about an accepted referral for the events
// that follow it.
type Record struct {
	Referral model.Referral
	Refs     model.References
	Status   model.OrderStatus
	// OrderSentTo is the partner the order was delivered to, when it was.
	OrderSentTo string
}

// EventStore is what AcceptEvent needs from storage.
type EventStore interface {
	// FindReferral returns the record of the referral l names.
	FindReferral(ctx context.Context, l Lookup) (Record, bool, error)
	// AcceptEventOnce is AcceptOnce for events: when no key has been seen it
	// also moves the referral's status from Change.From to Change.To (when
	// To is set), failing with ErrConflict if the status is no longer From,
	// replaces the stored referral with Amended when not nil, and records
	// Case, all in the same transaction as the keys and the message.
	AcceptEventOnce(ctx context.Context, c EventCommit) (Response, bool, error)
	// RecordRejection keeps a refused event for operators.
	RecordRejection(ctx context.Context, r Rejection) error
	// StoredResponse returns the answer stored with the first of keys seen
	// before, if any.
	StoredResponse(ctx context.Context, keys []string) (Response, bool, error)
}

// EventCommit is everything AcceptEventOnce writes together.
type EventCommit struct {
	Keys     []string
	Response Response
	Topic    string
	Message  *message.Message
	Change   StatusChange
	Amended  *model.Referral
	// Case is a council case the event makes known (a complaint's).
	Case *CaseRef
	// Stats is what the event adds to the statistics of the service,
	// written in the same transaction (counted once, like the event).
	Stats []stats.Increment
}

// CaseRef is a council's case reference about a referral.
type CaseRef struct {
	Council, Reference, Purpose string
}

// StatusChange is a compare-and-set of a referral's order status.
type StatusChange struct {
	ReferralID string
	From, To   model.OrderStatus
}

// ReferralIDPlaceholder in an EventSubmission's Response body is replaced by
// the referral's id.
const ReferralIDPlaceholder = "{{referral-id}}"

// Events is the use case "accept an event about a referral": it finds the
// referral by any partner's reference, refuses what cannot apply to it
// (recording the refusal), and stores the event durably, exactly once per
// idempotency key, before the sender is told it was accepted. It is safe for
// concurrent use.
type Events struct {
	store EventStore
	now   func() time.Time
	newID func() string
	// receiptWait: see DefaultReceiptWait.
	receiptWait time.Duration
}

// DefaultReceiptWait is how long an event waits for a partner's reference
// the hub learns from that partner's own answer (an order reference, a
// case reference, the order having been sent to the provider) when it is
// not recorded yet. A provider can report on an order in the moment
// between answering the hub's order and the hub committing that answer;
// such an event is held that long rather than refused as unknown.
const DefaultReceiptWait = 2 * time.Second

// receiptPoll is how often a held event looks for the reference again.
const receiptPoll = 25 * time.Millisecond

// WithReceiptWait sets how long events wait for a reference learnt from a
// partner's answer (DefaultReceiptWait); zero refuses them at once. It
// returns e.
func (e *Events) WithReceiptWait(d time.Duration) *Events {
	e.receiptWait = max(d, 0)
	return e
}

// find looks up the referral sub names, waiting up to receiptWait while what
// it needs is learnt from a partner's answer and not recorded yet.
func (e *Events) find(ctx context.Context, sub EventSubmission) (Record, bool, error) {
	deadline := time.Now().Add(e.receiptWait)
	for {
		rec, found, err := e.store.FindReferral(ctx, sub.Find)
		if err != nil || !awaitingReceipt(sub, rec, found) || !time.Now().Before(deadline) {
			return rec, found, err
		}
		t := time.NewTimer(receiptPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return rec, found, nil
		case <-t.C:
		}
	}
}

// awaitingReceipt reports whether the lookup may succeed once a partner's
// answer is recorded: the reference is one a partner gave in its answer,
// or the event must come from the partner the order was sent to and no
// order is recorded as sent yet.
func awaitingReceipt(sub EventSubmission, rec Record, found bool) bool {
	if !found {
		return sub.Find.OrderReference != "" || sub.Find.CaseReference != ""
	}
	return sub.Sender.Kind == SenderProvider && rec.OrderSentTo == ""
}

// NewEvents returns Events storing through s. now defaults to time.Now.
func NewEvents(s EventStore, now func() time.Time) (*Events, error) {
	if s == nil {
		return nil, errors.New("intake: nil event store")
	}
	if now == nil {
		now = time.Now
	}
	return &Events{store: s, now: now, newID: NewID, receiptWait: DefaultReceiptWait}, nil
}

// AcceptEvent finds the referral sub.Find names, checks that the event may
// apply to it, and commits the event on EventTopic(kind) together with its
// idempotency keys and the status change it causes. It returns only after
// the commit. A duplicate (any key seen before) gets the first answer and
// changes nothing, even when the event would no longer apply.
//
// Refusals wrap ErrUnknownReferral, ErrNotYours or ErrImpossibleTransition
// and are recorded with RecordRejection; ErrConflict means the referral
// changed meanwhile (retried once here before it is returned).
func (e *Events) AcceptEvent(ctx context.Context, sub EventSubmission) (Outcome, error) {
	if len(sub.Keys) == 0 || sub.Event.Kind == "" {
		return Outcome{}, errors.New("intake: event submission needs a kind and at least one idempotency key")
	}
	var out Outcome
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		out, err = e.accept(ctx, sub)
		if !errors.Is(err, ErrConflict) {
			break
		}
	}
	return out, err
}

func (e *Events) accept(ctx context.Context, sub EventSubmission) (Outcome, error) {
	// A resent event gets its first answer even when it would no longer
	// apply (a second cancellation of a cancelled order).
	if first, seen, err := e.store.StoredResponse(ctx, sub.Keys); err != nil {
		return Outcome{}, fmt.Errorf("intake: look up idempotency keys: %w", err)
	} else if seen {
		return Outcome{Response: first, Duplicate: true}, nil
	}
	ev := sub.Event
	rec, found, err := e.find(ctx, sub)
	if err != nil {
		return Outcome{}, fmt.Errorf("intake: find referral: %w", err)
	}
	if !found {
		return Outcome{}, e.refuse(ctx, ev, "", fmt.Errorf("%w (%s)", ErrUnknownReferral, sub.Find))
	}
	ev.ReferralID = rec.Referral.ID
	if err := sub.Sender.MayTouch(rec); err != nil {
		return Outcome{}, e.refuse(ctx, ev, rec.Referral.ID, err)
	}
	change := StatusChange{ReferralID: rec.Referral.ID, From: rec.Status}
	if ev.Status != "" {
		if err := model.CanMove(rec.Status, ev.Status); err != nil {
			return Outcome{}, e.refuse(ctx, ev, rec.Referral.ID, fmt.Errorf("%w: %w", ErrImpossibleTransition, err))
		}
		change.To = ev.Status
	}
	if ev.ID == "" {
		ev.ID = e.newID()
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = e.now()
	}
	var amended *model.Referral
	if sub.Amended != nil {
		a := *sub.Amended
		a.ID, a.ReceivedAt = rec.Referral.ID, rec.Referral.ReceivedAt
		amended = &a
	}
	payload, err := json.Marshal(EventMessage{Event: ev, Amended: amended})
	if err != nil {
		return Outcome{}, fmt.Errorf("intake: encode event: %w", err)
	}
	msg := message.NewMessage(ev.ID, payload)
	msg.Metadata.Set(MetaKind, string(ev.Kind))
	msg.Metadata.Set(MetaReferralID, ev.ReferralID)
	msg.Metadata.Set(MetaEventID, ev.ID)
	if c := rec.Referral.Source.CorrelationID; c != "" {
		msg.Metadata.Set(MetaCorrelationID, c)
	}
	resp := sub.Response
	resp.Body = []byte(strings.ReplaceAll(string(resp.Body), ReferralIDPlaceholder, rec.Referral.ID))
	commit := EventCommit{Keys: sub.Keys, Response: resp, Topic: EventTopic(ev.Kind), Message: msg, Change: change, Amended: amended,
		Stats: stats.ForEvent(&rec.Referral, rec.Refs.Council, &ev, change.From, change.To)}
	if c := ev.Complaint; ev.Kind == model.KindComplaint && c != nil && c.Council != "" && c.Reference != "" {
		commit.Case = &CaseRef{Council: c.Council, Reference: c.Reference, Purpose: "complaint"}
	}
	stored, dup, err := e.store.AcceptEventOnce(ctx, commit)
	if err != nil {
		return Outcome{}, fmt.Errorf("intake: accept %s event: %w", ev.Kind, err)
	}
	return Outcome{Response: stored, Duplicate: dup}, nil
}

// refuse records the refusal of ev and returns err. A failure to record is
// joined to err: the sender is refused either way.
func (e *Events) refuse(ctx context.Context, ev model.Event, referralID string, err error) error {
	rerr := e.store.RecordRejection(ctx, Rejection{
		At: e.now(), From: ev.From, Kind: string(ev.Kind), FromEventID: ev.FromEventID, ReferralID: referralID, Reason: err.Error(),
	})
	if rerr != nil {
		return errors.Join(err, fmt.Errorf("intake: record refusal: %w", rerr))
	}
	return err
}

// String names the reference a Lookup uses, without personal data.
func (l Lookup) String() string {
	switch {
	case l.ReferralID != "":
		return "referral " + l.ReferralID
	case l.ServiceRequestID != "":
		return "ServiceRequest " + l.ServiceRequestID
	case l.OrderReference != "":
		return "order " + l.OrderReference
	case l.CaseReference != "":
		return "case " + l.CaseReference + " of " + l.Council
	case l.ComplaintReference != "":
		return "complaint " + l.ComplaintReference + " of " + l.Council
	}
	return "no reference"
}
