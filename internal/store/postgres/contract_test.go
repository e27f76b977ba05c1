package postgres

import (
	"context"
	"sync"
	"testing"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
	"github.com/iceshub/iceshub/internal/store/storetest"
)

// The store's contract suite, on a new schema of the test database.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Engine { return openTest(t, pgtest.URL(t)) })
}

var (
	keysMu sync.Mutex
	keysOf = map[string]*crypt.Keyring{}
)

// openTest opens a store on url, migrating it, with the data key of url's
// stores (new for the first).
func openTest(t testing.TB, url string) *Postgres {
	t.Helper()
	p, err := Open(context.Background(), Options{URL: url, Keyring: testKeys(t, url), Migrate: true, PollInterval: 20e6,
		Logger: watermill.NewStdLogger(false, false)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testKeys returns the data keys of url's stores, new for the first.
func testKeys(t testing.TB, url string) *crypt.Keyring {
	keysMu.Lock()
	keys := keysOf[url]
	if keys == nil {
		key, err := crypt.NewKey()
		if err != nil {
			t.Fatal(err)
		}
		if keys, err = crypt.NewKeyring(key); err != nil {
			t.Fatal(err)
		}
		keysOf[url] = keys
	}
	keysMu.Unlock()
	return keys
}

// Hubs starting at once on a new database migrate it one at a time: every
// one opens, and the schema is made once.
func TestHubsStartingTogetherMigrateOnce(t *testing.T) {
	url := pgtest.URL(t)
	keys := testKeys(t, url)
	var wg sync.WaitGroup
	stores := make([]*Postgres, 3)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := Open(context.Background(), Options{URL: url, Keyring: keys, Migrate: true})
			if err != nil {
				t.Errorf("hub %d: %v", i, err)
			}
			stores[i] = p
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	states, err := stores[0].MigrationStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if !s.Applied {
			t.Errorf("migration %d %s not applied", s.Version, s.Name)
		}
	}
}
