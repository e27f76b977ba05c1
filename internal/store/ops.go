package store

import "time"

// QueueStat is the state of one topic, for operators and /metrics.
type QueueStat struct {
	Topic string `json:"topic"`
	// Pending is how many messages its consumers have not acknowledged
	// (as Pending).
	Pending int64 `json:"pending"`
	// OldestPending is when the oldest of them was published; zero when
	// none is.
	OldestPending time.Time `json:"oldestPending,omitzero"`
}
