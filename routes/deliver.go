package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

type deliver struct {
	partner string
	// partnerKind is config.KindProvider, KindCouncil or KindNHS: it says
	// which reference a partner's receipt is.
	partnerKind string
	sender      Sender
	store       Store
	park        Park
	now         func() time.Time
	log         *slog.Logger
	// requests bounds the requests this queue has open to the partner
	// (Config.Requests); nil, no bound.
	requests chan struct{}
	// gate holds deliveries while the store cannot record outcomes; warn
	// summarises the partner's failures. Both are shared.
	gate *storeGate
	warn *partnerWarnings
}

func newRequestLimit(n int) chan struct{} {
	if n <= 0 {
		return nil
	}
	return make(chan struct{}, n)
}

// Metadata of a parked delivery offered again (parkedSubscriber).
const (
	metaParkedID    = "parked_id"
	metaAttempts    = "attempts"
	metaFirstFailed = "first_failed_ms"
)

// handle sends one copy to the partner, from the partner's queue or, when
// offered again, from the parked lanes. Success records the receipt, the
// disclosure and the reference the partner gave, together; a permanent
// refusal records a dead letter and a failed disclosure; a transient failure
// parks the copy for a later attempt (parked.go). Either way the message is
// acknowledged and the queue moves on to other referrals, while a copy whose
// referral already has a parked copy to this partner parks behind it, so
// copies about one referral keep their order. Urgent copies never wait
// behind another. Only a store failure returns an error, so that the
// message is offered again.
func (d *deliver) handle(msg *message.Message) error {
	ctx := msg.Context()
	var del model.Delivery
	if err := model.UnmarshalDelivery(msg.Payload, &del); err != nil {
		d.log.Error("undecodable delivery dead-lettered", "partner", d.partner, "message_id", msg.UUID, "error", err)
		b := store.Batch{DeadLetters: []store.DeadLetter{{
			At: d.now(), Recipient: d.partner, IdempotencyKey: msg.UUID, Error: "the stored delivery could not be decoded", Payload: msg.Payload,
		}}}
		if p := parkedOf(msg); p != nil {
			b.Unpark = []int64{p.ID}
		}
		return d.store.Commit(ctx, b)
	}
	parked := parkedOf(msg)
	lane := laneOf(del)
	casePurpose := "" // only councils have cases
	if d.partnerKind == config.KindCouncil {
		casePurpose = store.CaseForOrder
	}
	state, err := d.store.DeliveryState(ctx, del.IdempotencyKey, d.partner, lane, del.Referral.ID, casePurpose)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", d.partner, err)
	}
	if state.Delivered {
		d.log.Info("delivery already made; skipped", "partner", d.partner, "referral_id", del.Referral.ID, "idempotency_key", del.IdempotencyKey)
		if parked != nil {
			return d.store.Commit(ctx, store.Batch{Unpark: []int64{parked.ID}})
		}
		return nil
	}
	// A copy from the queue waits behind a parked one about the same
	// referral; one offered from the lane is its first; an urgent one
	// never waits.
	if parked == nil && !del.Kind.Urgent() && state.LaneBusy {
		d.log.Info("delivery waits behind an earlier one about the same referral", "partner", d.partner, "referral_id", del.Referral.ID,
			"kind", del.Kind, "idempotency_key", del.IdempotencyKey)
		now := d.now()
		return d.store.Commit(ctx, store.Batch{Park: []store.Parked{{
			Partner: d.partner, Lane: lane, Kind: string(del.Kind), ReferralID: del.Referral.ID, IdempotencyKey: del.IdempotencyKey,
			Payload: msg.Payload, NextAt: now, FirstFailed: now, LastError: "waiting behind an earlier delivery about the same referral",
		}}})
	}
	del.Refs = state.Refs
	if err := d.gate.wait(ctx); err != nil {
		return fmt.Errorf("deliver to %s: %w", d.partner, err)
	}
	release, err := d.acquire(ctx)
	if err != nil {
		return err
	}
	started := d.now()
	receipt, sendErr := func() (model.Receipt, error) {
		defer release() // even if the sender panics
		return d.sender.Send(ctx, del)
	}()
	// The record lists what the payload held, as the sender's mapping
	// encoded it, not what the route allows (del.Fields): a field the copy
	// did not hold was not disclosed. Nothing encoded, nothing listed.
	fields := receipt.Fields
	if fields == nil {
		fields = []string{}
	}
	disclosure := store.Disclosure{
		At: d.now(), ReferralID: del.Referral.ID, CorrelationID: del.Referral.Source.CorrelationID,
		Recipient: d.partner, Kind: string(del.Kind), Fields: fields, Purpose: del.Purpose, LawfulBasis: del.LawfulBasis,
		Subject: del.Subject,
	}
	var b store.Batch
	if parked != nil {
		b.Unpark = []int64{parked.ID}
	}
	switch {
	case sendErr == nil:
		disclosure.Outcome = store.OutcomeSent
		b.Disclosures = []store.Disclosure{disclosure}
		b.Delivered = []store.Delivered{{
			At: d.now(), IdempotencyKey: del.IdempotencyKey, Recipient: d.partner, Kind: string(del.Kind),
			ReferralID: del.Referral.ID, PartnerReference: receipt.PartnerReference, StatusCode: receipt.StatusCode,
		}}
		if u, ok := d.learnt(del, receipt); ok {
			b.Refs = []store.RefUpdate{u}
		}
		b.Stats = d.orderPlaced(ctx, del, state.Refs.Council)
		if err := d.gate.recordSent(ctx, d.store, d.partner, b); err != nil {
			// The partner has it; offered again after a restart, it is
			// sent with the same Idempotency-Key, which the partner
			// recognises.
			return fmt.Errorf("deliver to %s: record receipt: %w", d.partner, err)
		}
		d.warn.delivered()
		d.log.Info("delivered", "partner", d.partner, "referral_id", del.Referral.ID, "kind", del.Kind,
			"idempotency_key", del.IdempotencyKey, "ms", d.now().Sub(started).Milliseconds())
		return nil
	case delivery.IsPermanent(sendErr):
		return d.deadLetter(ctx, b, disclosure, del, msg.Payload, sendErr, "refused by partner: "+sendErr.Error())
	}

	return d.parkFailed(ctx, b, disclosure, del, msg.Payload, parked, lane, sendErr)
}

