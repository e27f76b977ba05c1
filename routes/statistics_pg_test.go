package routes_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/iceshub/iceshub/adapters/commissioner"
	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
)

// Three hubs on one PostgreSQL database, each with its router and its
// publisher, all finding the month due at once: one copy is published,
// and the commissioner is called once.
func TestStatisticsOnceWithSeveralHubsOnPostgres(t *testing.T) {
	url := pgtest.URL(t)
	key, err := crypt.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypt.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	sim := commissioner.NewSimulator()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	clock := &testClock{now: time.Date(2026, 12, 1, 7, 0, 0, 0, time.UTC)}
	var hubs []*statsHub
	for range 3 {
		st, err := postgres.Open(context.Background(), postgres.Options{URL: url, Keyring: keys, Migrate: true,
			PollInterval: 20 * time.Millisecond, Logger: watermill.NopLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		hubs = append(hubs, startStatsHubOn(t, st, srv.URL, clock.Now))
	}
	ctx := context.Background()
	if err := hubs[0].store.Commit(ctx, store.Batch{Stats: november()}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	counts := make([]int, len(hubs)*2)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := hubs[i%len(hubs)].publisher.PublishDue(ctx)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 1 {
		t.Fatalf("published %v: %d copies, want 1", counts, total)
	}
	waitFor(t, "the commissioner has the table", func() bool { return len(sim.Tables()) == 1 })
	if got, want := sim.Tables()[0].Body, published(t, hubs[1].store, "2026-11"); got != want {
		t.Errorf("received\n%s\nwant\n%s", got, want)
	}
	checkSuppressed(t, sim.Tables()[0].Body)
	time.Sleep(200 * time.Millisecond) // ten polls of each hub's queue
	if n := len(sim.Received()); n != 1 {
		t.Errorf("the commissioner was called %d times, want once", n)
	}
}
