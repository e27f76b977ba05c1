package routes

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
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
