package fhir_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
)

// TestRepeatedMemberNamesAreRefused: a body in which an object repeats a
// member name is 400 with an OperationOutcome at the object's FHIRPath
// naming the member, whatever the route and kind of message, and nothing
// reaches the use cases. FHIR JSON forbids it; encoding/json keeps the last
// value, so a gateway that checked the first would see another patient.
func TestRepeatedMemberNamesAreRefused(t *testing.T) {
	cases := []struct {
		name, path, fixture, old, new, expr, member string
	}{
		{"referral: a second NHS number", "/fhir/$process-message", "referral-1-line.json",
			`"value": "9990000018"`, `"value": "9990000018", "value": "9990000026"`, "Bundle.entry[2].resource.identifier[0]", `"value"`},
		{"referral: a second subject", "/fhir/$process-message", "referral-1-line.json",
			`"resourceType": "ServiceRequest",`, `"resourceType": "ServiceRequest", "subject": {"reference": "Patient/other"},`, "Bundle.entry[1].resource", `"subject"`},
		{"cancellation: active, then revoked", "/fhir/$process-message", "cancellation-revoked.json",
			`"status": "revoked",`, `"status": "active", "Status": "revoked",`, "Bundle.entry[1].resource", `"Status"`},
		{"transaction: a second identifier system", "/fhir", "referral-transaction.json",
			`"value": "9990000042"`, `"value": "9990000042", "system": "https://fhir.nhs.uk/Id/nhs-number"`, "Bundle.entry[1].resource.identifier[0]", `"system"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			events := &recordingEvents{}
			e := newEnv(t, fhiradapter.Config{Events: events})
			body := read(t, c.fixture)
			if bytes.Count(body, []byte(c.old)) != 1 {
				t.Fatalf("%q is not once in %s", c.old, c.fixture)
			}
			body = bytes.Replace(body, []byte(c.old), []byte(c.new), 1)
			w := e.do(http.MethodPost, c.path, body)
			oo := wantOutcome(t, w, http.StatusBadRequest, "structure", c.expr)
			if len(oo.Issue) != 1 || !strings.Contains(oo.Issue[0].Diagnostics, c.member) {
				t.Errorf("want one issue naming %s: %s", c.member, w.Body)
			}
			for _, v := range []string{"9990000018", "9990000026", "9990000042", "Patient/other", "revoked"} {
				if strings.Contains(w.Body.String(), v) || strings.Contains(e.logs.String(), v) {
					t.Errorf("the answer or the logs quote %q:\n%s\n%s", v, w.Body, e.logs)
				}
			}
			if n := len(e.acc.calls()); n != 0 {
				t.Errorf("the referral use case was called %d times", n)
			}
			if n := len(events.subs); n != 0 {
				t.Errorf("the event use case was called %d times", n)
			}
		})
	}
}
