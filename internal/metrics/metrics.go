// Package metrics is the hub's operator view in Prometheus form: the metric
// definitions, a small Recorder API the wiring calls where something happens
// (a message accepted, a delivery answered, an HTTP request served), and
// collectors that read state (queues, dead letters, held messages, circuit
// breakers) at scrape time, so that no hot path keeps gauges up to date.
//
// Every metric name is listed in the README (Operations, Metrics). Labels
// hold partner ids, message kinds, topics, route patterns and status codes,
// never anything about a person.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	wmmetrics "github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
)

// Namespace prefixes every metric of the hub.
const Namespace = "iceshub"

// LatencyBuckets are the upper bounds, in seconds, of the delivery latency
// histogram: from a fast partner (tens of milliseconds) to the end of a long
// outage, which the hub rides out for days.
var LatencyBuckets = []float64{
	0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 72 * 3600,
}

// Recorder holds the hub's metrics and the registry /metrics serves. Each
// hub has its own registry (never the global one), so that several hubs in
// one test process do not share counters. It is safe for concurrent use.
type Recorder struct {
	reg *prometheus.Registry

	received  *prometheus.CounterVec
	delivered *prometheus.CounterVec
	failed    *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	requests  *prometheus.CounterVec
	inbound   *prometheus.CounterVec
}

// New returns a Recorder with the hub's metrics, the Go runtime's and the
// process's registered.
func New() *Recorder {
	r := &Recorder{
		reg: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "messages_received_total",
			Help: "Inbound messages the hub stored (outcome=accepted) or recognised as a repeat of one it had stored (outcome=duplicate), by kind.",
		}, []string{"kind", "outcome"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "deliveries_delivered_total",
			Help: "Deliveries a partner accepted (2xx), by partner and kind.",
		}, []string{"partner", "kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "delivery_failures_total",
			Help: "Delivery attempts that failed, by partner, kind and class: transient (retried later) or permanent (dead-lettered).",
		}, []string{"partner", "kind", "class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "delivery_latency_seconds",
			Help:    "Time from the hub accepting a message to the partner accepting its copy (2xx), by partner.",
			Buckets: LatencyBuckets,
		}, []string{"partner"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "http_requests_total",
			Help: "Inbound HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "inbound_requests_total",
			Help: "Decisions on requests to the partner endpoints, by partner (a configured id, insecure-dev, or unknown when nobody was authenticated) and outcome: accepted, unauthenticated, forbidden (also refused by the handler: a kind the partner may not send, a referral not its own), rate_limited, insecure_dev, unavailable (the replay record could not be checked).",
		}, []string{"partner", "outcome"}),
	}
	r.reg.MustRegister(r.received, r.delivered, r.failed, r.latency, r.requests, r.inbound,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Registry returns the registry /metrics serves, for collectors of other
// components.
func (r *Recorder) Registry() *prometheus.Registry { return r.reg }

// Handler serves the metrics in the Prometheus text format. A collector that
// fails (the store not answering) is reported in the answer and the rest is
// still served.
func (r *Recorder) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Received counts one inbound message of kind, accepted or a duplicate.
func (r *Recorder) Received(kind string, duplicate bool) {
	outcome := "accepted"
	if duplicate {
		outcome = "duplicate"
	}
	r.received.WithLabelValues(kind, outcome).Inc()
}

// Inc counts one decision of the partner endpoints' authentication and
// authorisation (the Counter of internal/auth): partner is a configured id,
// the insecure-dev id or "unknown", never what a caller sent, so the
// series stay few.
func (r *Recorder) Inc(partner, outcome string) {
	r.inbound.WithLabelValues(partner, outcome).Inc()
}

// Delivered counts one delivery a partner accepted, and observes how long
// after acceptance by the hub it was.
func (r *Recorder) Delivered(partner, kind string, sinceAccepted time.Duration) {
	r.delivered.WithLabelValues(partner, kind).Inc()
	if sinceAccepted >= 0 {
		r.latency.WithLabelValues(partner).Observe(sinceAccepted.Seconds())
	}
}

// Failed counts one failed delivery attempt.
func (r *Recorder) Failed(partner, kind string, permanent bool) {
	class := "transient"
	if permanent {
		class = "permanent"
	}
	r.failed.WithLabelValues(partner, kind, class).Inc()
}

// InstrumentRouter adds Watermill's own Prometheus metrics to a router
// before it runs: handler execution time per handler
// (iceshub_router_handler_execution_time_seconds) and messages received per
// handler, acked or nacked (iceshub_router_subscriber_messages_received_total).
// Its middleware is added last, so it runs innermost and times each attempt.
// Give the router its subscribers through NameSubscriber, so that the
// subscriber_name label stays the same across restarts.
func (r *Recorder) InstrumentRouter(router *message.Router) {
	wmmetrics.NewPrometheusMetricsBuilder(r.reg, Namespace, "router").AddPrometheusRouterMetrics(router)
}

// NameSubscriber returns sub under a fixed name. Watermill labels a
// subscriber's metrics with its String, which for the SQLite subscriber
// holds a new UUID on every start, so each restart would begin new series;
// the router takes the name when a handler is added, so the subscriber must
// be renamed before that.
func NameSubscriber(sub message.Subscriber, name string) message.Subscriber {
	return namedSubscriber{Subscriber: sub, name: name}
}

type namedSubscriber struct {
	message.Subscriber
	name string
}

func (n namedSubscriber) String() string { return n.name }

// HTTP wraps the hub's mux: it counts every request by the pattern the mux
// matched ("POST /admin/dlq/{id}/replay", "/fhir/"), never by the path as
// sent, so that ids in paths do not become labels. A request no pattern
// matched counts as route "unmatched".
func (r *Recorder) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, req)
		route := req.Pattern
		if route == "" {
			route = "unmatched"
		}
		r.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Sender is what a delivery handler calls to send one copy (routes.Sender).
type Sender interface {
	Send(ctx context.Context, d model.Delivery) (model.Receipt, error)
}

// InstrumentSender returns a Sender that sends through s and counts the
// outcome for partner: delivered (with the latency since the hub accepted
// the message), or failed, transient or permanent as delivery.IsPermanent
// says. It changes nothing else: errors and receipts pass through as they
// are.
func (r *Recorder) InstrumentSender(partner string, s Sender, now func() time.Time) Sender {
	if now == nil {
		now = time.Now
	}
	return &instrumentedSender{rec: r, partner: partner, next: s, now: now}
}

type instrumentedSender struct {
	rec     *Recorder
	partner string
	next    Sender
	now     func() time.Time
}

func (s *instrumentedSender) Send(ctx context.Context, d model.Delivery) (model.Receipt, error) {
	receipt, err := s.next.Send(ctx, d)
	kind := string(d.Kind)
	switch {
	case err == nil:
		s.rec.Delivered(s.partner, kind, s.sinceAccepted(d))
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// The hub is stopping, not the partner failing.
	default:
		s.rec.Failed(s.partner, kind, delivery.IsPermanent(err))
	}
	return receipt, err
}

// sinceAccepted is the time since the hub accepted the message the copy
// carries: the event's when it is about an event, else the referral's; -1
// when neither is known.
func (s *instrumentedSender) sinceAccepted(d model.Delivery) time.Duration {
	at := d.Referral.ReceivedAt
	if ev := d.Referral.Event; ev != nil && !ev.ReceivedAt.IsZero() {
		at = ev.ReceivedAt
	}
	if at.IsZero() {
		return -1
	}
	return s.now().Sub(at)
}
