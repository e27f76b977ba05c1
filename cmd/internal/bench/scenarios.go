package bench

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// The scenarios of several hubs on PostgreSQL: a replica killed twice
// (failover), PostgreSQL restarted (pgrestart) or crashed and restarted
// (pgcrash), each replica stopped and started again in turn (rolling).
// Each notes what it did, when, on the report's events.

// Event is something a scenario did, at At seconds after the send began.
type Event struct {
	At   float64 `json:"at"`
	What string  `json:"what"`
	// MovedOnSeconds (failover) is how long after the kill the last of the
	// messages accepted before it and not yet delivered everywhere was
	// delivered: the killed replica's leases expiring.
	MovedOnSeconds float64 `json:"movedOnSeconds,omitempty"`
	// Outstanding is how many accepted messages were not yet delivered to
	// every recipient at the kill.
	Outstanding int `json:"outstanding,omitempty"`
	// Seconds is how long the step took (pgrestart, pgcrash, rolling).
	Seconds float64 `json:"seconds,omitempty"`
	// pgrestart, pgcrash: AcceptedDuring is how many referrals were answered 200
	// while the restart ran, FirstAcceptedAfter how long after it the
	// first 200 came (the hubs reconnected).
	AcceptedDuring     int     `json:"acceptedDuring,omitempty"`
	FirstAcceptedAfter float64 `json:"firstAcceptedAfterSeconds,omitempty"`
	restart            bool
	snapshot           []string
	when               time.Time
}

// runScenario starts the scenario's goroutine; wait waits for it.
func (b *benchRun) runScenario(ctx context.Context, started time.Time) (wait func()) {
	var wg sync.WaitGroup
	run := map[string]func(context.Context, time.Time){"failover": b.failover, "pgrestart": b.pgRestart, "pgcrash": b.pgRestart,
		"rolling": b.rolling}[b.o.Scenario]
	if run != nil {
		wg.Add(1)
		go func() { defer wg.Done(); run(ctx, started) }()
	}
	return wg.Wait
}

func (b *benchRun) event(started time.Time, e Event) {
	e.when = time.Now()
	e.At = e.when.Sub(started).Seconds()
	b.mu.Lock()
	b.events = append(b.events, e)
	b.mu.Unlock()
	fmt.Fprintf(b.stderr, "bench: %5.1fs %s\n", e.At, e.What)
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	select {
	case <-time.After(time.Until(t)):
		return true
	case <-ctx.Done():
		return false
	}
}

// failover kills the last replica with SIGKILL at a third and at two
// thirds of the send, and starts it again 2 s after each.
func (b *benchRun) failover(ctx context.Context, started time.Time) {
	r := b.replicas[len(b.replicas)-1]
	for _, at := range []time.Duration{b.o.Duration / 3, 2 * b.o.Duration / 3} {
		if !sleepUntil(ctx, started.Add(at)) {
			return
		}
		b.end(r, syscall.SIGKILL)
		b.mu.Lock()
		pending := b.pendingIDs()
		b.mu.Unlock()
		b.event(started, Event{What: fmt.Sprintf("SIGKILL replica %d", r.n+1), snapshot: pending, Outstanding: len(pending)})
		if !sleepUntil(ctx, time.Now().Add(2*time.Second)) {
			return
		}
		t0 := time.Now()
		if err := b.start(ctx, r); err != nil {
			b.event(started, Event{What: fmt.Sprintf("replica %d did not start again: %v", r.n+1, err)})
			return
		}
		b.event(started, Event{What: fmt.Sprintf("replica %d started again and ready", r.n+1), Seconds: time.Since(t0).Seconds()})
	}
}

// pgRestart restarts PostgreSQL half way through the send: a fast
// shutdown (pgrestart), or an immediate one (pgcrash), which ends the
// server's processes without flushing what its log holds in memory, as a
// crash of the database would: commits that did not wait for the flush
// (claims, acknowledgements, delivery outcomes) are lost, and recovered
// from by handling their messages again.
func (b *benchRun) pgRestart(ctx context.Context, started time.Time) {
	if !sleepUntil(ctx, started.Add(b.o.Duration/2)) {
		return
	}
	mode := "fast"
	if b.o.Scenario == "pgcrash" {
		mode = "immediate"
	}
	b.event(started, Event{What: "pg_ctlcluster 15 main restart -m " + mode})
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, "pg_ctlcluster", "15", "main", "restart", "-m", mode).CombinedOutput()
	what := "PostgreSQL restarted"
	if err != nil {
		what = fmt.Sprintf("PostgreSQL restart failed: %v: %s", err, out)
	}
	b.event(started, Event{What: what, Seconds: time.Since(t0).Seconds(), restart: true})
}

// rolling stops each replica in turn with SIGTERM, waits for it to exit,
// starts it again and waits for it to be ready, then the next, beginning
// a quarter into the send.
func (b *benchRun) rolling(ctx context.Context, started time.Time) {
	if !sleepUntil(ctx, started.Add(b.o.Duration/4)) {
		return
	}
	for _, r := range b.replicas {
		t0 := time.Now()
		b.end(r, syscall.SIGTERM)
		b.event(started, Event{What: fmt.Sprintf("replica %d stopped (SIGTERM)", r.n+1), Seconds: time.Since(t0).Seconds()})
		t0 = time.Now()
		if err := b.start(ctx, r); err != nil {
			b.event(started, Event{What: fmt.Sprintf("replica %d did not start again: %v", r.n+1, err)})
			return
		}
		b.event(started, Event{What: fmt.Sprintf("replica %d started again and ready", r.n+1), Seconds: time.Since(t0).Seconds()})
	}
}

// pendingIDs are the correlation ids of the accepted messages not yet
// delivered to every recipient; b.mu held.
func (b *benchRun) pendingIDs() []string {
	var out []string
	for c := range b.acceptedAt {
		if !b.stands.has(c, b.orderKinds()...) {
			out = append(out, c)
		}
	}
	for c := range b.cancels {
		if !b.stands.has(c, cancelKinds...) {
			out = append(out, c)
		}
	}
	return out
}

// movedOn fills in, for each kill, how long its outstanding messages took,
// and for a restart of PostgreSQL, what was accepted during and after it.
func (b *benchRun) movedOn() {
	for i := range b.events {
		e := &b.events[i]
		if e.restart {
			b.acceptedAround(e)
		}
		if e.snapshot == nil {
			continue
		}
		var last time.Time
		for _, c := range e.snapshot {
			kinds := b.orderKinds()
			if _, ok := b.cancels[c]; ok {
				kinds = cancelKinds
			}
			if t, ok := b.stands.lastReceipt(c, kinds...); ok && t.After(last) {
				last = t
			}
		}
		if last.After(e.when) {
			e.MovedOnSeconds = last.Sub(e.when).Seconds()
		}
	}
}

// acceptedAround fills in e's AcceptedDuring and FirstAcceptedAfter; b.mu
// held.
func (b *benchRun) acceptedAround(e *Event) {
	from := e.when.Add(-time.Duration(e.Seconds * float64(time.Second)))
	var first time.Time
	for _, at := range b.acceptedAt {
		if !at.Before(from) && !at.After(e.when) {
			e.AcceptedDuring++
		}
		if at.After(e.when) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	if !first.IsZero() {
		e.FirstAcceptedAfter = first.Sub(e.when).Seconds()
	}
}
