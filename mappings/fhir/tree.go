package fhir

import (
	"encoding/json"
	"iter"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/iceshub/iceshub/internal/jsonlimit"
)

// tree is a JSON document read once into a flat list of nodes, so that the
// bundle is checked for valid JSON in one pass and each element is then
// found and decoded without scanning its bytes again. encoding/json checks
// the whole input of every Unmarshal first; reading a bundle element by
// element with it checked the same bytes several times over.
type tree struct {
	body  []byte
	nodes []node
	// dupObj and dupKey are the first object found to repeat a member
	// name and the name node that repeats it; -1 when none does.
	dupObj, dupKey int32
}

// kind is the JSON type of a node.
type kind uint8

const (
	kindNull kind = iota
	kindFalse
	kindTrue
	kindNumber
	kindString
	kindArray
	kindObject
)

// node is one JSON value, or one member name of an object. The members of
// an object follow it as name, value, name, value; the elements of an array
// follow it in order; next skips past the value and everything in it.
type node struct {
	start, end int32 // the value's bytes in the body, quotes included
	next       int32
	count      int32 // members of an object, elements of an array
	kind       kind
	escaped    bool // a string holding a backslash escape
}

// maxDepth is encoding/json's limit on nesting, so that the two agree on
// which documents are valid.
const maxDepth = 10000

var trees = sync.Pool{New: func() any { return new(tree) }}

// parseTree reads body, which must be valid UTF-8, into a tree. It returns
// false when body is not valid JSON (as encoding/json defines it) or is too
// large to index; encoding/json then says why. A valid body in which an
// object repeats a member name is read, and the first such object noted
// (duplicate).
func parseTree(body []byte) (*tree, bool) {
	if len(body) >= math.MaxInt32 {
		return nil, false
	}
	t := trees.Get().(*tree)
	t.body, t.nodes = body, t.nodes[:0]
	t.dupObj, t.dupKey = -1, -1
	s := scanner{t: t, b: body}
	s.skipSpace()
	if !s.value(0) {
		t.release()
		return nil, false
	}
	s.skipSpace()
	if s.i != len(body) {
		t.release()
		return nil, false
	}
	return t, true
}

// release gives the tree back for another parse; nothing may use it after.
func (t *tree) release() {
	if cap(t.nodes) > 1<<16 {
		return // an unusually large bundle: let its nodes go
	}
	t.body = nil
	trees.Put(t)
}

type scanner struct {
	t *tree
	b []byte
	i int
}

// skipSpace steps over whitespace. Pretty-printed bundles are a fifth
// indentation, so it runs on locals and a table: it was an eighth of the
// parse when it stepped s.i through the switch a byte at a time.
func (s *scanner) skipSpace() {
	i, b := s.i, s.b
	for i < len(b) && space[b[i]] {
		i++
	}
	s.i = i
}

// space holds JSON's whitespace.
var space = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// value reads one value at s.i, at the given nesting depth.
func (s *scanner) value(depth int) bool {
	if s.i >= len(s.b) {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		return s.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true", kindTrue)
	case c == 'f':
		return s.literal("false", kindFalse)
	case c == 'n':
		return s.literal("null", kindNull)
	}
	return false
}

func (s *scanner) add(k kind, start int) int {
	s.t.nodes = append(s.t.nodes, node{kind: k, start: int32(start)})
	return len(s.t.nodes) - 1
}

func (s *scanner) close(n int) {
	nd := &s.t.nodes[n]
	nd.end = int32(s.i)
	nd.next = int32(len(s.t.nodes))
}

// begin adds the node of the object or array that opens at s.i and steps
// into it; empty is true when it closes at once (it is then closed), ok
// false when it is nested deeper than maxDepth.
func (s *scanner) begin(k kind, closing byte, depth int) (n int, empty, ok bool) {
	if depth > maxDepth {
		return 0, false, false
	}
	n = s.add(k, s.i)
	s.i++ // the opening brace or bracket
	s.skipSpace()
	if s.i < len(s.b) && s.b[s.i] == closing {
		s.i++
		s.close(n)
		return n, true, true
	}
	return n, false, true
}

func (s *scanner) object(depth int) bool {
	n, empty, ok := s.begin(kindObject, '}', depth)
	if !ok || empty {
		return ok
	}
	count := int32(0)
	// Repeated names: seen has a bit for the first and last bytes,
	// folded, of each name so far (nameBit), so that a name whose bit is
	// new cannot repeat one and is not compared at all; a name that has
	// no bit makes every later one compared (wild). folded is the set of
	// names once there are many (repeats).
	var seen uint64
	var wild bool
	var folded map[string]struct{}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' || !s.str() {
			return false
		}
		if s.t.dupKey < 0 {
			bit := nameBit(s.b, &s.t.nodes[len(s.t.nodes)-1])
			if bit == 0 || seen&bit != 0 || wild || count >= jsonlimit.LinearNames {
				folded = s.t.repeats(int32(n), count, folded)
			}
			seen |= bit
			wild = wild || bit == 0
		}
		s.skipSpace()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.skipSpace()
		if !s.value(depth) {
			return false
		}
		count++
		if closed, ok := s.afterItem(n, count, '}'); !ok || closed {
			return ok
		}
	}
}

