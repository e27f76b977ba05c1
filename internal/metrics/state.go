package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Queue is the state of one durable topic.
type Queue struct {
	Topic string
	// Pending is how many messages its consumers have not acknowledged.
	Pending int64
	// OldestPending is when the oldest of them was published; zero when
	// none is pending.
	OldestPending time.Time
}

// DeadLetters counts the dead letters of one partner and kind.
type DeadLetters struct {
	Partner, Kind string
	// Total is every dead letter ever recorded: the store never deletes
	// one, so it only grows.
	Total int64
	// Open is those neither replayed nor discarded yet.
	Open int64
}

// Held counts the messages held for review on one route.
type Held struct {
	Route string
	Count int64
}

// State is what the store holds at one moment.
type State struct {
	Queues      []Queue
	DeadLetters []DeadLetters
	Held        []Held
	// Commits is how many write transactions the store has committed
	// since it was opened, and Writes how many writes they carried (group
	// commit): Writes/Commits is how many share a commit and its fsync.
	Commits, Writes int64
}

// StateFunc reads the store's state. It is called on every scrape.
type StateFunc func(ctx context.Context) (State, error)

// Breaker is a partner client with a circuit breaker. The adapters' clients
// implement it.
type Breaker interface {
	// BreakerState returns "closed", "half-open" or "open".
	BreakerState() string
}

// BreakerStates are the values of the state label of
// iceshub_breaker_state.
var BreakerStates = []string{"closed", "half-open", "open"}

// WatchState registers a collector that calls read on every scrape, with
// timeout, and reports queue depth and oldest pending age per topic, dead
// letters and held messages. When read fails, iceshub_store_up is 0 and the
// store's other metrics are absent from that scrape.
func (r *Recorder) WatchState(read StateFunc, timeout time.Duration, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	r.reg.MustRegister(&stateCollector{read: read, timeout: timeout, now: now})
}

// WatchBreakers registers a collector that reports each partner's circuit
// breaker state on every scrape.
func (r *Recorder) WatchBreakers(breakers map[string]Breaker) {
	r.reg.MustRegister(&breakerCollector{breakers: breakers})
}

var (
	descStoreUp = prometheus.NewDesc(Namespace+"_store_up",
		"1 when the store answered this scrape's state queries, else 0.", nil, nil)
	descQueueDepth = prometheus.NewDesc(Namespace+"_queue_depth",
		"Messages on a durable topic not yet acknowledged by its consumers.", []string{"topic"}, nil)
	descQueueOldest = prometheus.NewDesc(Namespace+"_queue_oldest_pending_age_seconds",
		"Age of the oldest message on a topic not yet acknowledged; 0 when none is pending.", []string{"topic"}, nil)
	descDeadTotal = prometheus.NewDesc(Namespace+"_dead_letters_total",
		"Dead letters ever recorded, by partner and kind (the store keeps every one).", []string{"partner", "kind"}, nil)
	descDeadOpen = prometheus.NewDesc(Namespace+"_dead_letters_open",
		"Dead letters waiting for a person: neither replayed nor discarded.", []string{"partner", "kind"}, nil)
	descHeld = prometheus.NewDesc(Namespace+"_held_messages",
		"Messages held for review, by route.", []string{"route"}, nil)
	descCommits = prometheus.NewDesc(Namespace+"_store_commits_total",
		"Write transactions committed (each one fsync) since the hub started.", nil, nil)
	descWrites = prometheus.NewDesc(Namespace+"_store_writes_total",
		"Writes (an accepted message, a delivery outcome, a queue position) carried by those commits; several share one under load.", nil, nil)
	descBreaker = prometheus.NewDesc(Namespace+"_breaker_state",
		"Circuit breaker state of a partner: 1 for the current state, 0 for the others.", []string{"partner", "state"}, nil)
)

type stateCollector struct {
	read    StateFunc
	timeout time.Duration
	now     func() time.Time
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStoreUp, descQueueDepth, descQueueOldest, descDeadTotal, descDeadOpen, descHeld, descCommits, descWrites} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.read(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 1)
	now := c.now()
	for _, q := range st.Queues {
		ch <- prometheus.MustNewConstMetric(descQueueDepth, prometheus.GaugeValue, float64(q.Pending), q.Topic)
		age := 0.0
		if q.Pending > 0 && !q.OldestPending.IsZero() {
			age = max(now.Sub(q.OldestPending).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descQueueOldest, prometheus.GaugeValue, age, q.Topic)
	}
	for _, d := range st.DeadLetters {
		ch <- prometheus.MustNewConstMetric(descDeadTotal, prometheus.CounterValue, float64(d.Total), d.Partner, d.Kind)
		ch <- prometheus.MustNewConstMetric(descDeadOpen, prometheus.GaugeValue, float64(d.Open), d.Partner, d.Kind)
	}
	for _, h := range st.Held {
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, float64(h.Count), h.Route)
	}
	ch <- prometheus.MustNewConstMetric(descCommits, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(descWrites, prometheus.CounterValue, float64(st.Writes))
}

type breakerCollector struct {
	breakers map[string]Breaker
}

func (c *breakerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descBreaker }

func (c *breakerCollector) Collect(ch chan<- prometheus.Metric) {
	for partner, b := range c.breakers {
		current := b.BreakerState()
		for _, s := range BreakerStates {
			v := 0.0
			if s == current {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, v, partner, s)
		}
	}
}
