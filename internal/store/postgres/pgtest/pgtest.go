// Package pgtest gives tests a PostgreSQL database of their own: a new
// schema in the database named by EnvURL, dropped when the test ends.
// Without EnvURL the test is skipped with one message naming it; under CI
// (CI=true) it fails instead, so that PostgreSQL tests never go quietly
// missing there.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that holds the PostgreSQL URL tests use, for
// example postgres://postgres@127.0.0.1:5432/iceshub_test.
const EnvURL = "ICESHUB_TEST_POSTGRES_URL"

var skipOnce sync.Once

// URL returns the URL of a new, empty schema for t (the URL of EnvURL with
// search_path set to it), dropped with everything in it when t ends.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: the PostgreSQL tests must run in CI (.ci/run sets it)", EnvURL)
		}
		skipOnce.Do(func() {
			println("pgtest: PostgreSQL tests skipped: set " + EnvURL + " (for example postgres://postgres@127.0.0.1:5432/postgres) to run them")
		})
		t.Skipf("PostgreSQL tests skipped: %s is not set", EnvURL)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("pgtest: connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	return withSearchPath(t, base, schema)
}

func withSearchPath(t testing.TB, base, schema string) string {
	if strings.Contains(base, "://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatalf("pgtest: %s is not a URL", EnvURL)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return base + " search_path=" + schema
}
