package sqlite

import (
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/storetest"
)

// Watermill's Pub/Sub conformance tests, where they apply (RunPubSub): one
// store serves them all, as one hub owns its data directory.
func TestWatermillPubSub(t *testing.T) {
	var once sync.Once
	var s *SQLite
	dir := t.TempDir()
	t.Cleanup(func() {
		if s != nil {
			s.Close()
		}
	})
	storetest.RunPubSub(t, tests.Features{Persistent: true, ForceShort: true, RequireSingleInstance: true}, func(t *testing.T) store.Engine {
		once.Do(func() {
			var err error
			if s, err = Open(Options{DataDir: dir, PollInterval: 5e6, InFlight: 16}); err != nil {
				t.Fatal(err)
			}
		})
		return s
	})
}
