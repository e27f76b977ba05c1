package routes

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/postcode"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/subject"
)

// idempotencyNamespace makes delivery idempotency keys UUIDs derived from the
// referral, recipient and kind: the same on every retry, redelivery, replay
// and restart.
var idempotencyNamespace = uuid.MustParse("6f1d7a52-4c7e-4e55-9d35-2b8f3f0c1a10")

// IdempotencyKey returns the stable key of one recipient's copy of a message.
func IdempotencyKey(referralID, recipient string, kind model.Kind) string {
	return uuid.NewSHA1(idempotencyNamespace, []byte(referralID+"\x00"+recipient+"\x00"+string(kind))).String()
}

// HoldNoCouncil is the reason recorded when no council covers a postcode.
const HoldNoCouncil = "no council covers the person's postcode"

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

type fanout struct {
	routes   []config.Route
	councils *postcode.Table
	subjects subject.Key
	store    Store
	now      func() time.Time
	log      *slog.Logger
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
	sbj := f.subjects.Of(ref.Person.NHSNumber)

	var b store.Batch
	for _, r := range f.routes {
		if r.Message != string(kind) {
			continue
		}
		recipient := r.To
		if recipient == config.RecipientCouncil {
			council, ok := f.councils.Lookup(ref.Person.Address.Postcode)
			if !ok {
				b.Holds = append(b.Holds, store.Hold{At: f.now(), ReferralID: ref.ID, Kind: string(kind), Route: r.To, Reason: HoldNoCouncil, Payload: msg.Payload})
				b.Disclosures = append(b.Disclosures, store.Disclosure{
					At: f.now(), ReferralID: ref.ID, CorrelationID: ref.Source.CorrelationID, Recipient: r.To, Kind: string(kind),
					Fields: []string{}, Purpose: r.Purpose, LawfulBasis: r.LawfulBasis, Outcome: store.OutcomeWithheld,
					Detail: "held for review: " + HoldNoCouncil, Subject: sbj,
				})
				f.log.Warn("referral held for review", "referral_id", ref.ID, "route", r.To, "reason", HoldNoCouncil)
				continue
			}
			recipient = council
		}
		if reason := permissionHold(r, &ref); reason != "" {
			b.Holds = append(b.Holds, store.Hold{At: f.now(), ReferralID: ref.ID, Kind: string(kind), Route: recipient, Reason: reason, Payload: msg.Payload})
			b.Disclosures = append(b.Disclosures, store.Disclosure{
				At: f.now(), ReferralID: ref.ID, CorrelationID: ref.Source.CorrelationID, Recipient: recipient, Kind: string(kind),
				Fields: []string{}, Purpose: r.Purpose, LawfulBasis: lawfulBasis(r), Outcome: store.OutcomeWithheld,
				Detail: "withheld: " + reason, Subject: sbj,
			})
			f.log.Warn("referral withheld for want of permission", "referral_id", ref.ID, "route", recipient, "reason", reason)
			continue
		}
		cut, err := minimise.Apply(&ref, r.Rules(), minimise.Options{Now: f.now(), PseudonymKey: r.PseudonymKey()})
		if err != nil {
			return fmt.Errorf("fan out referral %s to %s: %w", ref.ID, recipient, err)
		}
		d := model.Delivery{
			Kind: kind, Recipient: recipient, IdempotencyKey: IdempotencyKey(ref.ID, recipient, kind),
			Fields: r.Disclosed(), Purpose: r.Purpose, LawfulBasis: lawfulBasis(r), Subject: sbj, Referral: cut,
		}
		payload, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("fan out referral %s to %s: encode: %w", ref.ID, recipient, err)
		}
		out := message.NewMessage(d.IdempotencyKey, payload)
		out.Metadata.Set(intake.MetaKind, string(kind))
		out.Metadata.Set(intake.MetaReferralID, ref.ID)
		out.Metadata.Set(intake.MetaCorrelationID, ref.Source.CorrelationID)
		b.Messages = append(b.Messages, store.TopicMessage{Topic: TopicDeliver(recipient), Message: out})
	}
	if err := f.store.Commit(msg.Context(), b); err != nil {
		return fmt.Errorf("fan out referral %s: %w", ref.ID, err)
	}
	return nil
}

func lawfulBasis(r config.Route) string {
	if r.SpecialCategoryBasis == "" {
		return r.LawfulBasis
	}
	return r.LawfulBasis + "; " + r.SpecialCategoryBasis
}
