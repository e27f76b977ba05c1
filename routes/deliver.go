package routes

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

type deliver struct {
	partner string
	sender  Sender
	store   Store
	now     func() time.Time
	log     *slog.Logger
}

// handle sends one copy to the partner. Success records the receipt and the
// disclosure together; a permanent refusal records a dead letter and a failed
// disclosure and lets the queue move on; a transient failure returns the
// error so that the message is retried, and stays first in this partner's
// queue until it is delivered.
func (d *deliver) handle(msg *message.Message) error {
	ctx := msg.Context()
	var del model.Delivery
	if err := json.Unmarshal(msg.Payload, &del); err != nil {
		d.log.Error("undecodable delivery dead-lettered", "partner", d.partner, "message_id", msg.UUID, "error", err)
		return d.store.Commit(ctx, store.Batch{DeadLetters: []store.DeadLetter{{
			At: d.now(), Recipient: d.partner, IdempotencyKey: msg.UUID, Error: "the stored delivery could not be decoded", Payload: msg.Payload,
		}}})
	}
	done, err := d.store.WasDelivered(ctx, del.IdempotencyKey)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", d.partner, err)
	}
	if done {
		d.log.Info("delivery already made; skipped", "partner", d.partner, "referral_id", del.Referral.ID, "idempotency_key", del.IdempotencyKey)
		return nil
	}

	started := d.now()
	receipt, sendErr := d.sender.Send(ctx, del)
	disclosure := store.Disclosure{
		At: d.now(), ReferralID: del.Referral.ID, CorrelationID: del.Referral.Source.CorrelationID,
		Recipient: d.partner, Kind: string(del.Kind), Fields: del.Fields, Purpose: del.Purpose, LawfulBasis: del.LawfulBasis,
		Subject: del.Subject,
	}
	switch {
	case sendErr == nil:
		disclosure.Outcome = store.OutcomeSent
		if err := d.store.Commit(ctx, store.Batch{
			Disclosures: []store.Disclosure{disclosure},
			Delivered: []store.Delivered{{
				At: d.now(), IdempotencyKey: del.IdempotencyKey, Recipient: d.partner, Kind: string(del.Kind),
				ReferralID: del.Referral.ID, PartnerReference: receipt.PartnerReference, StatusCode: receipt.StatusCode,
			}},
		}); err != nil {
			// The partner has it; the retry resends with the same
			// Idempotency-Key, which the partner recognises.
			return fmt.Errorf("deliver to %s: record receipt: %w", d.partner, err)
		}
		d.log.Info("delivered", "partner", d.partner, "referral_id", del.Referral.ID, "kind", del.Kind,
			"idempotency_key", del.IdempotencyKey, "ms", d.now().Sub(started).Milliseconds())
		return nil
	case delivery.IsPermanent(sendErr):
		disclosure.Outcome = store.OutcomeFailed
		disclosure.Detail = "refused by partner: " + sendErr.Error()
		if err := d.store.Commit(ctx, store.Batch{
			Disclosures: []store.Disclosure{disclosure},
			DeadLetters: []store.DeadLetter{{
				At: d.now(), Recipient: d.partner, Kind: string(del.Kind), ReferralID: del.Referral.ID,
				IdempotencyKey: del.IdempotencyKey, StatusCode: statusOf(sendErr), PartnerAnswer: answerOf(sendErr),
				Error: sendErr.Error(), Payload: msg.Payload,
			}},
		}); err != nil {
			return fmt.Errorf("deliver to %s: record dead letter: %w", d.partner, err)
		}
		d.log.Error("delivery refused permanently; dead-lettered", "partner", d.partner, "referral_id", del.Referral.ID, "error", sendErr)
		return nil
	default:
		d.log.Warn("delivery failed; will retry", "partner", d.partner, "referral_id", del.Referral.ID, "error", sendErr)
		return fmt.Errorf("deliver to %s: %w", d.partner, sendErr)
	}
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
