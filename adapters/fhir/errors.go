package fhir

import (
	"errors"
	"fmt"
	"net/http"

	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// httpError is a failed request: the HTTP status to answer and the issues of the
// OperationOutcome that explains it. Handlers return an *httpError (possibly
// wrapped) and writeError turns it, or any other error, into the answer.
type httpError struct {
	Status int
	Issues []fhirmap.Issue
	// RetryAfter, when set, is sent as the Retry-After header in seconds.
	RetryAfter int
	// Err is the cause, for logs; never sent to the client.
	Err error
}

func (e *httpError) Error() string {
	msg := fmt.Sprintf("fhir: HTTP %d", e.Status)
	if len(e.Issues) > 0 {
		msg += ": " + e.Issues[0].Diagnostics
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *httpError) Unwrap() error { return e.Err }

// errorf returns an *httpError with one issue of severity error.
func errorf(status int, code fhirmap.IssueType, expr, format string, args ...any) *httpError {
	return &httpError{Status: status, Issues: []fhirmap.Issue{{
		Severity: fhirmap.SeverityError, Code: code, Expression: expr, Diagnostics: fmt.Sprintf(format, args...),
	}}}
}

// More FHIR issue types the edge uses besides those of fhirmap.
const (
	issueTooLong   fhirmap.IssueType = "too-long"
	issueTransient fhirmap.IssueType = "transient"
	issueException fhirmap.IssueType = "exception"
	issueConflict  fhirmap.IssueType = "conflict"
	issueForbidden fhirmap.IssueType = "forbidden"
)

// asError maps any error to an *httpError: a *fhirmap.ValidationError to 400 or
// 422 with its issues, an *httpError as it is, anything else to 500.
func asError(err error) *httpError {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	var ve *fhirmap.ValidationError
	if errors.As(err, &ve) {
		status := http.StatusUnprocessableEntity
		if errors.Is(err, fhirmap.ErrNotBundle) {
			status = http.StatusBadRequest
		}
		return &httpError{Status: status, Issues: ve.Issues, Err: err}
	}
	e := errorf(http.StatusInternalServerError, issueException, "Bundle", "the hub failed to process the request; nothing was accepted")
	e.Err = err
	return e
}

// outcome returns the OperationOutcome body of e. Issues about HTTP headers
// ("http.X-Request-ID") carry the header in location as FHIR asks, and in
// expression too.
func (e *httpError) outcome() []byte {
	oo := issuesOutcome("", e.Issues)
	for i, is := range e.Issues {
		if len(is.Expression) > 5 && is.Expression[:5] == "http." {
			oo.Issue[i].Location = []string{is.Expression}
		}
	}
	return marshal(oo)
}

// counts returns the number of errors and of other issues.
func counts(list []fhirmap.Issue) (errs, others int) {
	for _, i := range list {
		if i.IsError() {
			errs++
		} else {
			others++
		}
	}
	return errs, others
}
