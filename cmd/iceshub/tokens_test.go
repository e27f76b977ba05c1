package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/democreds"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/logging"
)

// partnerTokenEnvs are the token_env names of the built-in configuration.
var partnerTokenEnvs = []string{"ICESHUB_PROVIDER_TOKEN", "ICESHUB_CWAC_TOKEN", "ICESHUB_CEAST_TOKEN", "ICESHUB_NHS_TOKEN"}

// setPartnerTokens sets every token_env of the built-in configuration, but
// those named in unset, which it empties.
func setPartnerTokens(t *testing.T, unset ...string) {
	for _, env := range partnerTokenEnvs {
		v := "token-of-" + strings.ToLower(env)
		for _, u := range unset {
			if u == env {
				v = ""
			}
		}
		t.Setenv(env, v)
	}
}

// serveOnce runs serve with a context already cancelled, so that a hub that
// starts (when it should have refused) stops at once instead of serving on.
func serveOnce(t *testing.T, stderr io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return cmdServe(ctx, []string{"--data", t.TempDir(), "--addr", "127.0.0.1:0"}, stderr)
}

// serve and check refuse a partner whose token_env names an unset or empty
// variable, naming it (never a value); check --file-only checks the file
// alone; --insecure-dev makes it a warning.
func TestServeAndCheckRefuseAnUnsetTokenEnv(t *testing.T) {
	setPartnerTokens(t, "ICESHUB_NHS_TOKEN")
	t.Setenv(hub.AdminTokenEnv, "")
	var out, errOut bytes.Buffer
	err := serveOnce(t, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "ICESHUB_NHS_TOKEN, which is unset or empty") || !strings.Contains(err.Error(), `partner "nhs-trust"`) {
		t.Fatalf("serve with ICESHUB_NHS_TOKEN unset: %v", err)
	}
	if strings.Contains(err.Error(), "ICESHUB_PROVIDER_TOKEN") {
		t.Fatalf("serve names a token_env that is set: %v", err)
	}
	if code := run([]string{"check"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "ICESHUB_NHS_TOKEN, which is unset or empty") {
		t.Fatalf("check exited %d:\n%s", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"check", "--file-only"}, &out, &errOut); code != 0 {
		t.Fatalf("check --file-only exited %d:\n%s", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"check", "--insecure-dev"}, &out, &errOut); code != 0 || !strings.Contains(errOut.String(), "warning: INSECURE DEVELOPMENT MODE") || !strings.Contains(errOut.String(), "ICESHUB_NHS_TOKEN") {
		t.Fatalf("check --insecure-dev exited %d:\n%s", code, errOut.String())
	}
	t.Setenv("ICESHUB_NHS_TOKEN", "   ")
	errOut.Reset()
	if code := run([]string{"check"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "ICESHUB_NHS_TOKEN, which is unset or empty") {
		t.Fatalf("check with a blank token exited %d:\n%s", code, errOut.String())
	}
	setPartnerTokens(t)
	errOut.Reset()
	if code := run([]string{"check"}, &out, &errOut); code != 0 {
		t.Fatalf("check with every token set exited %d:\n%s", code, errOut.String())
	}
}

// An admin token shorter than 32 bytes stops serve and fails check, saying
// so without showing it.
func TestAdminTokenMustBeAtLeast32Bytes(t *testing.T) {
	setPartnerTokens(t)
	const short = "only-31-bytes-of-admin-token-xx"
	t.Setenv(hub.AdminTokenEnv, short)
	if err := serveOnce(t, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "ICESHUB_ADMIN_TOKEN holds 31 bytes: the admin token must be at least 32") || strings.Contains(err.Error(), short) {
		t.Fatalf("serve: %v", err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "at least 32") {
		t.Fatalf("check exited %d:\n%s", code, errOut.String())
	}
	t.Setenv(hub.AdminTokenEnv, short+"y")
	errOut.Reset()
	if code := run([]string{"check"}, &out, &errOut); code != 0 {
		t.Fatalf("check with a 32-byte admin token exited %d:\n%s", code, errOut.String())
	}
}

// In insecure development mode an unset token_env is a loud warning and
// the hub starts.
func TestInsecureDevWarnsOfAnUnsetTokenEnv(t *testing.T) {
	setPartnerTokens(t, "ICESHUB_PROVIDER_TOKEN")
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.DataDir = t.TempDir()
	cfg.Server.InsecureDev = true
	logs := &syncBuffer{}
	h, err := hub.New(cfg, slog.New(slog.NewTextHandler(logs, nil)), hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if !strings.Contains(logs.String(), "INSECURE DEVELOPMENT MODE") || !strings.Contains(logs.String(), "ICESHUB_PROVIDER_TOKEN") {
		t.Fatalf("no warning of the unset token_env:\n%s", logs.String())
	}
}

// A webhook accepted by one hub is refused, signed as it was, by the next
// hub on the same store; the same body signed afresh is accepted.
func TestReplayedWebhookIsRefusedAfterARestart(t *testing.T) {
	sims := demo.NewPartners()
	t.Cleanup(sims.Close)
	cfg := simulatedConfig(t, sims, t.TempDir())
	logs := &syncBuffer{}
	start := func() (string, func()) {
		logger := slog.New(logging.New(slog.NewJSONHandler(logs, nil)))
		h, err := hub.New(cfg, logger, hub.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return runHub(t, h)
	}
	body := []byte(`{"event":"order-status","timestamp":"2026-03-02T09:00:00Z","data":{"orderReference":"ORD-NONE","status":"delivered"}}`)
	signed := http.Header{"Content-Type": {"application/json"}}
	req := func(base string, h http.Header) int {
		r, err := http.NewRequest(http.MethodPost, base+"/provider/events", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Header = h.Clone()
		status, _, err := demo.SendToHub(r)
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	sign := func() http.Header {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		if err := sims.Creds.SignWebhook(r, "provider", body); err != nil {
			t.Fatal(err)
		}
		h := signed.Clone()
		for _, k := range []string{"X-Ices-Timestamp", "X-Ices-Signature"} {
			h.Set(k, r.Header.Get(k))
		}
		return h
	}
	first := sign()
	base, stop := start()
	if got := req(base, first); got == http.StatusUnauthorized || got >= 500 {
		t.Fatalf("first send: %d, want it past authentication", got)
	}
	stop()
	before := len(logs.String())
	base, stop = start()
	defer stop()
	if got := req(base, first); got != http.StatusUnauthorized || !strings.Contains(logs.String()[before:], `"reason":"replay"`) {
		t.Fatalf("the same signed request after a restart: %d, want 401 (replay)\n%s", got, logs.String())
	}
	time.Sleep(time.Second) // a new timestamp, so a new signature
	if got := req(base, sign()); got == http.StatusUnauthorized || got >= 500 {
		t.Fatalf("signed afresh after the restart: %d", got)
	}
}

// At the hub's FHIR edge, a token without iat and a 10-year token are 401.
func TestHubRefusesTokensWithoutIatOrTooLong(t *testing.T) {
	base, _, sims := startTestHub(t, io.Discard)
	now := time.Now()
	for name, claims := range map[string]jwt.RegisteredClaims{
		"without iat": {ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute))},
		"10 years":    {IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.AddDate(10, 0, 0))},
	} {
		claims.Issuer, claims.Audience, claims.Subject = democreds.Issuer, jwt.ClaimStrings{democreds.Audience}, sims.Creds.NHSID
		tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(sims.Creds.NHSKey)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := http.NewRequest(http.MethodPost, base+"/fhir/$process-message", strings.NewReader(`{}`))
		r.Header.Set("Content-Type", "application/fhir+json")
		r.Header.Set("Authorization", "Bearer "+tok)
		if status, body, err := demo.SendToHub(r); err != nil || status != http.StatusUnauthorized {
			t.Errorf("%s: %d %v, want 401\n%s", name, status, err, body)
		}
	}
}
