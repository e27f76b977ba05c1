package jsonlimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrDuplicateName is wrapped by a *DuplicateError.
var ErrDuplicateName = errors.New("a JSON object repeats a member name")

// DuplicateError is a JSON object holding two members of the same name (as
// SameName compares them). Two readers of such a body can disagree on which
// value counts (Go's encoding/json takes the last, others the first, a
// gateway may check one and the hub use the other), so the hub refuses it.
// It holds no value from the body, and only names ShownName lets through,
// so it can be logged and answered.
type DuplicateError struct {
	// Object is the path of the object holding the repeated member, from
	// the top of the body: member names joined by dots, array indexes in
	// brackets ("data.lines[2]"); empty for the top-level object.
	Object string
	// Member is the repeated name, as ShownName shows it.
	Member string
}

// Field returns the path of the repeated member ("data.lines[2].code").
func (e *DuplicateError) Field() string {
	if e.Object == "" {
		return e.Member
	}
	return e.Object + "." + e.Member
}

func (e *DuplicateError) Error() string {
	return "the JSON object at " + strconv.Quote(e.Object) + " repeats the member name " + strconv.Quote(e.Member)
}

// Unwrap returns ErrDuplicateName.
func (e *DuplicateError) Unwrap() error { return ErrDuplicateName }

// SameName reports whether two member names, unescaped, are the same name
// to the hub: equal without regard to case, as encoding/json matches a
// member to a struct field, so that "status" and "Status" in one object
// would also be read as one element with two values.
func SameName(a, b []byte) bool { return bytes.EqualFold(a, b) }

// FoldName returns a key such that FoldName(a) == FoldName(b) exactly when
// SameName(a, b), for sets of names too large to compare one by one. It
// folds as encoding/json does.
func FoldName(name []byte) string {
	var buf [64]byte
	out := buf[:0]
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		out = utf8.AppendRune(out, unicode.ToUpper(unicode.ToLower(r)))
		i += n
	}
	return string(out)
}

// LinearNames is how many members of one object are compared one by one
// before a detector switches to a set of folded names: a scan is cheaper
// for the few members FHIR and event objects hold, and the set keeps an
// object of many thousands of members from costing their square.
const LinearNames = 32

// ShownName returns name when it is a plain identifier (an ASCII letter,
// underscore or dollar, then up to 63 letters, digits, underscores, dollars
// or hyphens), which every element of FHIR and of the partner contracts
// is, and "?" otherwise: a name is chosen by the sender and could hold
// anything, personal data included, so an answer or a log shows only
// names that cannot.
func ShownName(name []byte) string {
	if len(name) == 0 || len(name) > 64 {
		return "?"
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == '$':
		case i > 0 && (c >= '0' && c <= '9' || c == '-'):
		default:
			return "?"
		}
	}
	return string(name)
}

// frame is one object or array open while FindDuplicate walks a body.
type frame struct {
	object    bool
	expectKey bool     // an object: the next string is a member name
	key       []byte   // an object: the current member's name, unescaped
	index     int      // an array: the current element's index
	names     [][]byte // an object: its member names so far, unescaped
	folded    map[string]struct{}
}

// FindDuplicate returns a *DuplicateError for the first object in body, in
// document order of the repeated member, that repeats a member name, and
// nil when none does. body must be valid JSON (decode it first): on
// anything else the answer means nothing, though FindDuplicate neither
// panics nor loops. It costs one scan of body and a few allocations per
// object; it is meant for small bodies such as webhook events (the FHIR
// parser finds repeated names in its own tree, at no extra scan).
func FindDuplicate(body []byte) *DuplicateError {
	var stack []frame
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			end, closed := stringEnd(body, i+1)
			if !closed {
				return nil
			}
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
				top := &stack[n-1]
				top.expectKey = false
				name := unescape(body[i : end+1])
				if top.seen(name) {
					return duplicate(stack, name)
				}
				top.key = name
			}
			i = end
		case '{':
			stack = append(stack, frame{object: true, expectKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					stack[n-1].expectKey = true
				} else {
					stack[n-1].index++
				}
			}
		}
	}
	return nil
}

// seen reports whether name repeats a member name of f, and adds it.
func (f *frame) seen(name []byte) bool {
	if f.folded != nil {
		k := FoldName(name)
		if _, ok := f.folded[k]; ok {
			return true
		}
		f.folded[k] = struct{}{}
		return false
	}
	for _, prev := range f.names {
		if SameName(prev, name) {
			return true
		}
	}
	f.names = append(f.names, name)
	if len(f.names) > LinearNames {
		f.folded = make(map[string]struct{}, 2*len(f.names))
		for _, prev := range f.names {
			f.folded[FoldName(prev)] = struct{}{}
		}
		f.names = nil
	}
	return false
}

// duplicate describes name repeated in the object on top of stack.
func duplicate(stack []frame, name []byte) *DuplicateError {
	var path strings.Builder
	for _, f := range stack[:len(stack)-1] {
		if f.object {
			if path.Len() > 0 {
				path.WriteByte('.')
			}
			path.WriteString(ShownName(f.key))
		} else {
			path.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	return &DuplicateError{Object: path.String(), Member: ShownName(name)}
}

// unescape returns the content of the JSON string quoted (quotes included).
func unescape(quoted []byte) []byte {
	content := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(content, '\\') < 0 {
		return content
	}
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return content // not valid JSON: the answer means nothing anyway
	}
	return []byte(s)
}
