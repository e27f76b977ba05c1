package routes

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/postcode"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/subject"
)

// idempotencyNamespace makes delivery idempotency keys UUIDs derived from the
// referral, recipient and kind: the same on every retry, redelivery, replay
// and restart.
var idempotencyNamespace = uuid.MustParse("6f1d7a52-4c7e-4e55-9d35-2b8f3f0c1a10")

// IdempotencyKey returns the stable key of one recipient's copy of a
// message: id is the referral's id for the referral itself, the event's id
// for an event about it.
func IdempotencyKey(id, recipient string, kind model.Kind) string {
	return uuid.NewSHA1(idempotencyNamespace, []byte(id+"\x00"+recipient+"\x00"+string(kind))).String()
}

// HoldNoCouncil is the reason recorded when no council covers a postcode.
const HoldNoCouncil = "no council covers the person's postcode"

// HoldNoRequesterEndpoint is the reason recorded when no nhs partner serves
// the requesting organisation's ODS code.
const HoldNoRequesterEndpoint = "no NHS endpoint is configured for the requesting organisation"

// Reasons recorded when a route requires the person's express permission
// (config.Route.RequiresPermission) and the referral does not carry it. The
// hold keeps the referral so that an operator can release it once
// permission is recorded.
const (
	HoldNoPermission      = "the person's express permission is not recorded"
	HoldPermissionRefused = "the person's express permission was refused"
)

// permissionHold returns the hold reason for sending ref on route r, or ""
// when r may send: it requires no permission, or the person gave it.
func permissionHold(r config.Route, ref *model.Referral) string {
	switch {
	case !r.RequiresPermission:
		return ""
	case ref.Permission == nil:
		return HoldNoPermission
	case !ref.Permission.Given:
		return HoldPermissionRefused
	}
	return ""
}

// cutter cuts a message about a referral into each recipient's copy under
// the routes.
type cutter struct {
	routes     []config.Route
	councils   *postcode.Table
	requesters map[string]string
	subjects   subject.Key
	now        func() time.Time
	log        *slog.Logger
}

