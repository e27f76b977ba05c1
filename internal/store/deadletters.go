package store

import (
	"errors"
	"time"

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
