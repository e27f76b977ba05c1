package fhir_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store/sqlite"
)

// TestWithIntakeAndStore runs the handler over real HTTP on the real
// intake use case and the embedded store: a referral is committed once, a
// retry gets the very same bytes, and nothing is published twice.
func TestWithIntakeAndStore(t *testing.T) {
	st, err := sqlite.Open(sqlite.Options{DataDir: t.TempDir(), PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := intake.New(st)
	if err != nil {
		t.Fatal(err)
	}
	h, err := fhiradapter.New(fhiradapter.Config{}, svc, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(asPartner(h, trustA))
	defer srv.Close()

	post := func(path, file, requestID string) (int, []byte) {
		req, err := http.NewRequest("POST", srv.URL+path, bytes.NewReader(read(t, file)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/fhir+json")
		if requestID != "" {
			req.Header.Set("X-Request-ID", requestID)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		if _, err := b.ReadFrom(resp.Body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b.Bytes()
	}

	id := uuid.NewString()
	s1, b1 := post("/fhir/$process-message", "referral-1-line.json", id)
	s2, b2 := post("/fhir/$process-message", "referral-1-line.json", id)
	s3, b3 := post("/fhir/$process-message", "referral-1-line.json", "") // same message id and content
	if s1 != 200 || s2 != 200 || s3 != 200 || !bytes.Equal(b1, b2) || !bytes.Equal(b1, b3) {
		t.Fatalf("statuses %d %d %d; the repeats must return the first answer", s1, s2, s3)
	}
	if s, b := post("/fhir", "referral-transaction.json", ""); s != 200 || bytes.Equal(b, b1) {
		t.Fatalf("transaction: %d", s)
	}
	if s, _ := post("/fhir/$process-message", "invalid/nhs-number-check-digit.json", uuid.NewString()); s != 422 {
		t.Fatalf("invalid: %d", s)
	}
	if n, err := st.Pending(context.Background(), intake.TopicReferralReceived); err != nil || n != 2 {
		t.Errorf("published %d referrals (%v), want 2", n, err)
	}
}

// asPartner stands in for auth.Wrap: every request comes from p.
func asPartner(h http.Handler, p auth.Partner) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(auth.WithPartner(r.Context(), p)))
	})
}
