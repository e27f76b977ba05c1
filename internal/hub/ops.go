package hub

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/adapters/crm"
	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/metrics"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// ops is the operator's side of a hub: metrics, draining on shutdown, and
// the admin API. New builds one and hands its pieces to the rest of the
// wiring; it keeps no state of its own beyond the draining flag and the
// hard stop.
type ops struct {
	log     *slog.Logger
	metrics *metrics.Recorder
	store   stateSource

	// draining is set when shutdown begins: intake answers 503 with
	// Retry-After, readiness fails.
	draining atomic.Bool
	// hardStop ends when in-flight deliveries must give up (the shutdown
	// deadline is near); until then they finish even though their queue
	// has been closed.
	hardStop context.Context
	stopHard context.CancelFunc
	// retryAfter is what senders are told to wait while the hub drains.
	retryAfter time.Duration

	breakers map[string]metrics.Breaker
}

// drainRetryAfter is the Retry-After of a request refused while the hub
// stops: a restart takes seconds.
const drainRetryAfter = 10 * time.Second

func newOps(logger *slog.Logger, st stateSource) *ops {
	hard, stop := context.WithCancel(context.Background())
	return &ops{
		log: logger, metrics: metrics.New(), store: st,
		hardStop: hard, stopHard: stop, retryAfter: drainRetryAfter,
		breakers: map[string]metrics.Breaker{},
	}
}

// breakerOpen reports whether a partner's circuit breaker is open.
func (o *ops) breakerOpen(partner string) bool {
	b, ok := o.breakers[partner]
	return ok && b.BreakerState() == "open"
}

// sender instruments a partner's sender and remembers its circuit breaker
// for /metrics.
func (o *ops) sender(partner string, s routes.Sender) routes.Sender {
	if b, ok := s.(metrics.Breaker); ok {
		o.breakers[partner] = b
	}
	return o.metrics.InstrumentSender(partner, s, nil)
}

// intakeStore counts every inbound message the store accepted, or
// recognised as a repeat, by kind.
func (o *ops) intakeStore(next intake.Store) intake.Store {
	return countedIntake{next: next, rec: o.metrics}
}

type countedIntake struct {
	next intake.Store
	rec  *metrics.Recorder
}

func (c countedIntake) AcceptOnce(ctx context.Context, keys []string, resp intake.Response, topic string, msg *message.Message, rec *intake.Record) (intake.Response, bool, error) {
	stored, dup, err := c.next.AcceptOnce(ctx, keys, resp, topic, msg, rec)
	if err == nil {
		c.rec.Received(msg.Metadata.Get(intake.MetaKind), dup)
	}
	return stored, dup, err
}

// eventStore counts every inbound event the store accepted, or recognised
// as a repeat, by kind.
func (o *ops) eventStore(next intake.EventStore) intake.EventStore {
	return countedEvents{EventStore: next, rec: o.metrics}
}

type countedEvents struct {
	intake.EventStore
	rec *metrics.Recorder
}

func (c countedEvents) AcceptEventOnce(ctx context.Context, commit intake.EventCommit) (intake.Response, bool, error) {
	stored, dup, err := c.EventStore.AcceptEventOnce(ctx, commit)
	if err == nil {
		c.rec.Received(commit.Message.Metadata.Get(intake.MetaKind), dup)
	}
	return stored, dup, err
}

// subscribers names every subscriber the routes get "store" for /metrics.
func (o *ops) subscribers(newSub routes.NewSubscriber) routes.NewSubscriber {
	return func() (message.Subscriber, error) {
		sub, err := newSub()
		if err != nil {
			return nil, err
		}
		return metrics.NameSubscriber(sub, "store"), nil
	}
}

// instrumentRouter adds Watermill's metrics and the in-flight middleware to
// the router, and starts reading the store and the breakers at scrape time.
// Call it after routes.New and before Run.
func (o *ops) instrumentRouter(router *message.Router) {
	o.metrics.InstrumentRouter(router)
	// Innermost: it changes the context of one attempt only, never what
	// the Retry middleware outside it waits on.
	router.AddMiddleware(o.finishInFlight)
	o.metrics.WatchState(storeState(o.store), 5*time.Second, nil)
	o.metrics.WatchBreakers(o.breakers)
}

// finishInFlight lets a delivery attempt that has started finish, send and
// record alike, when the router closes its queue on shutdown: closing a
// subscriber cancels its messages' contexts, which would cut a partner's
// request short and leave a send whose receipt is never written. The
// attempt runs on a context that keeps the message's values but ends only
// at the hard stop (the shutdown deadline). The Retry middleware still
// watches the original context, so no new attempt starts once the router
// closes: the message is redelivered, with the same idempotency key, on the
// next start; nor does a delivery still waiting for a free request to its
// partner (routes.WithStopping).
func (o *ops) finishInFlight(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		orig := msg.Context()
		ctx, cancel := context.WithCancel(routes.WithStopping(context.WithoutCancel(orig), orig))
		defer cancel()
		stop := context.AfterFunc(o.hardStop, cancel)
		defer stop()
		msg.SetContext(ctx)
		defer msg.SetContext(orig)
		out, err := h(msg)
		if errors.Is(err, routes.ErrStopped) {
			// Not an error to log: at a stop under load every delivery
			// still waiting for a request ends so (three for each request
			// a queue may have open). Nacked, it is offered again on the
			// next start; the Ack the router sends after a nil error is
			// then ignored.
			msg.Nack()
			return nil, nil
		}
		return out, err
	}
}

