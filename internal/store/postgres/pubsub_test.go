package postgres

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
	"github.com/iceshub/iceshub/internal/store/storetest"
)

// Watermill's Pub/Sub conformance tests, where they apply (RunPubSub):
// each test's publisher and subscriber are hubs on one database.
func TestWatermillPubSub(t *testing.T) {
	url := pgtest.URL(t)
	storetest.RunPubSub(t, tests.Features{Persistent: true, ForceShort: true}, func(t *testing.T) store.Engine {
		p := openTest(t, url)
		p.opts.InFlight = 16
		t.Cleanup(func() { p.Close() })
		return p
	})
}
