package routes

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/iceshub/iceshub/internal/logging"
	"github.com/iceshub/iceshub/internal/store"
)

// storeGate holds every partner's deliveries while the store cannot record
// what a partner answered (a full disk). A copy already sent keeps its
// outcome in hand and commits it again, backing off, until the store takes
// writes (recordSent); meanwhile no other copy is sent (wait). Without it,
// each failed commit handed the message back to its queue, which sent it
// again at once: the outside test saw one copy sent 13 times in a minute,
// each time accepted by the partner, and no log line for that minute.
//
// The fault is logged once when it starts (with the store's error) and
// once when it ends (how long it lasted and how many outcomes waited). It
// is safe for concurrent use; one gate serves the whole router.
type storeGate struct {
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	retrying  int           // outcomes being committed again
	recovered bool          // one of them was committed in this fault
	waited    int           // outcomes that waited during this fault
	since     time.Time     // when this fault began
	clear     chan struct{} // closed when the fault ends
}

// Waits between commits of an outcome the store refused.
const (
	firstCommitWait = 50 * time.Millisecond
	maxCommitWait   = 2 * time.Second
)

func newStoreGate(log *slog.Logger, now func() time.Time) *storeGate {
	return &storeGate{log: log, now: now}
}

// wait returns at once unless the store is known unable to record
// outcomes; then it waits until it is, or ctx ends (its error).
func (g *storeGate) wait(ctx context.Context) error {
	g.mu.Lock()
	clear := g.clear
	faulty := g.retrying > 0
	g.mu.Unlock()
	if !faulty {
		return nil
	}
	var stopping <-chan struct{}
	if s, ok := ctx.Value(stoppingKey{}).(context.Context); ok {
		stopping = s.Done()
	}
	select {
	case <-clear:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stopping:
		return ErrStopped
	}
}

// recordSent commits b, the outcome of a copy the partner has answered,
// and does not return before it is committed or ctx ends: the copy is not
// sent again because the store was briefly unable to write.
func (g *storeGate) recordSent(ctx context.Context, st Store, partner string, b store.Batch) error {
	err := st.Commit(ctx, b)
	if err == nil {
		return nil
	}
	g.begin(partner, err)
	wait := firstCommitWait
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			g.end(false)
			return fmt.Errorf("%w (the store could not record it: %w)", ctx.Err(), err)
		case <-t.C:
		}
		if err = st.Commit(ctx, b); err == nil {
			g.end(true)
			return nil
		}
		wait = min(2*wait, maxCommitWait)
	}
}

func (g *storeGate) begin(partner string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waited++
	g.retrying++
	if g.retrying > 1 {
		return
	}
	g.since, g.clear = g.now(), make(chan struct{})
	g.log.Error("the store cannot record what partners answered: no copy is sent until it takes writes again",
		"partner", partner, "error", err)
}

// end ends one outcome's wait: committed, or given up because its
// delivery stopped (the hub is stopping; it is offered again on the next
// start). The last to end opens the gate and says which it was.
func (g *storeGate) end(committed bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.retrying--
	g.recovered = g.recovered || committed
	if g.retrying > 0 {
		return
	}
	close(g.clear)
	if g.recovered {
		g.log.Info("the store takes writes again: deliveries resume",
			"outcomes_held", g.waited, "duration_ms", g.now().Sub(g.since).Milliseconds())
	} else {
		g.log.Warn("stopped waiting for the store to take writes; the outcomes not recorded are offered again on the next start",
			"outcomes_held", g.waited, "duration_ms", g.now().Sub(g.since).Milliseconds())
	}
	g.waited, g.recovered = 0, false
}

// partnerWarnings summarises the warning logged when a copy fails and is
// parked: while a partner is down every copy fails, and one line per copy
// buries everything else (logging.Repeats). The partner's next success
// logs how many failed since the last line. One serves all of a partner's
// queues.
type partnerWarnings struct {
	partner string
	log     *slog.Logger
	repeats logging.Repeats
}

func newPartnerWarnings(partner string, log *slog.Logger, now func() time.Time) *partnerWarnings {
	return &partnerWarnings{partner: partner, log: log, repeats: logging.Repeats{Now: now}}
}

// parked logs, or counts, one copy that failed and was parked.
func (w *partnerWarnings) parked(referralID string, kind any, err error) {
	if write, omitted := w.repeats.Write(); write {
		w.log.Warn("delivery failed; parked for a later attempt", "partner", w.partner, "referral_id", referralID, "kind", kind,
			"error", err, "similar_not_logged", omitted)
	}
}

// delivered logs how many failures were not logged, if any: the partner
// answers again.
func (w *partnerWarnings) delivered() {
	if omitted := w.repeats.Flush(); omitted > 0 {
		w.log.Info("partner answers again; failed deliveries parked since the last warning", "partner", w.partner, "similar_not_logged", omitted)
	}
}
