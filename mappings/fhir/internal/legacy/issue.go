package legacy

import (
	"errors"
	"fmt"
)

// Severity is a FHIR OperationOutcome issue severity
// (http://hl7.org/fhir/ValueSet/issue-severity).
type Severity string

// The issue severities. Any Issue of severity SeverityFatal or SeverityError
// makes a bundle unacceptable; warnings and information travel back to the
// sender with a success answer.
const (
	SeverityFatal       Severity = "fatal"
	SeverityError       Severity = "error"
	SeverityWarning     Severity = "warning"
	SeverityInformation Severity = "information"
)

// IssueType is a FHIR OperationOutcome issue type code
// (http://hl7.org/fhir/ValueSet/issue-type).
type IssueType string

// The issue types this package reports.
const (
	// IssueStructure: the content cannot be read as the FHIR structure
	// expected (not JSON, wrong JSON type, an element that is not an array).
	IssueStructure IssueType = "structure"
	// IssueRequired: a required element is missing.
	IssueRequired IssueType = "required"
	// IssueValue: an element has a value that is not valid for its type
	// (an NHS number with a wrong check digit, a malformed date).
	IssueValue IssueType = "value"
	// IssueInvalid: the content is invalid against the FHIR specification
	// (a reference to the wrong kind of resource, an unknown code).
	IssueInvalid IssueType = "invalid"
	// IssueNotFound: a reference does not resolve inside the Bundle.
	IssueNotFound IssueType = "not-found"
	// IssueNotSupported: valid FHIR that the hub does not process (a
	// modifier extension, a DELETE entry, eventUri).
	IssueNotSupported IssueType = "not-supported"
	// IssueBusinessRule: valid FHIR that breaks one of the hub's rules
	// for a referral (no reason and no equipment, status not active).
	IssueBusinessRule IssueType = "business-rule"
	// IssueInformational: information only, such as a part of the bundle
	// the hub ignored.
	IssueInformational IssueType = "informational"
)

// Issue is one problem found in a bundle, in the shape of an
// OperationOutcome issue.
//
// Diagnostics never holds a value taken from the bundle: it names the
// element and what is wrong with it ("NHS number check digit is wrong"),
// never the number. Expression is a FHIRPath of the offending element
// counted from the Bundle, such as
// "Bundle.entry[3].resource.identifier[0].value"; element names are the JSON
// property names, so a choice element appears as e.g. "codeCodeableConcept".
type Issue struct {
	Severity    Severity  `json:"severity"`
	Code        IssueType `json:"code"`
	Diagnostics string    `json:"diagnostics"`
	Expression  string    `json:"expression,omitempty"`
}

// IsError reports whether the issue makes the bundle unacceptable.
func (i Issue) IsError() bool {
	return i.Severity == SeverityError || i.Severity == SeverityFatal
}

// The two kinds of ValidationError, for errors.Is.
var (
	// ErrNotBundle means the body is not JSON, or is JSON but not a FHIR
	// Bundle at all. An HTTP edge answers 400 Bad Request.
	ErrNotBundle = errors.New("not a FHIR Bundle")
	// ErrInvalid means the body is a FHIR Bundle that the hub cannot accept
	// as a referral. An HTTP edge answers 422 Unprocessable Entity.
	ErrInvalid = errors.New("not an acceptable referral")
)

// ValidationError is the error returned by ParseMessage and
// ParseTransaction. It unwraps to ErrNotBundle or ErrInvalid, so callers
// can tell them apart with errors.Is, and carries every issue found, errors
// first in document order, then warnings.
type ValidationError struct {
	// Kind is ErrNotBundle or ErrInvalid.
	Kind   error
	Issues []Issue
}

// Error returns a summary that counts the issues and quotes the first one.
// Like the issues themselves it holds no personal data.
func (e *ValidationError) Error() string {
	n := 0
	var first *Issue
	for i := range e.Issues {
		if e.Issues[i].IsError() {
			if first == nil {
				first = &e.Issues[i]
			}
			n++
		}
	}
	if first == nil {
		return fmt.Sprintf("fhir: %v", e.Kind)
	}
	return fmt.Sprintf("fhir: %v: %d error(s), first at %s: %s", e.Kind, n, first.Expression, first.Diagnostics)
}

// Unwrap returns Kind.
func (e *ValidationError) Unwrap() error { return e.Kind }

// issues collects issues while a bundle is checked. Only the first error
// reported for one expression is kept, so that an element is never
// reported twice by two checks that see the same fault.
type issues struct {
	list []Issue
	seen map[string]bool
}

func (is *issues) add(sev Severity, code IssueType, expr, format string, args ...any) {
	if sev == SeverityError || sev == SeverityFatal {
		if is.seen == nil {
			is.seen = map[string]bool{}
		}
		if is.seen[expr] {
			return
		}
		is.seen[expr] = true
	}
	is.list = append(is.list, Issue{Severity: sev, Code: code, Diagnostics: fmt.Sprintf(format, args...), Expression: expr})
}

func (is *issues) errorf(code IssueType, expr, format string, args ...any) {
	is.add(SeverityError, code, expr, format, args...)
}

func (is *issues) warnf(code IssueType, expr, format string, args ...any) {
	is.add(SeverityWarning, code, expr, format, args...)
}

func (is *issues) hasErrors() bool {
	for _, i := range is.list {
		if i.IsError() {
			return true
		}
	}
	return false
}

// failedAt reports whether an error was reported at expr.
func (is *issues) failedAt(expr string) bool { return is.seen[expr] }

// sorted returns errors first, then the rest, each in the order found.
func (is *issues) sorted() []Issue {
	out := make([]Issue, 0, len(is.list))
	for _, i := range is.list {
		if i.IsError() {
			out = append(out, i)
		}
	}
	for _, i := range is.list {
		if !i.IsError() {
			out = append(out, i)
		}
	}
	return out
}
