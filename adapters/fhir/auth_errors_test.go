package fhir_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
	"github.com/iceshub/iceshub/internal/auth"
)

// TestEmittedAuthRefusals keeps the OperationOutcomes of refusals made by
// internal/auth in front of the FHIR edge under testdata/fhir/emitted, so
// that .ci/run validates them as FHIR R4 too.
func TestEmittedAuthRefusals(t *testing.T) {
	cases := []struct {
		name string
		err  *auth.Error
	}{
		{"outcome-401-login", &auth.Error{Status: http.StatusUnauthorized, Code: auth.CodeUnauthenticated, Message: "credentials required"}},
		{"outcome-403-forbidden", &auth.Error{Status: http.StatusForbidden, Code: auth.CodeForbidden, Message: "this partner may not call this endpoint"}},
		{"outcome-429-throttled", &auth.Error{Status: http.StatusTooManyRequests, Code: auth.CodeRateLimited, Message: "too many requests", RetryAfter: 1500 * time.Millisecond}},
		{"outcome-503-replay-record", &auth.Error{Status: http.StatusServiceUnavailable, Code: auth.CodeUnavailable, Message: "the hub cannot check this request against replay just now: retry later, signed afresh", RetryAfter: 1500 * time.Millisecond}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/fhir", nil)
			r.Header.Set("X-Correlation-ID", "corr-1")
			fhiradapter.WriteAuthError(w, r, c.err)
			if w.Code != c.err.Status || w.Header().Get("Content-Type") != fhiradapter.ContentType || w.Header().Get("X-Correlation-ID") != "corr-1" {
				t.Fatalf("status %d, headers %v", w.Code, w.Header())
			}
			if c.err.RetryAfter > 0 && w.Header().Get("Retry-After") != "2" {
				t.Fatalf("Retry-After %q, want 2 (rounded up)", w.Header().Get("Retry-After"))
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, w.Body.Bytes(), "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join(testdata, "emitted", c.name+".json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(want, pretty.Bytes()) {
				t.Errorf("%s differs (run go test ./adapters/fhir -run Emitted -update):\n%s", path, pretty.String())
			}
		})
	}
}