// parkFailed records a copy that failed transiently: parked in its lane for a
// later attempt, or rescheduled when it came from the lane; dead-lettered
// once it has been failing for the park's horizon.
func (d *deliver) parkFailed(ctx context.Context, b store.Batch, disclosure store.Disclosure, del model.Delivery, payload []byte, parked *store.Parked, lane string, sendErr error) error {
	now := d.now()
	if parked == nil {
		b.Park = []store.Parked{{
			Partner: d.partner, Lane: lane, Urgent: del.Kind.Urgent(), Kind: string(del.Kind), ReferralID: del.Referral.ID,
			IdempotencyKey: del.IdempotencyKey, Payload: payload, Attempts: 1, NextAt: now.Add(d.park.wait(1, sendErr)),
			FirstFailed: now, LastError: sendErr.Error(),
		}}
	} else {
		attempts := parked.Attempts + 1
		if now.Sub(parked.FirstFailed) >= d.park.Horizon {
			return d.deadLetter(ctx, b, disclosure, del, payload, sendErr,
				fmt.Sprintf("gave up after %d attempts over %s: %s", attempts, d.park.Horizon, sendErr.Error()))
		}
		b.Reschedule = []store.Reschedule{{ID: parked.ID, Attempts: attempts, NextAt: now.Add(d.park.wait(attempts, sendErr)), LastError: sendErr.Error()}}
		b.Unpark = nil
	}
	if err := d.gate.recordSent(ctx, d.store, d.partner, b); err != nil {
		return fmt.Errorf("deliver to %s: park: %w", d.partner, err)
	}
	d.warn.parked(del.Referral.ID, del.Kind, sendErr)
	return nil
}

// acquire takes one of the queue's requests to the partner, waiting for
// one to be free, and returns its release; a message whose context ends
// meanwhile, or whose queue is stopping (WithStopping), is offered again.
func (d *deliver) acquire(ctx context.Context) (release func(), err error) {
	if d.requests == nil {
		return func() {}, nil
	}
	var stopping <-chan struct{}
	if s, ok := ctx.Value(stoppingKey{}).(context.Context); ok {
		stopping = s.Done()
	}
	select {
	case d.requests <- struct{}{}:
		return func() { <-d.requests }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("deliver to %s: waiting for a free request: %w", d.partner, ctx.Err())
	case <-stopping:
		return nil, fmt.Errorf("deliver to %s: %w", d.partner, ErrStopped)
	}
}

// ErrStopped is returned by a delivery that was still waiting for a free
// request to its partner when its queue stopped (WithStopping): it did not
// start, sent nothing, and its message is offered again after a restart.
// It is not a failure of the delivery.
var ErrStopped = errors.New("the queue stopped before a request to the partner was free; the copy is offered again on the next start")

type stoppingKey struct{}

// WithStopping returns ctx carrying stopping, the context of a message as
// its queue gave it, for a handler that runs on a context of its own so
// that an attempt already started finishes after the queue stops (the
// hub's finishInFlight): a delivery still waiting for a free request when
// stopping ends does not start, and its message is offered again.
func WithStopping(ctx, stopping context.Context) context.Context {
	return context.WithValue(ctx, stoppingKey{}, stopping)
}

