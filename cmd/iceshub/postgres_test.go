package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
	"github.com/iceshub/iceshub/routes"
)

// onPostgres points the hub's configuration at a new PostgreSQL schema,
// with the keys every hub on it must share in the environment.
func onPostgres(t *testing.T) func(*config.Config) {
	t.Helper()
	url := pgtest.URL(t)
	t.Setenv(config.DefaultPostgresURLEnv, url)
	t.Setenv("ICESHUB_DATA_KEY", randomHex(t))
	t.Setenv("ICESHUB_SUBJECT_KEY", randomHex(t))
	return func(c *config.Config) { c.Store.Backend = "postgres" }
}

func randomHex(t *testing.T) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// The whole flow on PostgreSQL: a referral accepted, each partner's copy
// delivered and recorded, a repeat answered the same.
func TestEndToEndOnPostgres(t *testing.T) {
	base, h, sims := startHubWith(t, io.Discard, onPostgres(t))
	bundle := mustRead(t, "../../testdata/fhir/referral-3-lines.json")
	status, answer, err := sims.PostBundle(context.Background(), base, bundle)
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST = %d, %v\n%s", status, err, answer)
	}
	id := demo.ReferralIDFrom(answer)
	for _, d := range waitOutcomes(t, h, id, 3) {
		if d.Outcome != store.OutcomeSent {
			t.Fatalf("outcome %+v", d)
		}
	}
	for _, p := range []string{"provider", "council-ceast"} {
		if _, ok := sims.Received(p, routes.IdempotencyKey(id, p, model.KindReferral)); !ok {
			t.Errorf("%s received nothing under the referral's key", p)
		}
	}
	_, again, err := sims.PostBundle(context.Background(), base, bundle)
	if err != nil || demo.ReferralIDFrom(again) != id {
		t.Errorf("a repeat got %q, %v; want the first answer, %q", demo.ReferralIDFrom(again), err, id)
	}
	if rep, err := h.Store().VerifyDisclosures(context.Background()); err != nil || !rep.OK || rep.Entries < 3 {
		t.Errorf("audit verify on PostgreSQL = %+v, %v", rep, err)
	}
}

// A hub on PostgreSQL never generates a key: hubs that share a store must
// share its keys, so a missing one is refused, named.
func TestPostgresHubRefusesToMakeItsOwnKeys(t *testing.T) {
	mutate := onPostgres(t)
	t.Setenv("ICESHUB_DATA_KEY", "")
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	mutate(cfg)
	cfg.Store.DataDir = t.TempDir()
	_, err = hub.CheckEnvironment(cfg, true, strings.Repeat("k", 40))
	if err == nil || !strings.Contains(err.Error(), "ICESHUB_DATA_KEY") {
		t.Fatalf("environment check = %v, want the missing data key named", err)
	}
}
