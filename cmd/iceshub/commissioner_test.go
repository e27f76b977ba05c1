package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/adapters/commissioner"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
)

// A hub configured with a commissioner: a referral's order placed with
// the provider is counted, and the month's statistics go to the
// commissioner over HTTPS-like HTTP with its token, once, as 'iceshub
// stats' publishes them, recorded as anonymised statistics.
func TestHubSendsTheMonthsStatisticsToACommissioner(t *testing.T) {
	sim := commissioner.NewSimulator()
	sim.RequireToken("icb-token-for-tests")
	srv := httptest.NewServer(sim)
	defer srv.Close()
	t.Setenv("ICESHUB_ICB_TOKEN", "icb-token-for-tests")
	route := config.Route{Message: config.MessageStatistics, To: "commissioner-icb",
		Purpose: "Plan and pay for the equipment service", LawfulBasis: "UK GDPR Art 6(1)(e) public task"}
	base, h, sims := startHubWith(t, io.Discard, func(c *config.Config) {
		c.Partners = append(c.Partners, config.Partner{ID: "commissioner-icb", Kind: config.KindCommissioner,
			BaseURL: srv.URL, TokenEnv: "ICESHUB_ICB_TOKEN", Timeout: 5 * time.Second})
		c.Routes = append(c.Routes, route)
	})
	ctx := context.Background()
	status, answer, err := sims.PostBundle(ctx, base, mustRead(t, "../../testdata/fhir/referral-3-lines.json"))
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST = %d, %v\n%s", status, err, answer)
	}
	waitOutcomes(t, h, demo.ReferralIDFrom(answer), 3)
	month := stats.Month(time.Now())
	counts, err := h.Store().Statistics(ctx, month, month)
	if err != nil {
		t.Fatal(err)
	}
	var placed int64
	for _, c := range counts {
		if c.Measure == stats.OrdersPlaced {
			placed += c.N
		}
	}
	if placed != 1 {
		t.Errorf("orders placed = %d, want 1: %+v", placed, counts)
	}

	for i, want := range []int{1, 0} {
		if n, err := h.PublishStatistics(ctx, month); err != nil || n != want {
			t.Fatalf("publication %d: %d, %v; want %d", i, n, err, want)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(sim.Tables()) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the commissioner received nothing: %+v", sim.Received())
		}
		time.Sleep(10 * time.Millisecond)
	}
	q, format, err := stats.Request{From: month, To: month}.Query()
	if err != nil {
		t.Fatal(err)
	}
	table, err := hub.PublishStats(ctx, h.Store(), q, h.Config().Stats.Rules())
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := stats.Write(&want, table, format); err != nil {
		t.Fatal(err)
	}
	got := sim.Tables()[0]
	if got.Body != want.String() || got.Month != month {
		t.Errorf("received (%s)\n%s\nwant\n%s", got.Month, got.Body, want.String())
	}
	if !strings.Contains(got.Body, "orders_placed") {
		t.Errorf("no orders_placed column:\n%s", got.Body)
	}
	// The disclosure is recorded once the commissioner has answered, a
	// moment after its simulator holds the table.
	ds := waitOutcomes(t, h, "", 1)
	if len(ds) != 1 {
		t.Fatalf("disclosures of no referral: %+v", ds)
	}
	if d := ds[0]; d.Outcome != store.OutcomeSent || d.Kind != string(model.KindStatistics) || d.Subject != "" ||
		len(d.Fields) != 1 || d.Fields[0] != model.StatisticsLabel || d.Purpose != route.Purpose {
		t.Errorf("disclosure %+v", d)
	}
	if n := len(sim.Received()); n != 1 {
		t.Errorf("the commissioner was called %d times", n)
	}
}

