package store

import "time"

// Parked is one delivery waiting for its next attempt.
type Parked struct {
	// ID orders the copies of a lane; set by the store.
	ID      int64
	Partner string
	// Lane is the referral id for routine copies; an urgent copy has a lane
	// of its own (its idempotency key) and so never waits behind another.
	Lane           string
	Urgent         bool
	Kind           string
	ReferralID     string
	IdempotencyKey string
	// Payload is the delivery message's payload (a model.Delivery).
	Payload []byte
	// Attempts is how many times it failed.
	Attempts    int
	NextAt      time.Time
	FirstFailed time.Time
	LastError   string
}

// Reschedule records another failed attempt of a parked delivery.
type Reschedule struct {
	ID        int64
	Attempts  int
	NextAt    time.Time
	LastError string
}
