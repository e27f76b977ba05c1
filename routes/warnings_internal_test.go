package routes

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/store"
)

// TestPartnerWarningsAreSummarised: while a partner is down, one line per
// interval says how many failures it left out, not one line per copy; the
// partner's next success says how many failed since.
func TestPartnerWarningsAreSummarised(t *testing.T) {
	var logs strings.Builder
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	w := newPartnerWarnings("provider", slog.New(slog.NewTextHandler(&logs, nil)), func() time.Time { return now })
	down := errors.New("partner answered 503")
	// 1,000 failures 10 ms apart, then a second's pause: the first is
	// logged, the next 998 only counted, the last (11 s after the first)
	// logged with that count.
	for i := range 1000 {
		w.parked("ref", "referral", down)
		now = now.Add(10 * time.Millisecond)
		if i == 998 {
			now = now.Add(time.Second)
		}
	}
	w.parked("ref", "referral", down) // counted in the new interval
	w.delivered()
	w.delivered() // nothing more to say
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), logs.String())
	}
	for i, want := range []string{"similar_not_logged=0", "similar_not_logged=998", "partner answers again"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: %s\nwant %q", i+1, lines[i], want)
		}
	}
	if !strings.Contains(lines[2], "similar_not_logged=1") {
		t.Errorf("summary: %s, want the one failure left out", lines[2])
	}
}

// failingStore refuses every commit, as a full disk does.
type failingStore struct{ Store }

func (failingStore) Commit(context.Context, store.Batch) error { return errors.New("disk full") }

// TestStoreGateOpensWhenItsWaiterStops: a delivery that gives up waiting
// for the store (the hub is stopping) opens the gate for the others, and
// the log says the outcome was not recorded, not that the store recovered.
func TestStoreGateOpensWhenItsWaiterStops(t *testing.T) {
	logs := &syncLog{}
	g := newStoreGate(slog.New(slog.NewTextHandler(logs, nil)), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.recordSent(ctx, failingStore{}, "provider", store.Batch{}) }()
	// Another delivery waits at the gate once the fault is known.
	for !strings.Contains(logs.String(), "cannot record") {
		time.Sleep(time.Millisecond)
	}
	waited := make(chan error, 1)
	go func() { waited <- g.wait(context.Background()) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("recordSent = %v, want the context's end", err)
	}
	if err := <-waited; err != nil {
		t.Fatalf("the waiting delivery: %v", err)
	}
	if strings.Contains(logs.String(), "the store takes writes again") || !strings.Contains(logs.String(), "stopped waiting for the store") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// syncLog is a log buffer safe for a logger's goroutine and the test's.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
