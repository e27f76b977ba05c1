package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"time"
)

// standIns are partner stand-ins for the bench: one HTTP server per partner
// kind that accepts whatever the hub sends at once and records, per
// correlation id, when it arrived. Unlike the simulators they keep no
// bodies, so that they cost the machine as little as possible.
type standIns struct {
	servers []*httptest.Server
	// urls by partner kind: provider, council, nhs.
	urls map[string]string

	mu    sync.Mutex
	down  map[string]bool
	seen  map[string]map[string]bool      // kind -> idempotency key
	byCor map[string]map[string]time.Time // kind -> correlation id -> last receipt
	times map[string][]time.Time          // kind -> receipt times
	// first is, per kind and correlation id, the sequence number of its
	// first receipt (n then): which of an order and its cancellation came
	// first. repeats counts receipts of a key already seen, per kind.
	first   map[string]map[string]int
	repeats map[string]int64
	n       int
}

func newStandIns() *standIns {
	s := &standIns{urls: map[string]string{}, down: map[string]bool{}, seen: map[string]map[string]bool{},
		byCor: map[string]map[string]time.Time{}, times: map[string][]time.Time{}, first: map[string]map[string]int{}, repeats: map[string]int64{}}
	for _, kind := range []string{"provider", "council", "nhs"} {
		s.seen[kind], s.byCor[kind], s.first[kind] = map[string]bool{}, map[string]time.Time{}, map[string]int{}
		srv := httptest.NewServer(s.handler(kind))
		s.servers = append(s.servers, srv)
		s.urls[kind] = srv.URL
	}
	return s
}

func (s *standIns) handler(kind string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		now := time.Now()
		s.mu.Lock()
		if s.down[kind] {
			s.mu.Unlock()
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"code":"unavailable","message":"down for the bench"}`, http.StatusServiceUnavailable)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		if !s.seen[kind][key] {
			s.seen[kind][key] = true
			s.times[kind] = append(s.times[kind], now)
		} else {
			s.repeats[kind]++
		}
		s.n++
		n := s.n
		if c := r.Header.Get("X-Correlation-ID"); c != "" {
			if isCancellation(kind, r, body) {
				c += cancelSuffix
			}
			s.byCor[kind][c] = now
			if _, ok := s.first[kind][c]; !ok {
				s.first[kind][c] = n
			}
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		switch kind {
		case "provider":
			fmt.Fprintf(w, `{"orderReference":"ORD-%d","status":"accepted"}`, n)
		case "council":
			fmt.Fprintf(w, `{"caseReference":"CASE-%d","status":"open"}`, n)
		default:
			w.Header().Set("Content-Type", "application/fhir+json")
			fmt.Fprintf(w, `{"resourceType":"Task","id":"t-%d","status":"received","intent":"order"}`, n)
		}
	})
}

// cancelSuffix marks, after the correlation id of a referral, the
// deliveries of its cancellation: the hub sends them under the referral's
// correlation id.
const cancelSuffix = "#cancellation"

// isCancellation tells a delivery of a cancellation from one of a
// referral: to the provider and the council a referral is a new order or
// case (POST /orders, POST /cases) and anything else is about one; to the
// requester both update the referral's Task, cancelled by a cancellation.
// The bench sends nothing else.
func isCancellation(kind string, r *http.Request, body []byte) bool {
	switch kind {
	case "provider":
		return r.URL.Path != "/orders"
	case "council":
		return r.URL.Path != "/cases"
	}
	return bytes.Contains(body, []byte(`"status":"cancelled"`))
}

func (s *standIns) setDown(kind string, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down[kind] = down
}

// keys returns how many distinct idempotency keys kind received and how
// many receipts repeated a key it had already received.
func (s *standIns) keys(kind string) (distinct, repeats int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.seen[kind])), s.repeats[kind]
}

// orderViolations counts, for kind, the cancellations (correlation id ->
// the correlation id of the order they cancel) that kind received before
// the order, or without it, and how many pairs it could check (both
// received).
func (s *standIns) orderViolations(kind string, cancels map[string]string) (violations, checked int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c, order := range cancels {
		cs, ok := s.first[kind][c]
		if !ok {
			continue
		}
		os, ok := s.first[kind][order]
		if ok {
			checked++
		}
		if !ok || os > cs {
			violations++
		}
	}
	return violations, checked
}

// missing counts the correlation ids of accepted not yet seen by every kind.
func (s *standIns) missing(accepted map[string]time.Time, kinds ...string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range accepted {
		for _, k := range kinds {
			if _, ok := s.byCor[k][c]; !ok {
				n++
				break
			}
		}
	}
	return n
}

// has reports whether every kind received correlation id c.
func (s *standIns) has(c string, kinds ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range kinds {
		if _, ok := s.byCor[k][c]; !ok {
			return false
		}
	}
	return true
}

// lastReceipt returns when the last of kinds received correlation id c.
func (s *standIns) lastReceipt(c string, kinds ...string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last time.Time
	for _, k := range kinds {
		t, ok := s.byCor[k][c]
		if !ok {
			return time.Time{}, false
		}
		if t.After(last) {
			last = t
		}
	}
	return last, true
}

// count returns how many distinct deliveries kind received, and when the
// first and last arrived.
func (s *standIns) count(kind string) (int64, time.Time, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.times[kind]
	if len(ts) == 0 {
		return 0, time.Time{}, time.Time{}
	}
	return int64(len(ts)), ts[0], ts[len(ts)-1]
}

// rateAfter is the delivery rate of kind over the deliveries made after
// since, from the first of them to the last, and how long after since the
// first came (a partner that is back is noticed only when its circuit
// breaker lets a trial call through).
func (s *standIns) rateAfter(kind string, since time.Time) (rate float64, firstAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := append([]time.Time(nil), s.times[kind]...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	i := sort.Search(len(ts), func(i int) bool { return !ts[i].Before(since) })
	after := ts[i:]
	if len(after) < 2 {
		return 0, 0
	}
	return float64(len(after)-1) / after[len(after)-1].Sub(after[0]).Seconds(), after[0].Sub(since)
}

func (s *standIns) close() {
	for _, srv := range s.servers {
		srv.Close()
	}
}
