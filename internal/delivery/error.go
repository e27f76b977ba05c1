package delivery

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxErrorBody is how much of a partner's answer an *Error keeps.
const MaxErrorBody = 512

// ErrUnreadableAnswer is wrapped by adapters when a partner accepted a request
// (2xx) but its answer could not be read. Such an error is transient: the
// request is sent again with the same Idempotency-Key, which the partner
// recognises, so nothing is created twice and the hub gets another chance to
// read the partner's reference.
var ErrUnreadableAnswer = errors.New("partner accepted the request but its answer could not be read")

// ErrInvalidRequest is wrapped by a permanent *Error when the hub's own
// request is unusable (no idempotency key for a POST, for example). It is a
// bug in the hub, not a partner failure, and does not count against the
// partner's circuit breaker.
var ErrInvalidRequest = errors.New("invalid request")

// Error is a failed delivery to a partner. Permanent errors will never
// succeed as the request stands (the partner refused it: 4xx); any other
// error is transient (the partner could not be reached, was slow, overloaded
// or failing; or its circuit breaker is open) and the same request may be
// sent again later.
//
// Error() never includes Body: a partner may echo personal data from the
// request in its answer, and error strings end up in logs. Body is for the
// dead-letter record, which is stored encrypted.
type Error struct {
	// Partner is the partner id the request was for.
	Partner string
	// StatusCode is the partner's HTTP status, or 0 when there was no answer.
	StatusCode int
	// Permanent reports that the request will never succeed as it stands.
	Permanent bool
	// Body is the start of the partner's answer (at most MaxErrorBody bytes,
	// valid UTF-8).
	Body string
	// Attempts is how many HTTP attempts were made (0 when none was, as when
	// the circuit breaker is open).
	Attempts int
	// RetryAfter is how long the partner asked the hub to wait (its last
	// answer's Retry-After, in seconds or as an HTTP date); zero when it
	// said nothing.
	RetryAfter time.Duration
	// Err is the underlying cause.
	Err error
}

// Error describes the failure without the partner's answer.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("delivery to ")
	b.WriteString(e.Partner)
	if e.Permanent {
		b.WriteString(" refused (permanent")
	} else {
		b.WriteString(" failed (transient")
	}
	if e.StatusCode != 0 {
		b.WriteString(", HTTP ")
		b.WriteString(strconv.Itoa(e.StatusCode))
	}
	if e.Attempts > 1 {
		b.WriteString(", ")
		b.WriteString(strconv.Itoa(e.Attempts))
		b.WriteString(" attempts")
	}
	b.WriteString(")")
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// IsPermanent reports whether err, or any error it wraps, is a permanent
// *Error. Any other error, including nil, is not permanent.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent
}

// Snippet returns the start of a partner's answer as it is kept in
// Error.Body: at most MaxErrorBody bytes, cut on a rune boundary, with
// invalid UTF-8 replaced.
func Snippet(body []byte) string {
	if len(body) > MaxErrorBody {
		body = body[:MaxErrorBody]
		// Do not split a multi-byte rune at the cut.
		for i := 0; i < utf8.UTFMax && len(body) > 0; i++ {
			r, size := utf8.DecodeLastRune(body)
			if r != utf8.RuneError || size != 1 {
				break
			}
			body = body[:len(body)-1]
		}
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}
