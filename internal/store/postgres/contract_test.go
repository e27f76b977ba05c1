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
	p, err := Open(context.Background(), Options{URL: url, Keyring: keys, Migrate: true, PollInterval: 20e6,
		Logger: watermill.NewStdLogger(false, false)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
