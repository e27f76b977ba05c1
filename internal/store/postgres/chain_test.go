package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
)

// Two hubs disclosing at once, many transactions each, while both seal:
// every entry ends up in one chain that verifies, none twice, none lost.
func TestManyWritersOneChain(t *testing.T) {
	url := pgtest.URL(t)
	a, b := openTest(t, url), openTest(t, url)
	defer a.Close()
	defer b.Close()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		hub := a
		if w%2 == 1 {
			hub = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				d := store.Disclosure{At: time.Now(), ReferralID: fmt.Sprintf("r%d", w), Recipient: "provider", Kind: "referral",
					Fields: []string{"nhsNumber"}, Purpose: "p", LawfulBasis: "b", Outcome: store.OutcomeSent, Detail: fmt.Sprint(i)}
				if err := hub.Commit(context.Background(), store.Batch{Disclosures: []store.Disclosure{d, d}}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rep, err := b.VerifyDisclosures(context.Background())
	if err != nil || !rep.OK || rep.Entries != writers*each*2 {
		t.Fatalf("verify = %+v, %v; want %d entries in one chain", rep, err, writers*each*2)
	}
	ds, err := a.Disclosures(context.Background(), "r3")
	if err != nil || len(ds) != each*2 {
		t.Fatalf("r3 has %d entries, %v; want %d", len(ds), err, each*2)
	}
	for i := 1; i < len(ds); i++ {
		if ds[i].ID <= ds[i-1].ID {
			t.Fatalf("entries of r3 out of chain order: %d after %d", ds[i].ID, ds[i-1].ID)
		}
	}
}
