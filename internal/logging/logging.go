// Package logging keeps personal data out of the hub's logs. Handler wraps
// the process's slog.Handler: it drops every attribute whose key is not on
// an allowlist of keys known to hold ids, statuses, counts and durations,
// and it scrubs the message and every string, error or other value it keeps
// of anything shaped like an NHS number, a UK postcode, a UK phone number or
// a date (of birth).
//
// The allowlist is the defence; the patterns are a second line for values
// under allowed keys that come from outside (an error quoting a partner, a
// sender's correlation id). Patterns cannot recognise a name or an address
// line, so code must still never log payloads: a new log key must be added
// to Allowed, deliberately, or its value is dropped.
package logging

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
)

// Redacted replaces what Scrub removes.
const Redacted = "[redacted]"

// Allowed is the set of attribute keys Handler keeps: those the hub's code
// and Watermill log, each holding ids, statuses, counts or durations.
var Allowed = map[string]bool{
	// ids
	"referral_id": true, "event_id": true, "correlation_id": true, "request_id": true, "idempotency_key": true,
	"message_id": true, "message_uuid": true, "order_reference": true, "case_reference": true,
	"dead_letter_id": true, "held_id": true,
	// who and where in the hub
	"component": true, "partner": true, "route": true, "kind": true, "topic": true, "handler_name": true,
	"subscriber_name": true, "publisher_id": true, "subscriber_id": true, "consumer_group": true,
	"publish_topic": true, "addr": true, "data_dir": true, "path": true, "env": true,
	// outcomes
	"status": true, "reason": true, "error": true, "err": true, "panic": true, "stack": true,
	"duplicate": true, "repeat": true, "from": true, "to": true, "retry_after": true,
	// counts and durations
	"count": true, "attempt": true, "attempts": true, "retry_no": true, "max_retries": true,
	"issue_errors": true, "issue_warnings": true, "partners": true, "routes": true,
	"duration_ms": true, "ms": true, "timeout": true, "wait_time": true, "produced_messages_count": true,
	"open_for": true, "failing_for": true, "failed_for": true, "outcomes_held": true, "similar_not_logged": true,
	// retention
	"messages_removed": true, "idempotency_removed": true, "disclosures_removed": true, "referrals_removed": true, "receipts_removed": true,
	"payload_days": true, "disclosure_years": true,
	// statistics: the month published (YYYY-MM, the hub's calendar, no one's)
	"month": true,
}

var patterns = []*regexp.Regexp{
	// ISO dates (1941-03-02) and UK dates (02/03/1941), not timestamps:
	// 2025-06-02T09:30:00Z has no word boundary after the day.
	regexp.MustCompile(`\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{4}\b`),
	// UK phone numbers: 0 or +44, then 9 or 10 digits in groups.
	regexp.MustCompile(`(?:\+44\s?(?:\(0\)\s?)?|\b0)\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}\b`),
	// NHS numbers and any other run of 10 digits, also as 3 3 4.
	regexp.MustCompile(`\b\d{3}[\s-]?\d{3}[\s-]?\d{4}\b`),
	// UK postcodes, any case, with or without the space.
	regexp.MustCompile(`(?i)\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b`),
}

// Scrub returns s with every NHS-number-like run of ten digits, UK postcode,
// UK phone number and date replaced by Redacted.
//
// Every pattern needs a digit, and a value that is exactly a UUID is an id
// the hub or a partner generated, never personal data, though one like
// 918e19e1-0123-4567-8901-5c54a34d970f has the shape of a phone number:
// both pass untouched without running the patterns, which took 4% of the
// hub's CPU when every id of every log line went through them.
func Scrub(s string) string {
	if !hasDigit(s) || isUUID(s) {
		return s
	}
	for _, p := range patterns {
		s = p.ReplaceAllString(s, Redacted)
	}
	return s
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			return true
		}
	}
	return false
}

// isUUID reports whether s is a UUID in its canonical form (8-4-4-4-12 hex
// digits, any case).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// Handler is a slog.Handler that passes records to another handler with
// unknown attributes dropped and values scrubbed (see the package comment).
// It is safe for concurrent use when the handler it wraps is.
type Handler struct {
	next slog.Handler
}

var _ slog.Handler = (*Handler)(nil)

// New wraps next.
func New(next slog.Handler) *Handler { return &Handler{next: next} }

// Enabled reports whether the wrapped handler handles level.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

// Handle scrubs r's message and attributes and passes the result on.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a, ok := clean(a); ok {
			out.AddAttrs(a)
		}
		return true
	})
	return h.next.Handle(ctx, out)
}

// WithAttrs returns a Handler whose wrapped handler has attrs, cleaned.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	kept := make([]slog.Attr, 0, len(attrs))
	for _, a := range attrs {
		if a, ok := clean(a); ok {
			kept = append(kept, a)
		}
	}
	return &Handler{next: h.next.WithAttrs(kept)}
}

// WithGroup returns a Handler whose wrapped handler opens group name; the
// attributes inside it are filtered like any other.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(Scrub(name))}
}

// clean returns a with its value scrubbed, or false when a must be dropped.
func clean(a slog.Attr) (slog.Attr, bool) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		var kept []slog.Attr
		for _, g := range v.Group() {
			if g, ok := clean(g); ok {
				kept = append(kept, g)
			}
		}
		if len(kept) == 0 {
			return slog.Attr{}, false
		}
		// An inline group (empty key) keeps its members' keys.
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(kept...)}, true
	}
	if !Allowed[strings.ToLower(a.Key)] {
		return slog.Attr{}, false
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Scrub(v.String())), true
	case slog.KindAny:
		switch x := v.Any().(type) {
		case nil:
			return a, true
		case error:
			return slog.String(a.Key, Scrub(x.Error())), true
		default:
			return slog.String(a.Key, Scrub(fmt.Sprint(x))), true
		}
	default: // numbers, booleans, durations, times
		return slog.Attr{Key: a.Key, Value: v}, true
	}
}
