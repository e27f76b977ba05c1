package routes_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/routes"
)

var fastPark = routes.Park{First: time.Millisecond, Max: 5 * time.Millisecond, Poll: 5 * time.Millisecond}

// While the partner's circuit breaker is open its parked copies are not
// attempted at all; once it closes they are delivered.
func TestParkedCopiesWaitWhileThePartnerIsDown(t *testing.T) {
	ids := []string{"down-1", "down-2", "down-3"}
	provider := &selectivePartner{down: map[string]bool{}, tries: map[string]int{}}
	for _, id := range ids {
		provider.setDown(id, true)
	}
	var breakerOpen atomic.Bool
	e := startWithOptions(t, testRoutes, provider, &fakePartner{}, fastPark, func(c *routes.Config) {
		c.Down = func(partner string) bool { return partner == "provider" && breakerOpen.Load() }
	})
	for _, id := range ids {
		e.accept(t, referral(id, "CH1 4AA"))
	}
	tries := func() int {
		n := 0
		for _, id := range ids {
			n += provider.triesFor(id)
		}
		return n
	}
	waitFor(t, "each copy tried again from its lane", func() bool {
		for _, id := range ids {
			if provider.triesFor(id) < 2 {
				return false
			}
		}
		return true
	})
	breakerOpen.Store(true)
	time.Sleep(20 * time.Millisecond) // an attempt already handed out may finish
	before := tries()
	time.Sleep(200 * time.Millisecond) // forty polls of the parked lanes
	if after := tries(); after != before {
		t.Fatalf("%d attempts while the breaker was open; want none", after-before)
	}
	for _, id := range ids {
		provider.setDown(id, false)
	}
	breakerOpen.Store(false)
	waitFor(t, "every parked copy delivered", func() bool { return len(provider.received()) == len(ids) })
}

// concurrentPartner fails while failing is set; otherwise it holds every
// call until release is closed, counting how many wait at once.
type concurrentPartner struct {
	release   chan struct{}
	failing   atomic.Bool
	failures  atomic.Int64
	delivered atomic.Int64
	mu        sync.Mutex
	waiting   int
	most      int
}

func (p *concurrentPartner) Send(_ context.Context, d model.Delivery) (model.Receipt, error) {
	if p.failing.Load() {
		p.failures.Add(1)
		return model.Receipt{}, &delivery.Error{Partner: "provider", StatusCode: 503, Err: errors.New("unavailable")}
	}
	p.mu.Lock()
	p.waiting++
	p.most = max(p.most, p.waiting)
	p.mu.Unlock()
	<-p.release
	p.mu.Lock()
	p.waiting--
	p.mu.Unlock()
	p.delivered.Add(1)
	return model.Receipt{PartnerReference: "ORD-" + d.Referral.ID, StatusCode: 201}, nil
}

func (p *concurrentPartner) inFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waiting
}

func (p *concurrentPartner) mostInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.most
}

// Parked copies of different referrals are attempted several at once
// (Config.InFlight), so a backlog drains faster than one at a time.
func TestParkedCopiesOfDifferentReferralsGoSeveralAtOnce(t *testing.T) {
	provider := &concurrentPartner{release: make(chan struct{})}
	provider.failing.Store(true)
	e := startWithOptions(t, testRoutes, provider, &fakePartner{}, fastPark, func(c *routes.Config) { c.InFlight = 4 })
	for i := range 6 {
		e.accept(t, referral(fmt.Sprintf("many-%d", i), "CH1 4AA"))
	}
	// Every copy has left the provider's queue for its lane, so that what
	// is in flight afterwards comes from the lanes alone.
	waitFor(t, "every copy parked after failing", func() bool {
		parked, err := e.store.ParkedDeliveries(context.Background())
		n := 0
		for _, p := range parked {
			if p.Partner == "provider" {
				n++
			}
		}
		return err == nil && n == 6
	})
	provider.failing.Store(false)
	waitFor(t, "four parked copies in flight at once", func() bool { return provider.inFlight() >= 4 })
	close(provider.release)
	waitFor(t, "all delivered", func() bool { return provider.delivered.Load() == 6 })
	if most := provider.mostInFlight(); most > 4 {
		t.Fatalf("%d copies in flight at once; want at most 4", most)
	}
}
