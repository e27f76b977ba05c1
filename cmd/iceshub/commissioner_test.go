package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
