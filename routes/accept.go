package routes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

// AcceptStore is what FanOutOnAccept needs of storage: intake's own
// AcceptOnce, and the same with the copies of a new referral written in
// the transaction that accepts it.
type AcceptStore interface {
	intake.Store
	AcceptWithBatch(ctx context.Context, keys []string, resp intake.Response, rec *intake.Record, b store.Batch) (intake.Response, bool, error)
}

// FanOutOnAccept returns the intake.Store a hub accepts referrals through:
// a new referral is cut into every recipient's copy (held and withheld
// ones recorded) before it is stored, and the referral, its record and its
// copies are committed in one transaction, so the sender's answer waits
// for one commit instead of a commit followed by a separate fan-out step
// with a commit of its own. The cut is the same as the fan-out handler's
// (cutter.cut), under the same routes. Anything else passes through to st
// unchanged; referral messages on intake.TopicReferralReceived (written by
// an earlier hub) are still fanned out by the router.
//
// It is safe for concurrent use.
func FanOutOnAccept(cfg Config, st AcceptStore, logger *slog.Logger) (intake.Store, error) {
	if st == nil || logger == nil {
		return nil, errors.New("routes: nil store or logger")
	}
	cut, err := newCutter(cfg, logger)
	if err != nil {
		return nil, err
	}
	return &acceptFanOut{cutter: cut, next: st}, nil
}

type acceptFanOut struct {
	*cutter
	next AcceptStore
}

// AcceptOnce implements intake.Store.
func (a *acceptFanOut) AcceptOnce(ctx context.Context, keys []string, resp intake.Response, topic string, msg *message.Message, rec *intake.Record) (intake.Response, bool, error) {
	if topic != intake.TopicReferralReceived || rec == nil || msg.Metadata.Get(intake.MetaKind) != string(model.KindReferral) {
		return a.next.AcceptOnce(ctx, keys, resp, topic, msg, rec)
	}
	b, council, err := a.cut(&rec.Referral, model.KindReferral, rec.Referral.ID, "", msg.Payload)
	if err != nil {
		return intake.Response{}, false, err
	}
	// The council goes into the referral's record as it is written.
	withCouncil := *rec
	withCouncil.Refs.Council = council
	stored, dup, err := a.next.AcceptWithBatch(ctx, keys, resp, &withCouncil, b)
	if err != nil {
		return intake.Response{}, false, fmt.Errorf("accept and fan out referral %s: %w", rec.Referral.ID, err)
	}
	if !dup {
		a.logHolds(b)
	}
	return stored, dup, nil
}