// deadLetter records a delivery that will not succeed as it stands.
func (d *deliver) deadLetter(ctx context.Context, b store.Batch, disclosure store.Disclosure, del model.Delivery, payload []byte, sendErr error, detail string) error {
	disclosure.Outcome = store.OutcomeFailed
	disclosure.Detail = detail
	b.Disclosures = []store.Disclosure{disclosure}
	b.DeadLetters = []store.DeadLetter{{
		At: d.now(), Recipient: d.partner, Kind: string(del.Kind), ReferralID: del.Referral.ID,
		IdempotencyKey: del.IdempotencyKey, StatusCode: statusOf(sendErr), PartnerAnswer: answerOf(sendErr),
		Error: detail, Payload: payload,
	}}
	if err := d.gate.recordSent(ctx, d.store, d.partner, b); err != nil {
		return fmt.Errorf("deliver to %s: record dead letter: %w", d.partner, err)
	}
	d.log.Error("delivery dead-lettered", "partner", d.partner, "referral_id", del.Referral.ID, "kind", del.Kind, "error", sendErr)
	return nil
}

// learnt returns the reference a partner's receipt gives the referral: the
// provider's order reference, a council's case reference, the NHS Task id.
func (d *deliver) learnt(del model.Delivery, receipt model.Receipt) (store.RefUpdate, bool) {
	ref := receipt.PartnerReference
	if ref == "" {
		return store.RefUpdate{}, false
	}
	u := store.RefUpdate{ReferralID: del.Referral.ID}
	switch {
	case d.partnerKind == config.KindProvider && del.Kind == model.KindReferral:
		u.OrderReference, u.OrderSentTo = ref, d.partner
	case d.partnerKind == config.KindCouncil && del.Kind == model.KindReferral:
		u.Case = &store.CaseRef{Council: d.partner, Reference: ref, Purpose: store.CaseForOrder}
	case d.partnerKind == config.KindCouncil && del.Kind == model.KindSafeguarding:
		u.Case = &store.CaseRef{Council: d.partner, Reference: ref, Purpose: store.CaseForSafeguarding}
	case d.partnerKind == config.KindNHS && fhirmap.UpdatesTask(del.Kind):
		u.TaskID = ref
	default:
		return store.RefUpdate{}, false
	}
	return u, true
}

// orderPlaced returns what the partner's acceptance of del adds to the
// statistics: an order placed when the provider accepted a referral's
// copy, counted with its receipt in the referral's cell; else nothing.
func (d *deliver) orderPlaced(ctx context.Context, del model.Delivery, council string) []stats.Increment {
	if d.partnerKind != config.KindProvider || del.Kind != model.KindReferral {
		return nil
	}
	return stats.ForOrderPlaced(d.cellOf(ctx, del), council, d.now())
}

// cellOf returns the statistics cell of the referral of del, a referral's
// copy: the one it carries, or, for a copy cut before copies carried one,
// the stored referral's (the copy's own fields when it is gone).
func (d *deliver) cellOf(ctx context.Context, del model.Delivery) model.StatsCell {
	if del.Cell != nil {
		return *del.Cell
	}
	if rec, found, err := d.store.FindReferral(ctx, intake.Lookup{ReferralID: del.Referral.ID}); err == nil && found {
		return stats.CellOf(&rec.Referral)
	}
	return stats.CellOf(&del.Referral)
}

// laneOf is the lane of a copy: its referral, so that copies about one
// referral to one partner keep their order; an urgent copy has its own,
// and so has a copy about no referral (the statistics), which nothing
// else needs to follow.
func laneOf(del model.Delivery) string {
	switch {
	case del.Kind.Urgent():
		return "urgent:" + del.IdempotencyKey
	case del.Referral.ID == "":
		return "own:" + del.IdempotencyKey
	}
	return del.Referral.ID
}

// parkedOf returns what the parked lanes said of msg, or nil when msg came
// from the partner's queue.
func parkedOf(msg *message.Message) *store.Parked {
	id, err := strconv.ParseInt(msg.Metadata.Get(metaParkedID), 10, 64)
	if err != nil {
		return nil
	}
	attempts, _ := strconv.Atoi(msg.Metadata.Get(metaAttempts))
	first, _ := strconv.ParseInt(msg.Metadata.Get(metaFirstFailed), 10, 64)
	return &store.Parked{ID: id, Attempts: attempts, FirstFailed: time.UnixMilli(first)}
}

// statusOf returns the partner's HTTP status in err, or 0.
func statusOf(err error) int {
	var de *delivery.Error
	if errors.As(err, &de) {
		return de.StatusCode
	}
	return 0
}

// answerOf returns the start of the partner's answer in err, or "".
func answerOf(err error) string {
	var de *delivery.Error
	if errors.As(err, &de) {
		return de.Body
	}
	return ""
}
