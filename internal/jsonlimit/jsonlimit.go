// Package jsonlimit refuses JSON bombs before any parser sees them: a body
// nested too deep or holding too many values costs one linear scan and no
// allocation. Every inbound JSON edge (FHIR, webhooks) checks its body with
// it first.
//
// It also holds the hub's rule for repeated member names (SameName,
// FoldName, ShownName) and FindDuplicate, which finds an object that
// repeats one in a small body: the webhook mappings refuse such a body,
// and the FHIR parser applies the same rule in its own tree.
package jsonlimit

import (
	"bytes"
	"errors"
	"fmt"
)

// Defaults: a FHIR referral bundle nests about 12 deep and holds a few
// thousand values; a webhook event much less. The limits leave ample room.
const (
	DefaultMaxDepth  = 64
	DefaultMaxValues = 100_000
)

// Errors wrapped by Check's *Error.
var (
	ErrTooDeep       = errors.New("the JSON is nested too deep")
	ErrTooManyValues = errors.New("the JSON holds too many values")
)

// Error is a body over a limit.
type Error struct {
	// Limit is the limit that was passed.
	Limit int
	// Err is ErrTooDeep or ErrTooManyValues.
	Err error
}

func (e *Error) Error() string {
	if errors.Is(e.Err, ErrTooDeep) {
		return fmt.Sprintf("the JSON is nested more than %d levels deep", e.Limit)
	}
	return fmt.Sprintf("the JSON holds more than %d values", e.Limit)
}

// Unwrap returns ErrTooDeep or ErrTooManyValues.
func (e *Error) Unwrap() error { return e.Err }

// Check refuses a body nested deeper than maxDepth or holding more than
// maxValues arrays, objects and array or object elements; a limit below 1
// means its default. It does not validate JSON: the parser does that next.
func Check(body []byte, maxDepth, maxValues int) error {
	if maxDepth < 1 {
		maxDepth = DefaultMaxDepth
	}
	if maxValues < 1 {
		maxValues = DefaultMaxValues
	}
	depth, values := 0, 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			end, closed := stringEnd(body, i+1)
			if !closed {
				return nil // the parser reports the unterminated string
			}
			i = end
		case '{', '[':
			depth++
			values++
			if depth > maxDepth {
				return &Error{Limit: maxDepth, Err: ErrTooDeep}
			}
		case '}', ']':
			depth--
		case ',':
			values++
		}
		if values > maxValues {
			return &Error{Limit: maxValues, Err: ErrTooManyValues}
		}
	}
	return nil
}

// stringEnd returns the index of the quote that closes the string whose
// content starts at from, and whether there is one. Strings are most of a
// FHIR body: finding their ends with bytes.IndexByte, rather than looking
// at every byte in them, made Check twice as fast (BenchmarkCheckReferral).
func stringEnd(body []byte, from int) (int, bool) {
	for at := from; ; {
		k := bytes.IndexByte(body[at:], '"')
		if k < 0 {
			return len(body), false
		}
		q := at + k
		// The quote is escaped when an odd number of backslashes, all
		// inside the string, come right before it.
		n := 0
		for p := q - 1; p >= from && body[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q, true
		}
		at = q + 1
	}
}