// stateSource is what /metrics reads of the store.
type stateSource interface {
	Queues(ctx context.Context) ([]store.QueueStat, error)
	DeadLetterCounts(ctx context.Context) ([]store.DeadLetterCount, error)
	HeldCounts(ctx context.Context) (map[string]int64, error)
	GroupStats() (groups, callers int64)
}

// storeState reads what /metrics reports about the store.
func storeState(st stateSource) metrics.StateFunc {
	return func(ctx context.Context) (metrics.State, error) {
		var s metrics.State
		qs, err := st.Queues(ctx)
		if err != nil {
			return s, err
		}
		for _, q := range qs {
			s.Queues = append(s.Queues, metrics.Queue{Topic: q.Topic, Pending: q.Pending, OldestPending: q.OldestPending})
		}
		dls, err := st.DeadLetterCounts(ctx)
		if err != nil {
			return s, err
		}
		for _, d := range dls {
			s.DeadLetters = append(s.DeadLetters, metrics.DeadLetters{Partner: d.Recipient, Kind: d.Kind, Total: d.Total, Open: d.Open})
		}
		held, err := st.HeldCounts(ctx)
		if err != nil {
			return s, err
		}
		for route, n := range held {
			s.Held = append(s.Held, metrics.Held{Route: route, Count: n})
		}
		s.Commits, s.Writes = st.GroupStats()
		return s, nil
	}
}

// mount adds /metrics and, when a token is configured, the admin API.
func (o *ops) mount(mux *http.ServeMux, adminToken string, dlq *DLQActions, held *routes.Held, rules stats.Rules, publisher *routes.Publisher) {
	mux.Handle("GET /metrics", o.metrics.Handler())
	if adminToken == "" {
		o.log.Warn("admin API disabled: no token configured", "env", AdminTokenEnv)
		return
	}
	mountAdmin(mux, adminToken, dlq, held, rules, publisher, o.log)
}

// handler wraps the hub's mux: requests are counted for /metrics, and while
// the hub drains every request but the operational ones (health, metrics,
// admin) is refused with 503 and Retry-After, in the format of the
// endpoint asked for.
func (o *ops) handler(mux *http.ServeMux) http.Handler {
	return o.metrics.HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !o.draining.Load() || operational(r.URL.Path) {
			mux.ServeHTTP(w, r)
			return
		}
		// Name the route the mux would have chosen, for the request count.
		_, r.Pattern = mux.Handler(r)
		refuseWhileDraining(w, r.URL.Path, o.retryAfter)
	}))
}

// operational reports whether path is one an operator or orchestrator uses
// while the hub stops.
func operational(path string) bool {
	switch {
	case path == "/healthz", path == "/readyz", path == "/metrics":
		return true
	case path == "/admin" || strings.HasPrefix(path, "/admin/"):
		return true
	}
	return false
}

const drainingMessage = "the hub is shutting down and accepts nothing now; nothing was accepted: send the same request again after Retry-After"

// refuseWhileDraining answers 503 with Retry-After and Connection: close:
// FHIR endpoints with an OperationOutcome, other endpoints with the JSON
// error body of the partner contracts.
func refuseWhileDraining(w http.ResponseWriter, path string, retryAfter time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Round(time.Second)/time.Second)))
	w.Header().Set("Connection", "close")
	if path == "/fhir" || strings.HasPrefix(path, "/fhir/") {
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"resourceType": "OperationOutcome",
			"issue": []map[string]any{{
				"severity": "error", "code": "transient", "diagnostics": drainingMessage,
			}},
		})
		return
	}
	writeJSONError(w, http.StatusServiceUnavailable, "shutting-down", drainingMessage, nil)
}

// writeJSONError writes the error body of the hub's JSON APIs.
func writeJSONError(w http.ResponseWriter, status int, code, msg string, problems []partnersim.Problem) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(partnersim.ErrorBody{Code: code, Message: msg, Problems: problems})
}

// beginDrain starts refusing intake and failing readiness, and arms the
// hard stop of in-flight deliveries shortly before the shutdown deadline,
// so that they give up, and their handlers return, before the router's
// own close timeout.
func (o *ops) beginDrain(timeout time.Duration) (cancel func()) {
	o.draining.Store(true)
	margin := min(time.Second, timeout/10)
	t := time.AfterFunc(timeout-margin, o.stopHard)
	return func() {
		t.Stop()
		o.stopHard()
	}
}

// The adapters' clients report their circuit breaker; the recorder counts
// the partner endpoints' decisions.
var (
	_ auth.Counter    = (*metrics.Recorder)(nil)
	_ metrics.Breaker = (*provider.Client)(nil)
	_ metrics.Breaker = (*crm.Client)(nil)
)