// nameBit returns a bit chosen by the first and last bytes of member name
// nd, folded to lower case, or 0 when the name is empty or escaped or
// either byte is not ASCII. Two names the same to jsonlimit.SameName have
// the same bit when they have one: their first characters are the same
// letter in either case or the same byte, and so are their last.
func nameBit(b []byte, nd *node) uint64 {
	if nd.escaped || nd.end-nd.start < 3 {
		return 0
	}
	first, last := b[nd.start+1], b[nd.end-2]
	if (first | last) >= utf8.RuneSelf {
		return 0
	}
	h := (uint32(first|0x20)<<8 | uint32(last|0x20)) * 0x9e3779b1
	return 1 << (h >> 26)
}

// repeats checks the member name just read, the last node, against the
// count names before it in object n, and notes the object when it repeats
// one (as jsonlimit.SameName compares names). Objects of FHIR hold a few
// members, so the names are compared one by one, walking the members
// already read, with no allocation; past jsonlimit.LinearNames members
// they are kept folded in a set, so that a hostile object of many
// thousands costs no more than linear time. It returns the set.
func (t *tree) repeats(n, count int32, folded map[string]struct{}) map[string]struct{} {
	key := int32(len(t.nodes) - 1)
	name := t.name(key)
	if folded == nil && count < jsonlimit.LinearNames {
		// Most pairs of names differ in their first or last byte: when
		// both bytes are ASCII, which then stand for whole characters,
		// and differ other than in case, the names differ, and the full
		// comparison is skipped. An escaped name is compared in full.
		raw := !t.nodes[key].escaped && len(name) > 0
		var first, last byte
		if raw {
			first, last = name[0], name[len(name)-1]
		}
		for k := n + 1; k < key; k = t.nodes[k+1].next {
			if nd := &t.nodes[k]; raw && !nd.escaped && nd.end-nd.start > 2 {
				f, l := t.body[nd.start+1], t.body[nd.end-2]
				if (f|first) < utf8.RuneSelf && f|0x20 != first|0x20 || (l|last) < utf8.RuneSelf && l|0x20 != last|0x20 {
					continue
				}
			}
			if jsonlimit.SameName(t.name(k), name) {
				t.dupObj, t.dupKey = n, key
				return nil
			}
		}
		return nil
	}
	if folded == nil {
		folded = make(map[string]struct{}, 2*count)
		for k := n + 1; k < key; k = t.nodes[k+1].next {
			folded[jsonlimit.FoldName(t.name(k))] = struct{}{}
		}
	}
	f := jsonlimit.FoldName(name)
	if _, ok := folded[f]; ok {
		t.dupObj, t.dupKey = n, key
		return folded
	}
	folded[f] = struct{}{}
	return folded
}

// name returns the unescaped content of string node n.
func (t *tree) name(n int32) []byte {
	nd := &t.nodes[n]
	if !nd.escaped {
		return t.body[nd.start+1 : nd.end-1]
	}
	return []byte(t.str(n))
}

// duplicate returns, when an object of the tree repeats a member name, the
// FHIRPath of the first such object counted from root ("Bundle.entry[2]
// .resource.name[0]") and the name as jsonlimit.ShownName shows it.
func (t *tree) duplicate(root string) (expr, name string, found bool) {
	if t.dupKey < 0 {
		return "", "", false
	}
	var b strings.Builder
	b.WriteString(root)
	inside := func(v int32) bool { return v <= t.dupObj && t.dupObj < t.nodes[v].next }
	for at := int32(0); at != t.dupObj; {
		nd, from := &t.nodes[at], at
		if nd.kind == kindObject {
			for k := at + 1; k < nd.next; k = t.nodes[k+1].next {
				if inside(k + 1) {
					b.WriteString("." + jsonlimit.ShownName(t.name(k)))
					at = k + 1
					break
				}
			}
		} else {
			for i, e := 0, at+1; e < nd.next; i, e = i+1, t.nodes[e].next {
				if inside(e) {
					b.WriteString("[" + strconv.Itoa(i) + "]")
					at = e
					break
				}
			}
		}
		if at == from {
			break // cannot happen in a tree parseTree built
		}
	}
	return b.String(), jsonlimit.ShownName(t.name(t.dupKey)), true
}

// afterItem reads what follows a member of object n, or an element of array
// n (count so far): a comma (closed false), or the closing byte, which
// closes n (closed true). Anything else is malformed (ok false).
func (s *scanner) afterItem(n int, count int32, closing byte) (closed, ok bool) {
	s.skipSpace()
	if s.i >= len(s.b) {
		return false, false
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		s.skipSpace()
		return false, true
	case closing:
		s.i++
		s.t.nodes[n].count = count
		s.close(n)
		return true, true
	}
	return false, false
}