// TestAMissedMonthIsPublishedByHand: an ended month's statistics are sent
// by hand, through the admin API while the hub runs (once: a second call
// publishes nothing; a month not ended is refused naming the month), and
// by 'iceshub stats publish' while it is stopped, which a running hub on
// the same embedded store refuses, naming the admin API. The copy queued
// by the command is delivered when the hub starts again, on the command's
// configuration, which names a commissioner and no provider or council.
func TestAMissedMonthIsPublishedByHand(t *testing.T) {
	const token = "fictional-admin-token-for-stats-tests"
	sim := commissioner.NewSimulator()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	route := config.Route{Message: config.MessageStatistics, To: "commissioner-icb",
		Purpose: "Plan and pay for the equipment service", LawfulBasis: "UK GDPR Art 6(1)(e) public task"}
	withCommissioner := func(c *config.Config) {
		c.Partners = append(c.Partners, config.Partner{ID: "commissioner-icb", Kind: config.KindCommissioner, BaseURL: srv.URL, Timeout: 5 * time.Second})
		c.Routes = append(c.Routes, route)
	}
	o := startOpsHub(t, opsHubConfig{adminToken: token, mutate: withCommissioner})
	ctx := context.Background()
	var counts []stats.Increment
	for _, month := range []string{"2026-10", "2026-11"} {
		counts = append(counts, stats.Increment{Key: stats.Key{Month: month, Council: "council-cwac", Priority: "routine", Class: stats.UnknownClass},
			Measure: stats.Referrals, Days: stats.NoDays})
	}
	if err := o.hub.Store().Commit(ctx, store.Batch{Stats: counts}); err != nil {
		t.Fatal(err)
	}

	publish := o.opsBase + "/admin/stats/publish"
	for i, want := range []string{`"published":1`, `"published":0`} {
		status, body := adminCall(t, http.MethodPost, publish, token, `{"month":"2026-11"}`)
		if status != http.StatusOK || !strings.Contains(string(body), want) || !strings.Contains(string(body), `"commissioners":["commissioner-icb"]`) {
			t.Fatalf("publication %d: %d %s", i, status, body)
		}
	}
	thisMonth := stats.Month(time.Now())
	if status, body := adminCall(t, http.MethodPost, publish, token, `{"month":"`+thisMonth+`"}`); status != http.StatusUnprocessableEntity ||
		!strings.Contains(string(body), `"field":"month"`) || !strings.Contains(string(body), "has not ended") {
		t.Errorf("this month: %d %s", status, body)
	}
	if status, _ := adminCall(t, http.MethodPost, publish, "", `{"month":"2026-11"}`); status != http.StatusUnauthorized {
		t.Errorf("without the token: %d", status)
	}
	eventually(t, "November at the commissioner", func() bool { return len(sim.Tables()) == 1 })

	cfgPath := filepath.Join(t.TempDir(), "iceshub.yaml")
	yaml := "store:\n  data_dir: " + o.dir + "\npartners:\n  - id: commissioner-icb\n    kind: commissioner\n    base_url: " + srv.URL +
		"\nroutes:\n  - message: statistics\n    to: commissioner-icb\n    purpose: " + route.Purpose + "\n    lawful_basis: " + route.LawfulBasis + "\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	if code := run([]string{"stats", "publish", "--month", "2026-10", "--config", cfgPath}, &out, &errOut); code == 0 ||
		!strings.Contains(errOut.String(), "POST /admin/stats/publish") {
		t.Fatalf("stats publish beside the running hub = %d\n%s%s", code, out.String(), errOut.String())
	}
	if err := o.stop(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"stats", "publish", "--month", "2026-10", "--config", cfgPath}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "queued for 1 of 1 commissioners (commissioner-icb)") {
		t.Fatalf("stats publish = %d\n%s%s", code, out.String(), errOut.String())
	}
	// The hub started again from the command's configuration, which has
	// no provider and no council: it serves, and delivers October.
	cfg, err := hub.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(cfg, slog.New(slog.DiscardHandler), hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the hub without provider or council: %v", err)
		}
	}()
	eventually(t, "October at the commissioner", func() bool { return len(sim.Tables()) == 2 })
	if got := sim.Tables()[1]; got.Month != "2026-10" {
		t.Errorf("second table of %s", got.Month)
	}
	if n := len(sim.Received()); n != 2 {
		t.Errorf("the commissioner was called %d times, want 2", n)
	}
}
