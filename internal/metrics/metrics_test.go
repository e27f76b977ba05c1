package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
)

func exposition(t *testing.T, r *Recorder) string {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics = %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, "\n"+l+"\n") {
			t.Errorf("missing %q", l)
		}
	}
}

type fakeSender struct {
	err error
}

func (f fakeSender) Send(context.Context, model.Delivery) (model.Receipt, error) {
	return model.Receipt{StatusCode: 201}, f.err
}

func TestInstrumentSenderCountsOutcomes(t *testing.T) {
	r := New()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	d := model.Delivery{Kind: model.KindReferral, Referral: model.Referral{ReceivedAt: now.Add(-3 * time.Second)}}
	clock := func() time.Time { return now }
	ctx := context.Background()

	_, _ = r.InstrumentSender("provider", fakeSender{}, clock).Send(ctx, d)
	_, _ = r.InstrumentSender("provider", fakeSender{err: errors.New("connection refused")}, clock).Send(ctx, d)
	_, _ = r.InstrumentSender("provider", fakeSender{err: &delivery.Error{Partner: "provider", StatusCode: 422, Permanent: true}}, clock).Send(ctx, d)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = r.InstrumentSender("provider", fakeSender{err: context.Canceled}, clock).Send(cancelled, d)
	r.Received("referral", false)
	r.Received("referral", true)

	wantLines(t, exposition(t, r),
		`iceshub_deliveries_delivered_total{kind="referral",partner="provider"} 1`,
		`iceshub_delivery_failures_total{class="transient",kind="referral",partner="provider"} 1`,
		`iceshub_delivery_failures_total{class="permanent",kind="referral",partner="provider"} 1`,
		`iceshub_delivery_latency_seconds_bucket{partner="provider",le="2.5"} 0`,
		`iceshub_delivery_latency_seconds_bucket{partner="provider",le="5"} 1`,
		`iceshub_delivery_latency_seconds_sum{partner="provider"} 3`,
		`iceshub_messages_received_total{kind="referral",outcome="accepted"} 1`,
		`iceshub_messages_received_total{kind="referral",outcome="duplicate"} 1`,
	)
}

func TestInboundDecisionsAreCountedByPartnerAndOutcome(t *testing.T) {
	r := New()
	r.Inc("unknown", "unauthenticated")
	r.Inc("unknown", "unauthenticated")
	r.Inc("provider", "forbidden")
	r.Inc("provider", "accepted")
	wantLines(t, exposition(t, r),
		`iceshub_inbound_requests_total{outcome="unauthenticated",partner="unknown"} 2`,
		`iceshub_inbound_requests_total{outcome="forbidden",partner="provider"} 1`,
		`iceshub_inbound_requests_total{outcome="accepted",partner="provider"} 1`,
	)
}

func TestHTTPCountsByPattern(t *testing.T) {
	r := New()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/dlq/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	h := r.HTTP(mux)
	for _, path := range []string{"/admin/dlq/1", "/admin/dlq/2", "/healthz", "/nowhere"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	wantLines(t, exposition(t, r),
		`iceshub_http_requests_total{code="404",route="GET /admin/dlq/{id}"} 2`,
		`iceshub_http_requests_total{code="200",route="GET /healthz"} 1`,
		`iceshub_http_requests_total{code="404",route="unmatched"} 1`,
	)
}

type fakeBreaker string

func (b fakeBreaker) BreakerState() string { return string(b) }

func TestStateAndBreakersAtScrapeTime(t *testing.T) {
	r := New()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	fail := false
	r.WatchState(func(context.Context) (State, error) {
		if fail {
			return State{}, errors.New("store closed")
		}
		return State{
			Queues:      []Queue{{Topic: "deliver.provider", Pending: 4, OldestPending: now.Add(-90 * time.Second)}, {Topic: "deliver.council-cwac"}},
			DeadLetters: []DeadLetters{{Partner: "provider", Kind: "referral", Total: 3, Open: 1}},
			Held:        []Held{{Route: "council", Count: 2}},
			Commits:     10, Writes: 35,
		}, nil
	}, time.Second, func() time.Time { return now })
	r.WatchBreakers(map[string]Breaker{"provider": fakeBreaker("open"), "council-cwac": fakeBreaker("closed")})

	wantLines(t, exposition(t, r),
		`iceshub_store_up 1`,
		`iceshub_queue_depth{topic="deliver.provider"} 4`,
		`iceshub_queue_oldest_pending_age_seconds{topic="deliver.provider"} 90`,
		`iceshub_queue_depth{topic="deliver.council-cwac"} 0`,
		`iceshub_queue_oldest_pending_age_seconds{topic="deliver.council-cwac"} 0`,
		`iceshub_dead_letters_total{kind="referral",partner="provider"} 3`,
		`iceshub_dead_letters_open{kind="referral",partner="provider"} 1`,
		`iceshub_held_messages{route="council"} 2`,
		`iceshub_store_commits_total 10`,
		`iceshub_store_writes_total 35`,
		`iceshub_breaker_state{partner="provider",state="open"} 1`,
		`iceshub_breaker_state{partner="provider",state="closed"} 0`,
		`iceshub_breaker_state{partner="council-cwac",state="closed"} 1`,
	)
	fail = true
	text := exposition(t, r)
	wantLines(t, text, `iceshub_store_up 0`, `iceshub_breaker_state{partner="provider",state="open"} 1`)
	if strings.Contains(text, "iceshub_queue_depth{") {
		t.Error("queue depth reported although the store did not answer")
	}
}
