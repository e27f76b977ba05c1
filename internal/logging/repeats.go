package logging

import (
	"sync"
	"time"
)

// DefaultRepeatInterval is how often at most one of a run of like lines
// is written when Repeats.Interval is zero.
const DefaultRepeatInterval = 10 * time.Second

// Repeats decides which lines of a run of like ones to write: while a
// partner is down or the disk is full, the same line for every message
// (7,000 in 20 s of outage, 65,000 intake refusals in a minute of full
// disk) buries everything else in the log. The first line of each interval
// is written, carrying how many like lines were left out since the last
// one written (key similar_not_logged). It is safe for concurrent use; the
// zero value uses DefaultRepeatInterval and time.Now.
type Repeats struct {
	Interval time.Duration
	Now      func() time.Time

	mu      sync.Mutex
	written time.Time // when the last line was written
	omitted int       // like lines left out since
}

// Write reports whether to write this line and, when it is to be written,
// how many like lines were left out before it.
func (r *Repeats) Write() (write bool, omitted int) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	interval := r.Interval
	if interval <= 0 {
		interval = DefaultRepeatInterval
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t := now()
	if !r.written.IsZero() && t.Sub(r.written) < interval {
		r.omitted++
		return false, 0
	}
	omitted, r.written, r.omitted = r.omitted, t, 0
	return true, omitted
}

// Flush returns how many like lines were left out since the last one
// written, and forgets them: for a closing line when the run ends.
func (r *Repeats) Flush() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	omitted := r.omitted
	r.omitted = 0
	return omitted
}