// newCutter checks what a cut needs of cfg: the council table and the
// subject key; the clock defaults to time.Now.
func newCutter(cfg Config, logger *slog.Logger) (*cutter, error) {
	if cfg.Councils == nil {
		return nil, errors.New("routes: nil council postcode table")
	}
	if cfg.SubjectKey.IsZero() {
		return nil, errors.New("routes: no subject key")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &cutter{routes: cfg.Routes, councils: cfg.Councils, requesters: cfg.Requesters, subjects: cfg.SubjectKey, now: cfg.Now, log: logger}, nil
}

// fanout cuts the messages of the referral and event topics.
type fanout struct {
	*cutter
	store Store
}

// handle cuts one accepted referral into each recipient's copy and commits
// all copies, holds and withheld records together. If it fails nothing is
// written and the message is offered again; if the hub crashes after the
// commit but before the acknowledgement the copies are written again with the
// same idempotency keys, which the delivery step recognises.
func (f *fanout) handle(msg *message.Message) error {
	var ref model.Referral
	if err := json.Unmarshal(msg.Payload, &ref); err != nil {
		// Only the hub writes this topic, so this is a bug or corruption:
		// hold the message for a person rather than dropping or looping.
		f.log.Error("undecodable referral held for review", "message_id", msg.UUID, "error", err)
		return f.store.Commit(msg.Context(), store.Batch{Holds: []store.Hold{{
			At: f.now(), ReferralID: msg.Metadata.Get(intake.MetaReferralID), Kind: msg.Metadata.Get(intake.MetaKind),
			Route: "fanout", Reason: "the stored referral could not be decoded", Payload: msg.Payload,
		}}})
	}
	kind := model.Kind(msg.Metadata.Get(intake.MetaKind))
	if kind == "" {
		kind = model.KindReferral
	}
	b, council, err := f.cut(&ref, kind, ref.ID, "", msg.Payload)
	if err != nil {
		return err
	}
	if council != "" {
		b.Refs = append(b.Refs, store.RefUpdate{ReferralID: ref.ID, Council: council})
	}
	if err := f.store.Commit(msg.Context(), b); err != nil {
		return fmt.Errorf("fan out referral %s: %w", ref.ID, err)
	}
	f.logHolds(b)
	return nil
}

// handleEvent cuts an accepted event about a referral (flows F2 to F8) into
// each recipient's copy: the stored full referral with the event attached,
// cut by the route for the event's kind. The event's reporter never gets
// its own event back.
func (f *fanout) handleEvent(msg *message.Message) error {
	ctx := msg.Context()
	var em intake.EventMessage
	if err := json.Unmarshal(msg.Payload, &em); err != nil {
		f.log.Error("undecodable event held for review", "message_id", msg.UUID, "error", err)
		return f.store.Commit(ctx, store.Batch{Holds: []store.Hold{{
			At: f.now(), ReferralID: msg.Metadata.Get(intake.MetaReferralID), Kind: msg.Metadata.Get(intake.MetaKind),
			Route: "events", Reason: "the stored event could not be decoded", Payload: msg.Payload,
		}}})
	}
	ev := em.Event
	rec, found, err := f.store.FindReferral(ctx, intake.Lookup{ReferralID: ev.ReferralID})
	if err != nil {
		return fmt.Errorf("fan out %s event %s: %w", ev.Kind, ev.ID, err)
	}
	if !found {
		// Accepted events always name a recorded referral; a missing record
		// means it was removed meanwhile. Keep the event for a person.
		f.log.Error("event about an unknown referral held for review", "event_id", ev.ID, "referral_id", ev.ReferralID, "kind", ev.Kind)
		return f.store.Commit(ctx, store.Batch{Holds: []store.Hold{{
			At: f.now(), ReferralID: ev.ReferralID, Kind: string(ev.Kind), Route: "events", Reason: "the referral is no longer recorded", Payload: msg.Payload,
		}}})
	}
	full := rec.Referral
	full.Event = &ev
	b, _, err := f.cut(&full, ev.Kind, ev.ID, rec.Refs.Council, msg.Payload)
	if err != nil {
		return err
	}
	if err := f.store.Commit(ctx, b); err != nil {
		return fmt.Errorf("fan out %s event %s: %w", ev.Kind, ev.ID, err)
	}
	f.logHolds(b)
	return nil
}

// cut returns the batch of copies, holds and withheld records for sending
// full, a message of kind, to every recipient its routes name. keyID makes
// the idempotency keys (the referral id, or the event id); council is the
// council already chosen for the referral, if any. For a referral, chosen
// is the council its postcode gave (to record with it), else "".
func (f *cutter) cut(full *model.Referral, kind model.Kind, keyID, council string, payload []byte) (b store.Batch, chosen string, err error) {
	sbj := f.subjects.Of(full.Person.NHSNumber)
	for _, r := range f.routes {
		if r.Message != string(kind) {
			continue
		}
		recipient, reason := f.recipient(r, full, council)
		if reason != "" {
			f.hold(&b, r, full, kind, r.To, reason, "held for review: ", payload, sbj)
			continue
		}
		if full.Event != nil && recipient == full.Event.From {
			continue // never echo an event to whoever reported it
		}
		if kind == model.KindReferral && r.To == config.RecipientCouncil {
			chosen = recipient
		}
		if err := f.cutFor(&b, r, full, kind, keyID, recipient, payload, sbj); err != nil {
			return store.Batch{}, "", err
		}
	}
	return b, chosen, nil
}

// hold adds to b a hold of full's message of kind for recipient (a partner,
// or the route's "to" when none could be found), and its withheld record.
func (f *cutter) hold(b *store.Batch, r config.Route, full *model.Referral, kind model.Kind, recipient, reason, detail string, payload []byte, sbj string) {
	b.Holds = append(b.Holds, store.Hold{At: f.now(), ReferralID: full.ID, Kind: string(kind), Route: recipient, Reason: reason, Payload: payload})
	b.Disclosures = append(b.Disclosures, store.Disclosure{
		At: f.now(), ReferralID: full.ID, CorrelationID: full.Source.CorrelationID, Recipient: recipient, Kind: string(kind),
		Fields: []string{}, Purpose: r.Purpose, LawfulBasis: lawfulBasis(r), Outcome: store.OutcomeWithheld,
		Detail: detail + reason, Subject: sbj,
	})
}

// cutFor adds to b recipient's copy of full, a message of kind, cut by
// route r, on the recipient's queue; or, when r needs the person's express
// permission and full does not record it given, a hold. keyID makes the
// idempotency key; sbj is the person's subject.
func (f *cutter) cutFor(b *store.Batch, r config.Route, full *model.Referral, kind model.Kind, keyID, recipient string, payload []byte, sbj string) error {
	if reason := permissionHold(r, full); reason != "" {
		f.hold(b, r, full, kind, recipient, reason, "withheld: ", payload, sbj)
		return nil
	}
	cut, err := minimise.Apply(full, r.Rules(), minimise.Options{Now: f.now(), PseudonymKey: r.PseudonymKey()})
	if err != nil {
		return fmt.Errorf("fan out %s %s to %s: %w", kind, keyID, recipient, err)
	}
	d := model.Delivery{
		Kind: kind, Recipient: recipient, IdempotencyKey: IdempotencyKey(keyID, recipient, kind),
		Fields: r.Disclosed(), Purpose: r.Purpose, LawfulBasis: lawfulBasis(r), Subject: sbj, Referral: cut,
	}
	if kind == model.KindReferral {
		cell := stats.CellOf(full)
		d.Cell = &cell
	}
	body, err := model.MarshalDelivery(d)
	if err != nil {
		return fmt.Errorf("fan out %s %s to %s: encode: %w", kind, keyID, recipient, err)
	}
	out := message.NewMessage(d.IdempotencyKey, body)
	out.Metadata.Set(intake.MetaKind, string(kind))
	out.Metadata.Set(intake.MetaReferralID, full.ID)
	out.Metadata.Set(intake.MetaCorrelationID, full.Source.CorrelationID)
	topic := TopicDeliver(recipient)
	if kind.Urgent() {
		topic = TopicUrgent(recipient)
	}
	b.Messages = append(b.Messages, store.TopicMessage{Topic: topic, Message: out})
	return nil
}

// logHolds logs, once b is committed, each copy held for review or
// withheld for want of permission.
func (f *cutter) logHolds(b store.Batch) {
	for _, h := range b.Holds {
		f.log.Warn("message held for review", "referral_id", h.ReferralID, "kind", h.Kind, "route", h.Route, "reason", h.Reason)
	}
}

// recipient resolves a route's "to" for one message: a partner id as is;
// "council", the council of the person's area (the complaint's council for a
// complaint's reply); "requester", the NHS endpoint of the requesting
// organisation. A non-empty reason says why no recipient could be found.
func (f *cutter) recipient(r config.Route, full *model.Referral, council string) (string, string) {
	switch r.To {
	case config.RecipientCouncil:
		if ev := full.Event; ev != nil && ev.Complaint != nil && ev.Complaint.Council != "" {
			return ev.Complaint.Council, ""
		}
		if council != "" {
			return council, ""
		}
		c, ok := f.councils.Lookup(full.Person.Address.Postcode)
		if !ok {
			return "", HoldNoCouncil
		}
		return c, ""
	case config.RecipientRequester:
		p, ok := f.requesters[strings.ToUpper(full.Requester.OrganisationODS)]
		if !ok {
			return "", HoldNoRequesterEndpoint
		}
		return p, ""
	}
	return r.To, ""
}

func lawfulBasis(r config.Route) string {
	if r.SpecialCategoryBasis == "" {
		return r.LawfulBasis
	}
	return r.LawfulBasis + "; " + r.SpecialCategoryBasis
}
