package store

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
)

// Resolution actions.
const (
	ActionReplayed  = "replayed"
	ActionDiscarded = "discarded"
)

// Resolution is a person's decision about a dead letter.
type Resolution struct {
	Action string    `json:"action"`
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Errors of the dead-letter operations.
var (
	ErrNotFound       = errors.New("store: no such record")
	ErrResolved       = errors.New("store: dead letter already replayed or discarded")
	ErrReasonRequired = errors.New("store: a discard needs a reason")
	ErrByRequired     = errors.New("store: say who decides")
	ErrNotReplayable  = errors.New("store: dead letter cannot be replayed")
)

// MetaReplayOf is the metadata key of a replayed delivery message: the id of
// the dead letter it replays.
const MetaReplayOf = "replay_of"

// Replay says how ReplayDeadLetter publishes a dead letter again.
type Replay struct {
	// By is who decided; required.
	By string
	// Reason is why, optional ("provider fixed its validation").
	Reason string
	// Topic returns the topic of a partner's deliveries; required.
	Topic func(partner string) string
	// Recut, when set, returns the delivery to publish in place of the
	// stored one: the routes re-cut it from the full referral so that the
	// current route's fields apply. It must keep the recipient and the
	// idempotency key; ReplayDeadLetter refuses a delivery that changes
	// either. The mapping to the partner's format runs at send time, so it
	// is current without a Recut.
	Recut func(model.Delivery) (model.Delivery, error)
}

// DeadLetterCount counts the dead letters of one recipient and kind.
type DeadLetterCount struct {
	Recipient, Kind string
	// Total is every dead letter recorded; Open those not yet resolved.
	Total, Open int64
}

// PrepareReplay checks that dead letter dl may be replayed under r and
// returns the delivery to publish again (re-cut when r.Recut is set), the
// topic and the message, as every engine publishes it: the same
// idempotency key, and MetaReplayOf naming the dead letter. It returns
// ErrByRequired, ErrResolved, or ErrNotReplayable when the payload is not
// a delivery or the re-cut fails or changes its recipient or key.
func PrepareReplay(dl DeadLetter, r Replay) (model.Delivery, string, *message.Message, error) {
	id := dl.ID
	if strings.TrimSpace(r.By) == "" {
		return model.Delivery{}, "", nil, ErrByRequired
	}
	if r.Topic == nil {
		return model.Delivery{}, "", nil, errors.New("store: replay needs a topic function")
	}
	if dl.Resolution != nil {
		return model.Delivery{}, "", nil, fmt.Errorf("dead letter %d: %w", id, ErrResolved)
	}
	var del model.Delivery
	if err := model.UnmarshalDelivery(dl.Payload, &del); err != nil || del.IdempotencyKey == "" || del.Recipient == "" {
		return model.Delivery{}, "", nil, fmt.Errorf("dead letter %d: %w: its payload is not a delivery; discard it", id, ErrNotReplayable)
	}
	if del.Recipient != dl.Recipient || del.IdempotencyKey != dl.IdempotencyKey {
		return model.Delivery{}, "", nil, fmt.Errorf("dead letter %d: %w: its payload names another recipient or key", id, ErrNotReplayable)
	}
	if r.Recut != nil {
		cut, err := r.Recut(del)
		if err != nil {
			return model.Delivery{}, "", nil, fmt.Errorf("dead letter %d: %w: re-cut: %w", id, ErrNotReplayable, err)
		}
		if cut.Recipient != del.Recipient || cut.IdempotencyKey != del.IdempotencyKey {
			return model.Delivery{}, "", nil, fmt.Errorf("dead letter %d: %w: re-cut changed the recipient or idempotency key", id, ErrNotReplayable)
		}
		del = cut
	}
	payload, err := model.MarshalDelivery(del)
	if err != nil {
		return model.Delivery{}, "", nil, fmt.Errorf("dead letter %d: encode delivery: %w", id, err)
	}
	msg := message.NewMessage(del.IdempotencyKey, payload)
	msg.Metadata.Set(intake.MetaKind, string(del.Kind))
	msg.Metadata.Set(intake.MetaReferralID, del.Referral.ID)
	if c := del.Referral.Source.CorrelationID; c != "" {
		msg.Metadata.Set(intake.MetaCorrelationID, c)
	}
	msg.Metadata.Set(MetaReplayOf, fmt.Sprint(id))
	return del, r.Topic(del.Recipient), msg, nil
}