func (s *scanner) array(depth int) bool {
	n, empty, ok := s.begin(kindArray, ']', depth)
	if !ok || empty {
		return ok
	}
	count := int32(0)
	for {
		if !s.value(depth) {
			return false
		}
		count++
		if closed, ok := s.afterItem(n, count, ']'); !ok || closed {
			return ok
		}
	}
}

// str reads a string; s.i is at its opening quote.
func (s *scanner) str() bool {
	n := s.add(kindString, s.i)
	s.i++
	escaped := false
	for s.i < len(s.b) {
		// Most bytes of a string need no look: skip them in a tight loop.
		i, b := s.i, s.b
		for i < len(b) && plain[b[i]] {
			i++
		}
		s.i = i
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i++
			s.t.nodes[n].escaped = escaped
			s.close(n)
			return true
		case c < 0x20:
			return false
		case c == '\\':
			escaped = true
			s.i++
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				s.i++
				if s.i+4 > len(s.b) {
					return false
				}
				for _, h := range s.b[s.i : s.i+4] {
					if !isHex(h) {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		default:
			s.i++
		}
	}
	return false
}

// plain marks the bytes that stand for themselves in a JSON string.
var plain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number reads a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	n := s.add(kindNumber, s.i)
	if s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case s.i < len(s.b) && s.b[s.i] >= '1' && s.b[s.i] <= '9':
		s.digits()
	default:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !s.digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !s.digits() {
			return false
		}
	}
	s.close(n)
	return true
}

// digits reads one or more digits.
func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}

func (s *scanner) literal(lit string, k kind) bool {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return false
	}
	n := s.add(k, s.i)
	s.i += len(lit)
	s.close(n)
	return true
}

// raw returns the bytes of node n.
func (t *tree) raw(n int32) json.RawMessage {
	nd := &t.nodes[n]
	return t.body[nd.start:nd.end]
}

// str returns the string value of string node n.
func (t *tree) str(n int32) string {
	nd := &t.nodes[n]
	if !nd.escaped {
		return string(t.body[nd.start+1 : nd.end-1])
	}
	var s string
	_ = json.Unmarshal(t.body[nd.start:nd.end], &s) // cannot fail: a valid JSON string
	return s
}

// keyIs reports whether the member name node n is key.
func (t *tree) keyIs(n int32, key string) bool {
	nd := &t.nodes[n]
	if !nd.escaped {
		return string(t.body[nd.start+1:nd.end-1]) == key
	}
	return t.str(n) == key
}

// member returns the value node of the last member of object node obj
// named key, as encoding/json decodes an object into a map, or -1.
func (t *tree) member(obj int32, key string) int32 {
	found := int32(-1)
	end := t.nodes[obj].next
	for k := obj + 1; k < end; {
		v := k + 1
		if t.keyIs(k, key) {
			found = v
		}
		k = t.nodes[v].next
	}
	return found
}

// val is a JSON value in a tree; the zero val is an absent one.
type val struct {
	t *tree
	n int32
}

// ok reports whether v is present.
func (v val) ok() bool { return v.t != nil }

// kind returns v's JSON type; an absent value reads as null.
func (v val) kind() kind {
	if v.t == nil {
		return kindNull
	}
	return v.t.nodes[v.n].kind
}

// isNull reports whether v is absent or JSON null. FHIR JSON has no nulls;
// the hub reads one as an absent element.
func (v val) isNull() bool { return v.kind() == kindNull }

// get returns the member key of object v, absent when v is no object or
// has no such member.
func (v val) get(key string) val {
	if v.kind() != kindObject {
		return val{}
	}
	if m := v.t.member(v.n, key); m >= 0 {
		return val{v.t, m}
	}
	return val{}
}

// str returns v when it is a JSON string.
func (v val) str() (string, bool) {
	if v.kind() != kindString {
		return "", false
	}
	return v.t.str(v.n), true
}

// raw returns v's bytes; nil when absent.
func (v val) raw() json.RawMessage {
	if v.t == nil {
		return nil
	}
	return v.t.raw(v.n)
}

// len returns the number of elements of array v.
func (v val) len() int {
	if v.kind() != kindArray {
		return 0
	}
	return int(v.t.nodes[v.n].count)
}

// items yields the elements of array v.
func (v val) items() iter.Seq2[int, val] {
	return func(yield func(int, val) bool) {
		if v.kind() != kindArray {
			return
		}
		end := v.t.nodes[v.n].next
		for i, n := 0, v.n+1; n < end; i, n = i+1, v.t.nodes[n].next {
			if !yield(i, val{v.t, n}) {
				return
			}
		}
	}
}
