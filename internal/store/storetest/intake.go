package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store"
)

// testAcceptOnceUnderRace: the same referral sent eight times at once
// (each try naming the keys in its own order, one key shared by all) is
// accepted once; every other try gets the first answer, and one copy
// waits in the queue.
func testAcceptOnceUnderRace(t *testing.T, open func(t *testing.T) store.Engine) {
	s := openWithTopics(t, open, "referral.received")
	ctx := context.Background()
	const tries = 8
	type answer struct {
		resp intake.Response
		dup  bool
		err  error
	}
	answers := make([]answer, tries)
	var wg sync.WaitGroup
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := []string{"request:race", fmt.Sprintf("header:%d", i)}
			if i%2 == 1 {
				keys[0], keys[1] = keys[1], keys[0]
			}
			rec := statReferral("ref-race", time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
			resp := intake.Response{Status: 200, Body: []byte(fmt.Sprintf(`{"try":%d}`, i))}
			a := &answers[i]
			a.resp, a.dup, a.err = s.AcceptOnce(ctx, keys, resp, "referral.received", message.NewMessage(fmt.Sprint("m", i), []byte("{}")), rec)
		}()
	}
	wg.Wait()
	first := -1
	for i, a := range answers {
		if a.err != nil {
			t.Fatalf("try %d: %v", i, a.err)
		}
		if !a.dup {
			if first >= 0 {
				t.Fatalf("tries %d and %d were both accepted", first, i)
			}
			first = i
		}
	}
	if first < 0 {
		t.Fatal("no try was accepted")
	}
	for i, a := range answers {
		if string(a.resp.Body) != string(answers[first].resp.Body) {
			t.Errorf("try %d answered %s, want the accepted try's %s", i, a.resp.Body, answers[first].resp.Body)
		}
	}
	qs, err := s.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Topic == "referral.received" && q.Pending != 1 {
			t.Fatalf("%d copies wait on referral.received, want 1", q.Pending)
		}
	}
}
