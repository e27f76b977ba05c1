// Package inbound holds what the partners' webhook mappings share: strict
// JSON decoding and the problems a refused event is answered with. It is
// pure: no I/O, no logging, no clock (times are passed in).
package inbound

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/iceshub/iceshub/internal/jsonlimit"
)

// Accepted is the hub's answer (202) to an event it stored, and the stored
// answer a resent event gets again.
type Accepted struct {
	// EventID is the sender's id of the event.
	EventID string `json:"eventId"`
	// ReferralID is the hub's id of the referral the event is about.
	ReferralID string `json:"referralId"`
	// Status is "accepted".
	Status string `json:"status"`
}

// Problem is one thing wrong with an inbound event: Field is the JSON path
// of the member ("reason.code", "data.summary"), Message what is wrong;
// neither quotes the value.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// InvalidError is a body the hub refuses. Malformed means it is not JSON of
// the contract's shape (not JSON, an unknown member, a wrong type);
// otherwise Problems name each member that breaks the contract. Error never
// quotes the body.
type InvalidError struct {
	Malformed bool
	Message   string
	Problems  []Problem
}

func (e *InvalidError) Error() string {
	if len(e.Problems) == 0 {
		return "invalid event: " + e.Message
	}
	fields := make([]string, 0, len(e.Problems))
	for _, p := range e.Problems {
		fields = append(fields, p.Field)
	}
	return "invalid event: " + e.Message + " (" + strings.Join(fields, ", ") + ")"
}

// Invalid returns an *InvalidError for problems, or nil when there are none.
func Invalid(problems Problems) error {
	if len(problems) == 0 {
		return nil
	}
	return &InvalidError{Message: "the event breaks the contract", Problems: problems}
}

// MaxFutureSkew is how far after the hub's clock an event's time may be:
// partners' clocks drift, but an event from the future is a mistake.
const MaxFutureSkew = time.Hour

// MaxTextLength is the longest free text an event member may hold, in
// characters.
const MaxTextLength = 10000

var (
	// TokenPattern is the shape of ids and references: they are stored,
	// logged and put in paths, so they must be short tokens, never free
	// text.
	TokenPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)
	// CodePattern is the shape of a code (a reason, a category).
	CodePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
)

// Decode decodes one JSON value from body into v, refusing unknown members,
// trailing data and an empty body with an *InvalidError (Malformed) that
// names the problem without quoting the body. at prefixes member names
// ("data.").
//
// It also refuses, with an *InvalidError whose problem names the member's
// path, a body in which any object repeats a member name (compared as
// jsonlimit.SameName does: without regard to case, as encoding/json matches
// names to fields). encoding/json would keep the last value silently, where
// another reader of the same body (a gateway, an audit copy) may keep the
// first.
func Decode(body []byte, v any, at string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
		err = errTrailing
	}
	if err != nil {
		return &InvalidError{Malformed: true, Message: describe(err, at)}
	}
	if d := jsonlimit.FindDuplicate(body); d != nil {
		return &InvalidError{Message: "the body repeats a member name", Problems: []Problem{{
			Field:   at + d.Field(),
			Message: "repeated: a JSON object may hold each member name once (compared without regard to case)",
		}}}
	}
	return nil
}

var errTrailing = errors.New("trailing data")

func describe(err error, at string) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return "the body must be a JSON object"
		}
		return fmt.Sprintf("%s%s must be a JSON %s", at, typ.Field, typ.Type.Kind())
	case errors.Is(err, errTrailing):
		return "the body holds more than one JSON value"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the body is empty or cut short"
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "the body has a member the contract does not define: " + at + strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
	}
	return "the body does not match the contract"
}

// Problems collects what is wrong with an inbound event.
type Problems []Problem

// Add records a problem with field.
func (p *Problems) Add(field, msg string) { *p = append(*p, Problem{Field: field, Message: msg}) }

// Time parses a required RFC 3339 time (with a zone) that may not lie after
// now by more than MaxFutureSkew, and returns it in UTC; the zero time when
// it is refused.
func (p *Problems) Time(field, v string, now time.Time) time.Time {
	if v == "" {
		p.Add(field, "required")
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		p.Add(field, "must be an RFC 3339 date and time with a time zone")
		return time.Time{}
	}
	if t.After(now.Add(MaxFutureSkew)) {
		p.Add(field, "lies in the future")
	}
	return t.UTC()
}

// Token checks an id or reference: required when req, a short token when
// present.
func (p *Problems) Token(field, v string, req bool) {
	switch {
	case v == "" && req:
		p.Add(field, "required")
	case v != "" && !TokenPattern.MatchString(v):
		p.Add(field, "must be a short token (letters, digits and . _ : / -, at most 128)")
	}
}

// Code checks a code: required when req, a lower-case code when present,
// one of allowed when allowed is not empty.
func (p *Problems) Code(field, v string, req bool, allowed ...string) {
	switch {
	case v == "" && req:
		p.Add(field, "required")
	case v == "":
	case len(allowed) > 0 && !contains(allowed, v):
		p.Add(field, "must be one of "+strings.Join(allowed, ", "))
	case !CodePattern.MatchString(v):
		p.Add(field, "must be a lower-case code (letters, digits and -, at most 64)")
	}
}

// Text checks free text: required when req, not blank when present, at most
// MaxTextLength characters.
func (p *Problems) Text(field, v string, req bool) {
	switch {
	case v == "" && req:
		p.Add(field, "required")
	case v != "" && strings.TrimSpace(v) == "":
		p.Add(field, "must not be blank")
	case utf8.RuneCountInString(v) > MaxTextLength:
		p.Add(field, fmt.Sprintf("at most %d characters", MaxTextLength))
	}
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
