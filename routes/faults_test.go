package routes_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
	"github.com/iceshub/iceshub/routes"
)

// fullDisk is the router's store with a disk that can fill up: while full,
// every commit fails, as SQLite's do when it cannot write.
type fullDisk struct {
	*sqlite.SQLite
	full   atomic.Bool
	failed atomic.Int32
}

func (f *fullDisk) Commit(ctx context.Context, b store.Batch) error {
	if f.full.Load() {
		f.failed.Add(1)
		return errors.New("sqlite: database or disk is full (SQLITE_FULL)")
	}
	return f.SQLite.Commit(ctx, b)
}

// keyedPartner accepts everything and counts the sends of each copy.
type keyedPartner struct {
	mu    sync.Mutex
	sends map[string]int
}

func (k *keyedPartner) Send(_ context.Context, d model.Delivery) (model.Receipt, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sends[d.IdempotencyKey]++
	return model.Receipt{PartnerReference: "REF-" + d.Referral.ID, StatusCode: 201}, nil
}

func (k *keyedPartner) counts() (copies, most int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, n := range k.sends {
		most = max(most, n)
	}
	return len(k.sends), most
}

// TestFullDiskHoldsDeliveriesInsteadOfSendingThemAgain: while the store
// cannot record what the partner answered, a copy the partner accepted is
// not sent again (each failed commit used to hand it back to its queue,
// which sent it again at once), no other copy is sent, the fault is logged
// once when it starts and once when it ends, and once the disk has room
// every copy is recorded, each sent once.
func TestFullDiskHoldsDeliveriesInsteadOfSendingThemAgain(t *testing.T) {
	prov, council := &keyedPartner{sends: map[string]int{}}, &keyedPartner{sends: map[string]int{}}
	disk := &fullDisk{}
	disk.full.Store(true)
	logs := &routes.SyncLog{}
	e := startWithStore(t, testRoutes, prov, council, routes.Park{First: time.Millisecond, Max: 5 * time.Millisecond, Poll: 5 * time.Millisecond}, nil,
		func(st *sqlite.SQLite) routes.Store { disk.SQLite = st; return disk }, logs)
	for i := range 6 {
		e.accept(t, referral(fmt.Sprintf("ref-%d", i), "CH1 4QX"))
	}
	// Let the router run into the full disk for a while: enough failed
	// commits that a copy sent again on each would show.
	waitFor(t, "commits to fail", func() bool { return disk.failed.Load() >= 5 })
	sentWhileFull, _ := prov.counts()
	councilWhileFull, _ := council.counts()
	if _, most := prov.counts(); most > 1 {
		t.Errorf("a copy was sent %d times while its receipt could not be recorded", most)
	}
	if _, most := council.counts(); most > 1 {
		t.Errorf("a council copy was sent %d times while its receipt could not be recorded", most)
	}
	disk.full.Store(false)
	waitFor(t, "every copy delivered", func() bool {
		for _, id := range []string{"ref-0", "ref-5"} {
			if n, err := e.store.Disclosures(context.Background(), id); err != nil || len(n) < 2 {
				return false
			}
		}
		copies, _ := prov.counts()
		cc, _ := council.counts()
		return copies == 6 && cc == 6
	})
	if _, most := prov.counts(); most != 1 {
		t.Errorf("a provider copy was sent %d times", most)
	}
	if _, most := council.counts(); most != 1 {
		t.Errorf("a council copy was sent %d times", most)
	}
	log := logs.String()
	if n := strings.Count(log, "the store cannot record what partners answered"); n != 1 {
		t.Errorf("the fault was logged %d times, want once:\n%s", n, log)
	}
	if n := strings.Count(log, "the store takes writes again"); n != 1 || !strings.Contains(log, "outcomes_held=") {
		t.Errorf("the recovery was logged %d times, want once with the count:\n%s", n, log)
	}
	t.Logf("sent while full: %d provider, %d council copies; %d commits refused", sentWhileFull, councilWhileFull, disk.failed.Load())
}
