package routes_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iceshub/iceshub/adapters/commissioner"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/postcode"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
	"github.com/iceshub/iceshub/routes"
)

const commissionerID = "commissioner-icb"

var statisticsRoute = config.Route{Message: config.MessageStatistics, To: commissionerID,
	Purpose: "Plan and pay for the equipment service", LawfulBasis: "UK GDPR Art 6(1)(e) public task"}

// november holds counts of November 2026 whose true values include many
// from 1 to 7: three councils' referrals, orders and deliveries.
func november() []stats.Increment {
	var incs []stats.Increment
	add := func(council string, m stats.Measure, n, days int) {
		for range n {
			incs = append(incs, stats.Increment{Key: stats.Key{Month: "2026-11", Council: council, Priority: "routine", Class: stats.UnknownClass},
				Measure: m, Days: days})
		}
	}
	add("council-a", stats.Referrals, 3, stats.NoDays)
	add("council-b", stats.Referrals, 12, stats.NoDays)
	add("council-c", stats.Referrals, 41, stats.NoDays)
	add("council-a", stats.OrdersPlaced, 1, stats.NoDays)
	add("council-c", stats.OrdersPlaced, 38, stats.NoDays)
	add("council-b", stats.Delivered, 6, 2)
	add("council-c", stats.Delivered, 30, 4)
	// December's, which November's publication must not show.
	incs = append(incs, stats.Increment{Key: stats.Key{Month: "2026-12", Council: "council-a", Class: stats.UnknownClass}, Measure: stats.Referrals, Days: stats.NoDays})
	return incs
}

// statsHub is what a hub runs for the statistics: its store, the router
// delivering to the commissioner (the real adapter, over HTTP, with its
// breaker), and the publisher, on a clock the test sets.
type statsHub struct {
	store     store.Engine
	publisher *routes.Publisher
	stop      func()
}

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// startStatsHub starts a hub's statistics on the store in dir, delivering
// to the commissioner at url. stop stops it and closes the store, as a
// hub that stops.
// novemberForACommissioner starts a commissioner stand-in answering
// failure and a hub sending to it whose clock starts at now, with
// November's counts in its store.
func novemberForACommissioner(t *testing.T, failure int, now time.Time) (*commissioner.Simulator, *statsHub) {
	t.Helper()
	sim := commissioner.NewSimulator()
	sim.SetFailure(failure)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	clock := &testClock{now: now}
	h := startStatsHub(t, t.TempDir(), srv.URL, clock.Now)
	if err := h.store.Commit(context.Background(), store.Batch{Stats: november()}); err != nil {
		t.Fatal(err)
	}
	return sim, h
}

