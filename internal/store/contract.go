package store

import (
	"context"
	"io"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
)

// The store's contract, grouped by responsibility. A user asks for the
// smallest group it needs (or declares its own at the point of use, as
// intake.Store, intake.EventStore and routes.Store do); Engine is all of
// them, what the hub opens and closes. Every engine (internal/store/sqlite)
// implements Engine, and says so with a compile-time guard.

// Committer writes a Batch: all of it or none of it.
type Committer interface {
	Commit(ctx context.Context, b Batch) error
}

// Topics are the durable topics a Batch publishes on and the subscribers
// that read them, in order per referral, each message until acknowledged.
type Topics interface {
	// EnsureTopics creates the topics that do not exist yet.
	EnsureTopics(topics ...string) error
	// NewSubscriber returns a Watermill subscriber to the store's topics.
	NewSubscriber() (message.Subscriber, error)
	// Pending is how many messages of topic its consumers have not
	// acknowledged.
	Pending(ctx context.Context, topic string) (int64, error)
	// Queues returns the state of every topic, by name.
	Queues(ctx context.Context) ([]QueueStat, error)
	// OldestPending is when the oldest unacknowledged message of topic was
	// published; false when none is.
	OldestPending(ctx context.Context, topic string) (time.Time, bool, error)
}

// Intake is what accepting referrals and events writes and reads: each
// request exactly once per idempotency key, its answer stored with it.
type Intake interface {
	intake.Store
	intake.EventStore
	// AcceptWithBatch is AcceptOnce with the copies of a new referral
	// written in the transaction that accepts it.
	AcceptWithBatch(ctx context.Context, keys []string, resp intake.Response, rec *intake.Record, b Batch) (intake.Response, bool, error)
	// Rejections returns the refused events kept for operators.
	Rejections(ctx context.Context) ([]intake.Rejection, error)
}

// Deliveries is what the delivery steps read: receipts, the referral's
// references as a partner sees them, and the parked lanes.
type Deliveries interface {
	DeliveryState(ctx context.Context, idempotencyKey, partner, lane, referralID, casePurpose string) (DeliveryState, error)
	WasDelivered(ctx context.Context, referralID, idempotencyKey string) (bool, error)
	Deliveries(ctx context.Context, referralID string) ([]Delivered, error)
	References(ctx context.Context, referralID, recipient string) (model.References, error)
	LaneBusy(ctx context.Context, partner, lane string) (bool, error)
	DueParked(ctx context.Context, partner string, now time.Time, limit int, except ...int64) ([]Parked, error)
	ParkedDeliveries(ctx context.Context) ([]Parked, error)
}

// DeadLetters are the deliveries a partner refused for good, and what a
// person decided about each.
type DeadLetters interface {
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	DeadLetter(ctx context.Context, id int64) (DeadLetter, error)
	DiscardDeadLetter(ctx context.Context, id int64, by, reason string) error
	ReplayDeadLetter(ctx context.Context, id int64, r Replay) (model.Delivery, error)
	DeadLetterCounts(ctx context.Context) ([]DeadLetterCount, error)
}

// HeldMessages are the messages no route could place, kept for a person,
// and their resolutions.
type HeldMessages interface {
	// Held returns the holds that wait; AllHeld the resolved ones too.
	Held(ctx context.Context) ([]Hold, error)
	AllHeld(ctx context.Context) ([]Hold, error)
	HeldMessage(ctx context.Context, id int64) (Hold, error)
	ResolveHold(ctx context.Context, id int64, res HoldResolution, b Batch) error
	HeldCounts(ctx context.Context) (map[string]int64, error)
}

// Audit is the disclosure record: one verifiable chain.
type Audit interface {
	Disclosures(ctx context.Context, referralID string) ([]Disclosure, error)
	DisclosuresBySubject(ctx context.Context, subject string) ([]Disclosure, error)
	VerifyDisclosures(ctx context.Context) (VerifyReport, error)
	PruneDisclosuresBefore(ctx context.Context, cutoff time.Time) (int, error)
}

// Retention deletes what a RetentionPolicy allows.
type Retention interface {
	ApplyRetention(ctx context.Context, p RetentionPolicy) (RetentionReport, error)
}

// Keys re-encrypts what the store holds sealed under the active data key.
type Keys interface {
	RotateKeys(ctx context.Context, batch int) ([]RotateCount, error)
}

// Statistics are the anonymous counts by month kept beyond retention.
type Statistics interface {
	Statistics(ctx context.Context, from, to string) ([]stats.Count, error)
}

// Replays remember signed webhook requests already seen (auth.ReplayStore).
type Replays interface {
	SeenBefore(ctx context.Context, key [32]byte, now, until time.Time) (bool, error)
}

// Health is what operators and /metrics see of the engine itself.
type Health interface {
	// Probe checks that the store can be written.
	Probe(ctx context.Context) error
	// GroupStats reports how many write transactions committed and how
	// many callers they carried.
	GroupStats() (groups, callers int64)
}

// Engine is the whole store, as the hub opens it.
type Engine interface {
	Committer
	Topics
	Intake
	Deliveries
	DeadLetters
	HeldMessages
	Audit
	Retention
	Keys
	Statistics
	Replays
	Health
	Operators
	ConsoleSessions
	Activity
	io.Closer
}
