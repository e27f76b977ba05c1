package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/logging"
	"github.com/iceshub/iceshub/internal/ready"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// opsHub is a hub run in process for the operations tests, on simulated
// partners, with fast retries and a breaker that opens and closes quickly.
type opsHub struct {
	base string
	// opsBase is the operator's listener, when opsHubConfig.opsAddr;
	// else base.
	opsBase string
	hub     *hub.Hub
	sims    *demo.Partners
	dir     string
	logs    *syncBuffer
	// stop ends the hub as SIGTERM does and returns run's error.
	stop func() error
}

type opsHubConfig struct {
	// wrap, when set, wraps a simulated partner's handler (by partner id).
	wrap            map[string]func(http.Handler) http.Handler
	adminToken      string
	shutdownTimeout time.Duration
	// unlimited lifts the partners' inbound rate limits, for tests that
	// send faster than the built-in 20 a second when the hub is quick.
	unlimited bool
	// dir, when set, is the data directory (a hub run on it before);
	// else a new one.
	dir string
	// now is the clock of readiness probes.
	now func() time.Time
	// opsAddr serves the operator's endpoints on a listener of their
	// own (server.ops_addr).
	opsAddr bool
	// mutate, when set, changes the configuration before the hub is built.
	mutate func(*config.Config)
}

func startOpsHub(t *testing.T, c opsHubConfig) *opsHub {
	t.Helper()
	sims := demo.NewPartners()
	t.Cleanup(sims.Close)
	for id, wrap := range c.wrap {
		var h http.Handler = sims.Provider
		if id != "provider" {
			h = sims.Councils[id]
		}
		srv := httptest.NewServer(wrap(h))
		t.Cleanup(srv.Close)
		sims.URLs[id] = srv.URL
	}
	dir := c.dir
	if dir == "" {
		dir = t.TempDir()
	}
	cfg := simulatedConfig(t, sims, dir)
	cfg.Server.ShutdownTimeout = 30 * time.Second
	if c.shutdownTimeout > 0 {
		cfg.Server.ShutdownTimeout = c.shutdownTimeout
	}
	if c.opsAddr {
		// The listener is made below, on a free port.
		cfg.Server.OpsAddr = "127.0.0.1:0"
	}
	if c.unlimited {
		for i := range cfg.Partners {
			cfg.Partners[i].Inbound.Rate = config.Rate{PerSecond: 1e6, Burst: 1e6}
		}
	}
	if c.mutate != nil {
		c.mutate(cfg)
	}
	logs := &syncBuffer{}
	logger := slog.New(logging.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h, err := hub.New(cfg, logger, hub.Options{
		Retry: routes.Retry{MaxRetries: 2, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond},
		Park:  routes.Park{First: 20 * time.Millisecond, Max: 100 * time.Millisecond, Poll: 10 * time.Millisecond},
		TuneDelivery: func(dc *delivery.Config) {
			dc.RetryMax = 1
			dc.RetryWaitMin = 2 * time.Millisecond
			dc.RetryWaitMax = 10 * time.Millisecond // caps the partner's Retry-After too
			dc.ConsecutiveFailures = 2
			dc.OpenTimeout = 50 * time.Millisecond
		},
		AdminToken: c.adminToken,
		Now:        c.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsBase := "http://" + ln.Addr().String()
	if c.opsAddr {
		opsLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		h.UseOpsListener(opsLn)
		opsBase = "http://" + opsLn.Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()
	stopped := false
	var runErr error
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			runErr = <-done
		}
		return runErr
	}
	oh := &opsHub{base: "http://" + ln.Addr().String(), opsBase: opsBase, hub: h, sims: sims, dir: dir, logs: logs, stop: stop}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("hub stopped with error: %v", err)
		}
		if t.Failed() {
			t.Logf("hub log (last 6 KiB):\n%s", tail([]byte(logs.String()), 6<<10))
		}
	})
	if err := ready.Wait(context.Background(), oh.opsBase, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return oh
}

// referralTemplate is a one-line referral (Chester, so the council is
// Cheshire West) whose message and bundle ids newReferral replaces.
func referralTemplate(t *testing.T) []byte {
	t.Helper()
	b := mustRead(t, "../../testdata/fhir/referral-1-line.json")
	const headerID, bundleID = "918e19e1-647e-5c54-a34d-970fbe8dbb43", "23854247-d727-5601-a30b-80bc7dafc6e9"
	if !bytes.Contains(b, []byte(headerID)) || !bytes.Contains(b, []byte(bundleID)) {
		t.Fatal("fixture changed: update the ids newReferral replaces")
	}
	b = bytes.ReplaceAll(b, []byte(headerID), []byte("{{header}}"))
	return bytes.ReplaceAll(b, []byte(bundleID), []byte("{{bundle}}"))
}

// send posts a new referral made from template and returns the hub's
// referral id.
func (o *opsHub) send(t *testing.T, template []byte) string {
	t.Helper()
	body := bytes.ReplaceAll(template, []byte("{{header}}"), []byte(uuid.NewString()))
	body = bytes.ReplaceAll(body, []byte("{{bundle}}"), []byte(uuid.NewString()))
	status, answer, err := o.sims.PostBundle(context.Background(), o.base, body)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST referral = %d, %v\n%s", status, err, answer)
	}
	id := demo.ReferralIDFrom(answer)
	if id == "" {
		t.Fatalf("no referral id in %s", answer)
	}
	return id
}

// eventually polls cond until it holds or the deadline passes. The deadline
// is generous: it bounds a broken test, it does not measure the hub.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scrape returns the hub's /metrics as series -> value, a series written
// as name{label="value",...} with the labels in name order, as the
// Prometheus text format writes them.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics = %d\n%s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// series writes a series name as the text format does.
func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	type kv struct{ k, v string }
	var kvs []kv
	for i := 0; i+1 < len(labels); i += 2 {
		kvs = append(kvs, kv{labels[i], labels[i+1]})
	}
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
	parts := make([]string, len(kvs))
	for i, p := range kvs {
		parts[i] = fmt.Sprintf("%s=%q", p.k, p.v)
	}
	return name + "{" + strings.Join(parts, ",") + "}"
}

// outcomes returns the disclosure outcomes recorded for a referral, by
// recipient.
func (o *opsHub) outcomes(t *testing.T, referralID string) map[string]string {
	t.Helper()
	ds, err := o.hub.Store().Disclosures(context.Background(), referralID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range ds {
		out[d.Recipient] = d.Outcome
	}
	return out
}

func (o *opsHub) deadLetters(t *testing.T) []store.DeadLetter {
	t.Helper()
	dls, err := o.hub.Store().DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dls
}
