package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// newTestHub builds a hub on cfg with the short retries of the tests.
func newTestHub(t *testing.T, cfg *config.Config) *hub.Hub {
	t.Helper()
	h, err := hub.New(cfg, slog.New(slog.DiscardHandler), hub.Options{
		Retry: routes.Retry{MaxRetries: 1, InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond},
		Park:  routes.Park{First: 20 * time.Millisecond, Max: 200 * time.Millisecond, Poll: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Moving from the embedded store: a SQLite hub left copies waiting for
// the provider (down), a dead letter (a council refused) and a held
// referral (no council covers it); `iceshub store copy` moves them into
// PostgreSQL, and a hub there delivers what waited, keeps the dead letter
// and the hold, and its disclosure record verifies.
func TestStoreCopyThenAHubOnPostgresDeliversWhatWaited(t *testing.T) {
	mutate := onPostgres(t) // the keys in the environment: both hubs use them
	sims := demo.NewPartners()
	t.Cleanup(sims.Close)
	dir := t.TempDir()
	cfg := simulatedConfig(t, sims, dir)
	sims.Provider.Partner().SetFailure(http.StatusServiceUnavailable)
	sims.Councils["council-ceast"].Partner().FailNext(1, http.StatusUnprocessableEntity, "")
	h := newTestHub(t, cfg)
	base, stop := runHub(t, h)
	var ids []string
	for _, f := range []string{"referral-3-lines.json", "referral-no-council.json"} {
		status, answer, err := sims.PostBundle(context.Background(), base, mustRead(t, "../../testdata/fhir/"+f))
		if err != nil || status != http.StatusOK {
			t.Fatalf("POST %s = %d, %v\n%s", f, status, err, answer)
		}
		ids = append(ids, demo.ReferralIDFrom(answer))
	}
	ctx := context.Background()
	waitFor(t, "two provider copies parked, a dead letter and a hold", func() bool {
		parked, _ := h.Store().ParkedDeliveries(ctx)
		dead, _ := h.Store().DeadLetters(ctx)
		held, _ := h.Store().Held(ctx)
		return len(parked) == 2 && len(dead) == 1 && len(held) == 1
	})
	stop()

	cfgFile := filepath.Join(t.TempDir(), "postgres.yaml")
	if err := os.WriteFile(cfgFile, []byte("store:\n  backend: postgres\n  data_dir: "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"store", "copy", "--from-data", dir, "--config", cfgFile}, &out, &errOut); code != 0 {
		t.Fatalf("store copy exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "disclosure record verified") {
		t.Errorf("store copy said:\n%s", out.String())
	}

	sims.Provider.Partner().ClearFailure()
	pgCfg := *cfg
	pgCfg.Store.DataDir = t.TempDir()
	mutate(&pgCfg)
	pg := newTestHub(t, &pgCfg)
	_, stopPG := runHub(t, pg)
	defer stopPG()
	for _, id := range ids {
		key := routes.IdempotencyKey(id, "provider", model.KindReferral)
		waitFor(t, "the provider's copy of "+id, func() bool { _, ok := sims.Received("provider", key); return ok })
	}
	dead, err := pg.Store().DeadLetters(ctx)
	if err != nil || len(dead) != 1 {
		t.Errorf("dead letters on PostgreSQL = %d, %v; want the one copied", len(dead), err)
	}
	if held, err := pg.Store().Held(ctx); err != nil || len(held) != 1 {
		t.Errorf("held on PostgreSQL = %d, %v; want the one copied", len(held), err)
	}
	if rep, err := pg.Store().VerifyDisclosures(ctx); err != nil || !rep.OK {
		t.Errorf("audit verify on PostgreSQL after the copy = %+v, %v", rep, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