func startStatsHub(t *testing.T, dir, url string, clock func() time.Time) *statsHub {
	t.Helper()
	st, err := sqlite.Open(sqlite.Options{DataDir: dir, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return startStatsHubOn(t, st, url, clock)
}

// startStatsHubOn is startStatsHub on st.
func startStatsHubOn(t *testing.T, st store.Engine, url string, clock func() time.Time) *statsHub {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	client, err := commissioner.New(commissioner.Config{ID: commissionerID, Delivery: delivery.Config{
		BaseURL: url, Timeout: 2 * time.Second, RetryMax: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	councils, err := postcode.NewTable(map[string][]string{"council-a": {"CH1"}})
	if err != nil {
		t.Fatal(err)
	}
	rc := routes.Config{
		Routes: []config.Route{statisticsRoute}, Councils: councils, SubjectKey: testSubjectKey,
		Senders:      map[string]routes.Sender{commissionerID: client},
		PartnerKinds: map[string]string{commissionerID: config.KindCommissioner},
		Retry:        routes.Retry{MaxRetries: 1, InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond},
		Park:         routes.Park{First: 5 * time.Millisecond, Max: 20 * time.Millisecond, Poll: 5 * time.Millisecond},
	}
	if err := st.EnsureTopics(routes.Topics([]string{commissionerID})...); err != nil {
		t.Fatal(err)
	}
	r, err := routes.New(rc, st, st.NewSubscriber, logger)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Routes: rc.Routes, Stats: config.Stats{SuppressUpTo: 7, RoundTo: 5, MinValues: 8,
		Standards: map[string]int{"urgent": 1, "routine": 7}}}
	pub, err := routes.NewPublisher(cfg, st, clock, logger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = r.Run(ctx); close(done) }()
	<-r.Running()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			_ = st.Close()
		})
	}
	t.Cleanup(stop)
	return &statsHub{store: st, publisher: pub, stop: stop}
}

// published is what 'iceshub stats --from month --to month --format csv'
// prints of st under the default rules.
func published(t *testing.T, st store.Statistics, month string) string {
	t.Helper()
	counts, err := st.Statistics(context.Background(), month, month)
	if err != nil {
		t.Fatal(err)
	}
	q, format, err := stats.Request{From: month, To: month}.Query()
	if err != nil {
		t.Fatal(err)
	}
	table, err := stats.Publish(counts, q, stats.DefaultRules())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := stats.Write(&b, table, format); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkSuppressed fails t when a cell of the CSV body is a count from 1 to
// 7, or a count that is not a multiple of 5.
func checkSuppressed(t *testing.T, body string) {
	t.Helper()
	var lines []string
	for _, l := range strings.SplitAfter(body, "\n") {
		if !strings.HasPrefix(l, "# ") {
			lines = append(lines, l)
		}
	}
	rows, err := csv.NewReader(strings.NewReader(strings.Join(lines, ""))).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("body is not a table (%v):\n%s", err, body)
	}
	starred := 0
	for _, row := range rows[1:] {
		for i, cell := range row {
			col := rows[0][i]
			if cell == stats.Suppressed {
				starred++
			}
			n, err := strconv.Atoi(cell)
			if err != nil || col == "month" || strings.HasPrefix(col, "days_") || strings.HasSuffix(col, "_percent") {
				continue
			}
			if (n >= 1 && n <= 7) || n%5 != 0 {
				t.Errorf("column %s holds %d: not suppressed and rounded", col, n)
			}
		}
	}
	if starred == 0 {
		t.Errorf("nothing withheld, though November holds counts from 1 to 7:\n%s", body)
	}
}

// The month's statistics go to the commissioner once, whoever asks how
// often: published twice, one copy and one request; after a restart of
// the hub, nothing again. The request is the published CSV, suppressed,
// under the copy's Idempotency-Key; the disclosure record names no field.
func TestStatisticsGoToTheCommissionerOncePerMonth(t *testing.T) {
	sim := commissioner.NewSimulator()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	clock := &testClock{now: time.Date(2026, 12, 1, 5, 59, 0, 0, time.UTC)}
	h := startStatsHub(t, dir, srv.URL, clock.Now)
	ctx := context.Background()
	if err := h.store.Commit(ctx, store.Batch{Stats: november()}); err != nil {
		t.Fatal(err)
	}

	// Before 06:00 UTC on the 1st nothing is due.
	if n, err := h.publisher.PublishDue(ctx); err != nil || n != 0 {
		t.Fatalf("before the publication time: published %d, %v", n, err)
	}
	clock.Set(time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC))
	for i, want := range []int{1, 0} {
		if n, err := h.publisher.PublishDue(ctx); err != nil || n != want {
			t.Fatalf("publication %d: published %d, %v; want %d", i, n, err, want)
		}
	}
	waitFor(t, "the commissioner has the table", func() bool { return len(sim.Tables()) == 1 })

	got := sim.Tables()[0]
	if want := published(t, h.store, "2026-11"); got.Body != want {
		t.Errorf("the commissioner received\n%s\nwant what iceshub stats prints\n%s", got.Body, want)
	}
	if got.Month != "2026-11" || got.IdempotencyKey != routes.IdempotencyKey(store.StatisticsKeyPrefix+"2026-11", commissionerID, model.KindStatistics) {
		t.Errorf("month %q, key %q", got.Month, got.IdempotencyKey)
	}
	if strings.Contains(got.Body, "2026-12") {
		t.Errorf("December's counts in November's table:\n%s", got.Body)
	}
	checkSuppressed(t, got.Body)

	waitFor(t, "the disclosure recorded", func() bool {
		ds, err := h.store.Disclosures(ctx, "")
		return err == nil && len(ds) == 1
	})
	ds, _ := h.store.Disclosures(ctx, "")
	d := ds[0]
	if d.Outcome != store.OutcomeSent || d.Kind != string(model.KindStatistics) || d.Recipient != commissionerID ||
		d.Purpose != statisticsRoute.Purpose || d.LawfulBasis != statisticsRoute.LawfulBasis || d.Subject != "" || d.ReferralID != "" {
		t.Errorf("disclosure %+v", d)
	}
	if len(d.Fields) != 1 || d.Fields[0] != model.StatisticsLabel {
		t.Errorf("disclosure fields %q, want only %q", d.Fields, model.StatisticsLabel)
	}
	for _, f := range d.Fields {
		if _, personal := model.LookupField(f); personal {
			t.Errorf("the disclosure names field %q", f)
		}
	}

	// A restart: a new hub on the same store, the month still due.
	h.stop()
	h = startStatsHub(t, dir, srv.URL, clock.Now)
	clock.Set(time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC))
	if n, err := h.publisher.PublishDue(ctx); err != nil || n != 0 {
		t.Fatalf("after a restart: published %d, %v", n, err)
	}
	if n, err := h.publisher.Publish(ctx, "2026-11"); err != nil || n != 0 {
		t.Fatalf("after a restart, asked again: published %d, %v", n, err)
	}
	time.Sleep(100 * time.Millisecond) // twenty polls of the queue
	if n := len(sim.Received()); n != 1 {
		t.Errorf("the commissioner was called %d times; want once", n)
	}
	// Retention leaves the key (and nothing else of the copy).
	if _, err := h.store.ApplyRetention(ctx, store.RetentionPolicy{MessagesBefore: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := h.publisher.Publish(ctx, "2026-11"); err != nil || n != 0 {
		t.Fatalf("after retention: published %d, %v", n, err)
	}
	// The next month is its own.
	clock.Set(time.Date(2027, 1, 1, 6, 0, 0, 0, time.UTC))
	if n, err := h.publisher.PublishDue(ctx); err != nil || n != 1 {
		t.Fatalf("December: published %d, %v", n, err)
	}
	waitFor(t, "December delivered", func() bool { return len(sim.Tables()) == 2 })
	if v, err := h.store.VerifyDisclosures(ctx); err != nil || !v.OK {
		t.Errorf("disclosure record: %+v, %v", v, err)
	}
}

// A commissioner that is down gets its copy later: parked in a lane of
// its own, then delivered once it answers again.
func TestStatisticsToACommissionerThatIsDownAreParkedThenDelivered(t *testing.T) {
	sim, h := novemberForACommissioner(t, http.StatusServiceUnavailable, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	// As a hub runs it: looking every few milliseconds.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go h.publisher.Run(runCtx, time.Millisecond, 5*time.Millisecond)
	key := routes.IdempotencyKey(store.StatisticsKeyPrefix+"2026-11", commissionerID, model.KindStatistics)
	waitFor(t, "the copy parked", func() bool {
		parked, err := h.store.ParkedDeliveries(ctx)
		return err == nil && len(parked) == 1 && parked[0].Partner == commissionerID && parked[0].IdempotencyKey == key &&
			parked[0].ReferralID == "" && parked[0].Lane == "own:"+key
	})
	waitFor(t, "tried again from its lane", func() bool { return len(sim.Received()) >= 3 })
	if n := len(sim.Tables()); n != 0 {
		t.Fatalf("%d tables taken while down", n)
	}
	sim.ClearFailure()
	waitFor(t, "delivered", func() bool { return len(sim.Tables()) == 1 })
	waitFor(t, "unparked", func() bool {
		parked, err := h.store.ParkedDeliveries(ctx)
		return err == nil && len(parked) == 0
	})
	if got := sim.Tables()[0]; got.Body != published(t, h.store, "2026-11") || got.IdempotencyKey != key {
		t.Errorf("delivered %+v", got)
	}
	ds, err := h.store.Disclosures(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, d := range ds {
		if d.Outcome == store.OutcomeSent {
			sent++
		}
	}
	if sent != 1 {
		t.Errorf("%d disclosures sent, want 1: %+v", sent, ds)
	}
}

// An order is counted as placed when the provider accepts the referral's
// copy, in the transaction that records the receipt, in the referral's
// cell (its council from the record, its priority and class from the
// copy's cell); the council's copy, and a provider that fails, count
// nothing.
func TestOrderPlacedIsCountedWithTheProvidersReceipt(t *testing.T) {
	provider := &fakePartner{failFirst: 1}
	e := start(t, provider, &fakePartner{})
	ref := referral("placed-1", "CH1 4AA")
	ref.Priority = model.PriorityUrgent
	ref.DeliverySetting = model.DeliverySetting{Kind: model.SettingCareHome}
	ref.Equipment = []model.EquipmentItem{{Code: "BED-1", Quantity: 1}, {Code: "12 22 18", Quantity: 1}}
	e.accept(t, ref)
	waitFor(t, "the provider has the order", func() bool { return len(provider.received()) == 1 })
	waitFor(t, "the council has its copy", func() bool { return len(e.council.received()) == 1 })
	if c := provider.received()[0].Cell; c == nil || c.Class != "12 22" || c.Priority != "urgent" || c.Setting != "care-home" {
		t.Errorf("the copy's cell = %+v", c)
	}
	month := stats.Month(time.Now())
	var placed []stats.Count
	waitFor(t, "the order counted", func() bool {
		counts, err := e.store.Statistics(context.Background(), month, month)
		if err != nil {
			t.Fatal(err)
		}
		placed = nil
		for _, c := range counts {
			if c.Measure == stats.OrdersPlaced {
				placed = append(placed, c)
			}
		}
		return len(placed) > 0
	})
	want := stats.Count{Key: stats.Key{Month: month, Council: "council-a", Priority: "urgent", Setting: "care-home", Class: "12 22"},
		Measure: stats.OrdersPlaced, Days: stats.NoDays, N: 1}
	if len(placed) != 1 || placed[0] != want {
		t.Errorf("orders placed = %+v, want %+v", placed, want)
	}
}

// A commissioner that refuses the table (a 4xx) gets it dead-lettered,
// with a failed disclosure; replayed once it is fixed, it is delivered.
func TestStatisticsRefusedAreDeadLetteredThenReplayed(t *testing.T) {
	sim, h := novemberForACommissioner(t, http.StatusForbidden, time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC))
	ctx := context.Background()
	if n, err := h.publisher.PublishDue(ctx); err != nil || n != 1 {
		t.Fatalf("published %d, %v", n, err)
	}
	var dead []store.DeadLetter
	waitFor(t, "the copy dead-lettered", func() bool {
		var err error
		dead, err = h.store.DeadLetters(ctx)
		return err == nil && len(dead) == 1
	})
	if d := dead[0]; d.Kind != string(model.KindStatistics) || d.Recipient != commissionerID || d.ReferralID != "" || d.StatusCode != http.StatusForbidden {
		t.Errorf("dead letter %+v", d)
	}
	ds, err := h.store.Disclosures(ctx, "")
	if err != nil || len(ds) != 1 || ds[0].Outcome != store.OutcomeFailed || ds[0].Fields[0] != model.StatisticsLabel {
		t.Fatalf("disclosures %+v, %v", ds, err)
	}
	sim.ClearFailure()
	recut := routes.NewRecut(routes.RecutConfig{Routes: []config.Route{statisticsRoute}}, h.store)
	if _, err := h.store.ReplayDeadLetter(ctx, dead[0].ID, store.Replay{By: "operator", Topic: routes.TopicDeliver, Recut: recut}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivered after the replay", func() bool { return len(sim.Tables()) == 1 })
	if got := sim.Tables()[0].Body; got != published(t, h.store, "2026-11") {
		t.Errorf("replayed %q", got)
	}
}

// A month no hub sent (none ran in the month after it) is published by
// hand once it has ended: to the commissioner once, as 'iceshub stats'
// prints it. A month not ended, one not written YYYY-MM, one with no
// counts (October: before the hub ran), or a configuration without a
// statistics route is refused, and nothing is published.
func TestAnEndedMonthIsPublishedByHandOnce(t *testing.T) {
	// January 2027: only December is due; November was missed.
	sim, h := novemberForACommissioner(t, 0, time.Date(2027, 1, 10, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()
	for _, month := range []string{"2027-01", "2027-02", "2026-13", "2026-1", "Nov 2026", "", "2026-10"} {
		if n, _, err := h.publisher.PublishEnded(ctx, month); !errors.Is(err, routes.ErrCannotPublish) || n != 0 {
			t.Errorf("PublishEnded(%q) = %d, %v; want ErrCannotPublish", month, n, err)
		}
	}
	for i, want := range []int{1, 0} {
		n, to, err := h.publisher.PublishEnded(ctx, "2026-11")
		if err != nil || n != want || len(to) != 1 || to[0] != commissionerID {
			t.Fatalf("publication %d of November: %d to %v, %v; want %d", i, n, to, err, want)
		}
	}
	waitFor(t, "the commissioner has November", func() bool { return len(sim.Tables()) == 1 })
	if got := sim.Tables()[0]; got.Month != "2026-11" || got.Body != published(t, h.store, "2026-11") {
		t.Errorf("received %s:\n%s", got.Month, got.Body)
	}

	none, err := routes.NewPublisher(&config.Config{}, h.store, func() time.Time { return time.Date(2027, 1, 10, 0, 0, 0, 0, time.UTC) },
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := none.PublishEnded(ctx, "2026-10"); !errors.Is(err, routes.ErrCannotPublish) || !strings.Contains(err.Error(), "no route") {
		t.Errorf("without a statistics route: %v", err)
	}
	if n := len(sim.Received()); n != 1 {
		t.Errorf("the commissioner was called %d times", n)
	}
}
