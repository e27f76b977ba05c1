package fhir

import (
	"net/http"

	"github.com/iceshub/iceshub/internal/auth"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// FHIR issue types of refusals made before a request reaches the Handler.
const (
	issueLogin     fhirmap.IssueType = "login"
	issueThrottled fhirmap.IssueType = "throttled"
)

// WriteAuthError is the auth.ErrorWriter of the FHIR edge: it answers a
// refusal of internal/auth (401, 403, 429, 413, 503) as an OperationOutcome
// whose issue code is login, forbidden, throttled, too-long or transient, with the
// request's X-Correlation-ID echoed when it is well formed.
func WriteAuthError(w http.ResponseWriter, r *http.Request, e *auth.Error) {
	code := fhirmap.IssueInvalid
	expr := "http"
	switch e.Status {
	case http.StatusUnauthorized:
		code, expr = issueLogin, "http.Authorization"
	case http.StatusForbidden:
		code, expr = issueForbidden, "http.url"
	case http.StatusTooManyRequests:
		code = issueThrottled
	case http.StatusRequestEntityTooLarge:
		code, expr = issueTooLong, "Bundle"
	case http.StatusUnsupportedMediaType:
		code, expr = fhirmap.IssueNotSupported, "http.Content-Type"
	case http.StatusServiceUnavailable:
		// The replay record could not be read or written: send again.
		code, expr = issueTransient, "Bundle"
	}
	if corr, err := correlationID(r.Header.Get("X-Correlation-ID")); err == nil && corr != "" {
		w.Header().Set("X-Correlation-ID", corr)
	}
	he := errorf(e.Status, code, expr, "%s", e.Message)
	if e.RetryAfter > 0 {
		he.RetryAfter = int((e.RetryAfter + 999_999_999) / 1_000_000_000)
	}
	(&Handler{}).writeError(w, he)
}
