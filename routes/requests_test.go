package routes_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/iceshub/iceshub/routes"
)

// A queue hands out more messages than it may have requests open to the
// partner (Config.Requests): the others wait for a free request, so the
// partner never sees more than Requests at once, and every copy is
// delivered.
func TestAQueueHasNoMoreRequestsOpenThanItsLimit(t *testing.T) {
	provider := &concurrentPartner{release: make(chan struct{})}
	e := startWithOptions(t, testRoutes, provider, &fakePartner{}, fastPark, func(c *routes.Config) {
		c.InFlight = 8 // messages handed out at once
		c.Requests = 2
	})
	for i := range 6 {
		e.accept(t, referral(fmt.Sprintf("limited-%d", i), "CH1 4AA"))
	}
	waitFor(t, "two requests open", func() bool { return provider.inFlight() >= 2 })
	// Six copies are handed out; without the limit all six reach the
	// partner within a few milliseconds. Watch for a while.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if n := provider.inFlight(); n > 2 {
			t.Fatalf("%d requests open to the partner at once; want at most 2", n)
		}
	}
	close(provider.release)
	waitFor(t, "all delivered", func() bool { return provider.delivered.Load() == 6 })
	if most := provider.mostInFlight(); most != 2 {
		t.Fatalf("at most %d requests were open at once; want 2", most)
	}
}
