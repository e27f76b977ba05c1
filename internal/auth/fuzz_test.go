package auth

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The parsers of everything a caller controls before it is authenticated:
// any input gives a value or an error, never a panic, and nothing without a
// valid credential reaches the handler. Seeds are in testdata/fuzz; .ci/run
// runs each briefly with -fuzz.

func FuzzParseSignature(f *testing.F) {
	for _, s := range []string{"v1=" + strings.Repeat("ab", 32), "v1=" + strings.Repeat("ab", 32) + ",v0=x", "v1=", "=", ",,,,", "v1=zz", strings.Repeat("v1=00,", 10)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		sigs, err := ParseSignature(v)
		if err == nil {
			if len(sigs) == 0 || len(sigs) > maxSignatures {
				t.Fatalf("%d signatures without error", len(sigs))
			}
			for _, s := range sigs {
				if len(s) != 32 {
					t.Fatalf("signature of %d bytes", len(s))
				}
			}
		}
	})
}

func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"1748856600", "0", "-1", "1e9", " 17 ", "999999999999", "9999999999999", "１２"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		ts, err := ParseTimestamp(v)
		if err == nil && ts.Unix() < 0 {
			t.Fatalf("negative time %v from %q", ts, v)
		}
	})
}

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer a.b.c", "bearer a.b.c", "Bearer a.b.", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c.d", "Bearer \x00.b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := ParseBearer(v)
		if err == nil && (strings.Count(tok, ".") != 2 || len(tok) > maxTokenBytes) {
			t.Fatalf("accepted %q", tok)
		}
	})
}

// FuzzAuthenticate sends arbitrary Authorization and signature headers and
// bodies through Wrap: none may panic or reach the handler.
func FuzzAuthenticate(f *testing.F) {
	f.Add("Bearer eyJhbGciOiJub25lIn0.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLm5ocy51ayJ9.", "", "", []byte("{}"))
	f.Add("", "1748856600", "v1="+strings.Repeat("00", 32), []byte(event))
	f.Add("Bearer a.b.c", "1", "v1=", []byte(nil))
	fx := newFixture(f, nil)
	f.Fuzz(func(t *testing.T, authz, ts, sig string, body []byte) {
		before := fx.fake.count()
		r := httptest.NewRequest(http.MethodPost, "/fhir", bytes.NewReader(body))
		if authz != "" {
			r.Header["Authorization"] = []string{authz}
		}
		if ts != "" {
			r.Header[HeaderTimestamp] = []string{ts}
		}
		if sig != "" {
			r.Header[HeaderSignature] = []string{sig}
		}
		got := fx.do(r)
		if fx.fake.count() != before {
			t.Fatalf("forged request reached the handler (status %d)", got.status)
		}
		if got.status != http.StatusUnauthorized && got.status != http.StatusRequestEntityTooLarge && got.status != http.StatusForbidden {
			t.Fatalf("status %d", got.status)
		}
	})
}
