package postgres

import (
	"context"
	"testing"

	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
	"github.com/iceshub/iceshub/internal/store/storetest"
)

// The store's contract suite, on a new schema of the test database.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Engine { return openTest(t, pgtest.URL(t)) })
}

// openTest opens a store on url with a new data key, migrating it.
func openTest(t testing.TB, url string) *Postgres {
	t.Helper()
	key, err := crypt.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := crypt.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open(context.Background(), Options{URL: url, Keyring: keys, Migrate: true, PollInterval: 20e6})
	if err != nil {
		t.Fatal(err)
	}
	return p
}
