package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/democreds"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
)

// trustB is a second NHS trust with credentials of its own, speaking for
// an organisation no fixture names.
const (
	trustB       = "nhs-trust-b"
	trustBIssuer = "https://idp.trust-b.invalid"
)

// addTrustB adds trust B to cfg, signing its tokens with secret (HS256).
func addTrustB(t *testing.T, cfg *config.Config, secret []byte, messages []string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "trust-b.secret")
	if err := os.WriteFile(file, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.Partners = append(cfg.Partners, config.Partner{
		ID: trustB, Kind: config.KindNHS, Name: "Another NHS trust", BaseURL: "http://127.0.0.1:9/fhir",
		ODSCodes: []string{"Y9Z09"}, Timeout: time.Second, RetryMax: 1,
		Inbound: config.Inbound{
			Mode: config.ModeJWT,
			JWT:  config.InboundJWT{Issuer: trustBIssuer, Audience: democreds.Audience, Algorithm: auth.AlgHS256, SecretFile: file, Skew: auth.DefaultSkew},
			Rate: config.Rate{PerSecond: 1000, Burst: 1000}, Endpoints: config.DefaultEndpoints(config.KindNHS), Messages: messages,
		},
	})
}

// postAs sends a FHIR bundle to the hub with a fresh token of trust B.
func postAs(t *testing.T, base string, secret, body []byte) (int, []byte) {
	t.Helper()
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: trustBIssuer, Audience: jwt.ClaimStrings{democreds.Audience}, Subject: trustB,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	url := base + "/fhir/$process-message"
	if bytes.Contains(body, []byte(`"transaction"`)) {
		url = base + "/fhir"
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("X-Request-ID", uuid.NewString())
	req.Header.Set("Authorization", "Bearer "+tok)
	status, answer, err := demo.SendToHub(req)
	if err != nil {
		t.Fatal(err)
	}
	return status, answer
}

// TestAnotherTrustCannotTouchAReferral: trust B, authenticated with its own
// valid credentials, cannot cancel, amend, resend or ask for collection of
// trust A's referral, nor create a referral in A's name: each is 403
// forbidden with an answer that does not say whether the referral exists,
// counted against B; the provider and council receive nothing from it,
// and A's own cancellation still goes through.
func TestAnotherTrustCannotTouchAReferral(t *testing.T) {
	secret := []byte(strings.Repeat("trust-b-test-secret-", 2))
	base, h, sims := startHubWith(t, io.Discard, func(cfg *config.Config) {
		addTrustB(t, cfg, secret, config.DefaultMessages(config.KindNHS))
	})
	ctx := context.Background()
	status, answer, err := sims.PostBundle(ctx, base, mustRead(t, "../../testdata/fhir/referral-1-line.json"))
	if err != nil || status != http.StatusOK {
		t.Fatalf("trust A's referral: %d %v\n%s", status, err, answer)
	}
	id := demo.ReferralIDFrom(answer)
	if _, err := demo.WaitOrdered(ctx, h, id, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	before := demo.Counts(sims.Accepted())

	var unknownAnswer []byte
	for _, c := range []struct{ name, file string }{
		{"cancellation", "cancellation-revoked.json"},
		{"amendment", "amendment-1-line.json"},
		{"collection", "collection-1-line.json"},
		{"resend of A's referral", "referral-1-line.json"},
		{"new referral naming A's organisations", "referral-3-lines.json"},
	} {
		status, answer := postAs(t, base, secret, mustRead(t, "../../testdata/fhir/"+c.file))
		if status != http.StatusForbidden || outcomeCode(answer) != "forbidden" {
			t.Errorf("%s by trust B: %d %s, want 403 forbidden", c.name, status, answer)
		}
		if bytes.Contains(answer, []byte(id)) {
			t.Errorf("%s by trust B: the answer names A's referral: %s", c.name, answer)
		}
		if c.name == "cancellation" {
			unknownAnswer = answer
		}
	}
	// A cancellation of a ServiceRequest the hub does not hold is answered
	// exactly as one of A's: B learns nothing of which referrals exist.
	unknown := bytes.ReplaceAll(mustRead(t, "../../testdata/fhir/cancellation-revoked.json"),
		[]byte("fb034f78-c1bb-54f0-90cf-efb7581fc5c3"), []byte("0f0f0f0f-c1bb-54f0-90cf-efb7581fc5c3"))
	if status, answer := postAs(t, base, secret, unknown); status != http.StatusForbidden || !bytes.Equal(answer, unknownAnswer) {
		t.Errorf("cancellation of an unknown referral: %d %s\nwant the same answer as for A's referral:\n%s", status, answer, unknownAnswer)
	}
	m := scrape(t, base)
	if n := m[series("iceshub_inbound_requests_total", "partner", trustB, "outcome", auth.OutcomeForbidden)]; n != 6 {
		t.Errorf("trust B's refusals counted %v times on /metrics, want 6", n)
	}
	if n := m[series("iceshub_inbound_requests_total", "partner", trustB, "outcome", auth.OutcomeAccepted)]; n != 0 {
		t.Errorf("trust B's refused requests also counted as accepted %v times", n)
	}
	rec, found, err := h.Store().FindReferral(ctx, intake.Lookup{ReferralID: id})
	if err != nil || !found || rec.Status != model.StatusOrdered && rec.Status != model.StatusAccepted {
		t.Fatalf("A's referral after B's attempts: %+v %v %v", rec.Status, found, err)
	}

	// A's own cancellation is delivered; had any of B's changes been
	// accepted, it would have reached the provider first (copies about one
	// referral keep their order) or made A's cancellation impossible.
	status, answer, err = sims.PostBundle(ctx, base, mustRead(t, "../../testdata/fhir/cancellation-revoked.json"))
	if err != nil || status != http.StatusOK {
		t.Fatalf("trust A's own cancellation: %d %v\n%s", status, err, answer)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := demo.Counts(sims.Accepted())
		if now["provider"] > before["provider"] && now["council-cwac"] > before["council-cwac"] {
			if now["provider"] != before["provider"]+1 || now["council-cwac"] != before["council-cwac"]+1 {
				t.Errorf("partners received %v after %v: only A's cancellation should have reached them", now, before)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's cancellation not delivered: %v, before %v", now, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	last := sims.Accepted()["provider"]
	if got := last[len(last)-1]; !strings.Contains(got.Path+string(got.Body), "cancel") {
		t.Errorf("the provider's last message is %s %s, want A's cancellation", got.Path, got.Body)
	}
}

// TestMessageKindsAPartnerMayNotSend: a partner whose inbound.messages
// leaves out a kind is refused that kind with 403 before anything is read
// or stored, whatever referral it names.
func TestMessageKindsAPartnerMayNotSend(t *testing.T) {
	secret := []byte(strings.Repeat("trust-b-test-secret-", 2))
	// Trust B speaks for the fixtures' organisations here, so that only
	// the kind decides.
	base, h, _ := startHubWith(t, io.Discard, func(cfg *config.Config) {
		for i := range cfg.Partners {
			if cfg.Partners[i].ID == "nhs-trust" {
				cfg.Partners[i].ODSCodes = []string{"Y9Z08"}
			}
		}
		addTrustB(t, cfg, secret, []string{"cancellation"})
		cfg.Partners[len(cfg.Partners)-1].ODSCodes = []string{"Y9Z01", "Y9Z02", "Y9Z03"}
	})
	ctx := context.Background()
	for _, c := range []struct{ kind, file string }{
		{"referral", "referral-1-line.json"},
		{"collection", "collection-1-line.json"},
	} {
		status, answer := postAs(t, base, secret, mustRead(t, "../../testdata/fhir/"+c.file))
		if status != http.StatusForbidden || !bytes.Contains(answer, []byte("may not send "+strings.ReplaceAll(c.kind, "collection", "collection request")+" messages")) {
			t.Errorf("%s: %d %s, want 403 naming the kind", c.kind, status, answer)
		}
	}
	if n, err := h.Store().Pending(ctx, "referral.received"); err != nil || n != 0 {
		t.Errorf("referrals stored: %d %v", n, err)
	}
	if n := scrape(t, base)[series("iceshub_inbound_requests_total", "partner", trustB, "outcome", auth.OutcomeForbidden)]; n != 2 {
		t.Errorf("refusals counted %v on /metrics, want 2", n)
	}
}
