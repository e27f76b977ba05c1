package fhir

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// decodeFast decodes the elements of obj named in keep into dst, a
// pointer to a golang-fhir-models struct, straight from the tree. It
// reports false, leaving dst partly filled, when an element holds anything
// for which it cannot be sure to do exactly what encoding/json does: a
// value of the wrong JSON type, an unknown code, a null, a member name
// that is escaped, repeated or differs from a field's only in case. The
// caller then decodes with encoding/json, which reports what is wrong.
func decodeFast(obj val, dst any, keep []string) bool {
	rv := reflect.ValueOf(dst).Elem()
	pl := plans()[rv.Type()]
	if pl == nil || pl.kind != planStruct || obj.kind() != kindObject {
		return false
	}
	// One pass over the members, not a search for each element kept. A
	// repeated member name, which a map would resolve to its last value,
	// is left to encoding/json.
	t := obj.t
	var seen [maxFields / 64]uint64
	for k := obj.n + 1; k < t.nodes[obj.n].next; k = t.nodes[k+1].next {
		key := &t.nodes[k]
		if key.escaped {
			return false
		}
		name := t.body[key.start+1 : key.end-1]
		if !slices.Contains(keep, string(name)) {
			continue
		}
		f, ok := pl.fields[string(name)]
		if !ok || seen[f.bit/64]&(1<<(f.bit%64)) != 0 {
			return false
		}
		seen[f.bit/64] |= 1 << (f.bit % 64)
		if t.nodes[k+1].kind == kindNull {
			continue
		}
		if !decodeValue(t, k+1, rv.Field(f.index), f.plan) {
			return false
		}
	}
	return true
}

// unmarshal decodes v into dst and reports whether json.Unmarshal of v's
// bytes into dst would have returned no error (so false for an absent v).
func unmarshal(v val, dst any) bool {
	if !v.ok() {
		return false
	}
	return peekAt(v, dst)
}

// peekAt decodes v into dst as a member of an object decoded with
// encoding/json: an absent or null v leaves dst as it is. It reports
// whether that decoding had no error.
func peekAt(v val, dst any) bool {
	if v.isNull() {
		return true
	}
	rv := reflect.ValueOf(dst).Elem()
	if pl := plans()[rv.Type()]; pl != nil && decodeValue(v.t, v.n, rv, pl) {
		return true
	}
	rv.SetZero()
	return json.Unmarshal(v.raw(), dst) == nil
}

// decodeValue decodes node n into dst as encoding/json would, or reports
// false; see decodeFast.
func decodeValue(t *tree, n int32, dst reflect.Value, pl *plan) bool {
	nd := &t.nodes[n]
	if nd.kind == kindNull {
		return false
	}
	switch pl.kind {
	case planUnmarshaler:
		return dst.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(t.raw(n)) == nil
	case planPointer:
		if !dst.IsNil() {
			return false
		}
		p := reflect.New(pl.elem.typ)
		if !decodeValue(t, n, p.Elem(), pl.elem) {
			return false
		}
		dst.Set(p)
		return true
	case planString:
		if nd.kind != kindString {
			return false
		}
		dst.SetString(t.str(n))
		return true
	case planNumber:
		if nd.kind != kindNumber {
			return false
		}
		dst.SetString(string(t.raw(n)))
		return true
	case planBool:
		if nd.kind != kindTrue && nd.kind != kindFalse {
			return false
		}
		dst.SetBool(nd.kind == kindTrue)
		return true
	case planInt:
		if nd.kind != kindNumber {
			return false
		}
		i, err := strconv.ParseInt(string(t.raw(n)), 10, 64)
		if err != nil || dst.OverflowInt(i) {
			return false
		}
		dst.SetInt(i)
		return true
	case planSlice:
		if nd.kind != kindArray || !dst.IsNil() {
			return false
		}
		if nd.count == 0 {
			dst.Set(reflect.MakeSlice(pl.typ, 0, 0)) // encoding/json's empty, not nil, slice
			return true
		}
		// Grow, unlike MakeSlice, does not put a slice header on the heap.
		dst.Grow(int(nd.count))
		dst.SetLen(int(nd.count))
		for i, e := 0, n+1; e < nd.next; i, e = i+1, t.nodes[e].next {
			if !decodeValue(t, e, dst.Index(i), pl.elem) {
				return false
			}
		}
		return true
	case planStruct:
		return decodeStruct(t, n, dst, pl)
	}
	return false
}

// decodeStruct decodes object node n into the struct dst. Members that name
// no field are skipped, as encoding/json does, unless encoding/json would
// match them to a field regardless of case.
func decodeStruct(t *tree, n int32, dst reflect.Value, pl *plan) bool {
	nd := &t.nodes[n]
	if nd.kind != kindObject {
		return false
	}
	var seen [maxFields / 64]uint64
	for k := n + 1; k < nd.next; k = t.nodes[k+1].next {
		key := &t.nodes[k]
		if key.escaped {
			return false
		}
		name := t.body[key.start+1 : key.end-1]
		f, ok := pl.fields[string(name)]
		if !ok {
			if pl.matchesInAnyCase(name) {
				return false
			}
			continue
		}
		if seen[f.bit/64]&(1<<(f.bit%64)) != 0 {
			return false
		}
		seen[f.bit/64] |= 1 << (f.bit % 64)
		if !decodeValue(t, k+1, dst.Field(f.index), f.plan) {
			return false
		}
	}
	return true
}

// maxFields bounds the fields of a struct decodeStruct decodes, so that it
// can note the fields seen without allocating.
const maxFields = 128

type planKind uint8

const (
	planUnsupported planKind = iota
	planUnmarshaler
	planPointer
	planSlice
	planStruct
	planString
	planNumber
	planBool
	planInt
)

// plan is how decodeValue decodes into one Go type, worked out once.
type plan struct {
	kind   planKind
	typ    reflect.Type
	elem   *plan             // of a pointer or slice
	fields map[string]*field // of a struct, by JSON name
	folded map[string]bool   // of a struct, its JSON names in lower case
}

type field struct {
	index int // in the struct
	bit   int // in decodeStruct's record of the fields seen
	plan  *plan
}

// matchesInAnyCase reports whether encoding/json might decode a member
// named name into one of the struct's fields though no field has that
// name: it matches names regardless of case, and folds some non-ASCII
// letters to ASCII ones.
func (pl *plan) matchesInAnyCase(name []byte) bool {
	var buf [64]byte
	if len(name) > len(buf) {
		return true
	}
	for i, c := range name {
		if c >= utf8.RuneSelf {
			return true
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return pl.folded[string(buf[:len(name)])]
}

// plans returns the plans of the types the parser decodes, and of the
// types in them.
var plans = sync.OnceValue(func() map[reflect.Type]*plan {
	m := map[reflect.Type]*plan{}
	for _, v := range []any{
		r4.MessageHeader{}, r4.ServiceRequest{}, r4.Patient{}, r4.DeviceRequest{}, r4.Device{},
		r4.Practitioner{}, r4.PractitionerRole{}, r4.Organization{}, r4.Location{},
		r4.Condition{}, r4.Observation{}, r4.Consent{},
		r4.CodeableConcept{}, (*r4.Reference)(nil),
	} {
		planOf(reflect.TypeOf(v), m)
	}
	return m
})

var (
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[interface{ UnmarshalText([]byte) error }]()
	numberType          = reflect.TypeFor[json.Number]()
)

// planOf works out the plan of t, and of the types in it, into m. A type
// whose decoding by encoding/json it does not mirror gets a plan of kind
// planUnsupported, which always falls back to encoding/json.
func planOf(t reflect.Type, m map[reflect.Type]*plan) *plan {
	if pl, ok := m[t]; ok {
		return pl
	}
	pl := &plan{typ: t}
	m[t] = pl // before the fields, for types that contain themselves
	switch {
	case reflect.PointerTo(t).Implements(unmarshalerType):
		pl.kind = planUnmarshaler
		return pl
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		return pl
	case t == numberType:
		pl.kind = planNumber
		return pl
	}
	switch t.Kind() {
	case reflect.Pointer:
		pl.kind, pl.elem = planPointer, planOf(t.Elem(), m)
	case reflect.Slice:
		if t.Elem().Kind() != reflect.Uint8 { // encoding/json reads []byte as base64
			pl.kind, pl.elem = planSlice, planOf(t.Elem(), m)
		}
	case reflect.String:
		pl.kind = planString
	case reflect.Bool:
		pl.kind = planBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		pl.kind = planInt
	case reflect.Struct:
		structPlan(pl, m)
	}
	return pl
}

// structPlan fills in the plan of a struct whose fields are all plain
// exported fields with a JSON name of their own; any other struct is left
// unsupported.
func structPlan(pl *plan, m map[reflect.Type]*plan) {
	t := pl.typ
	if t.NumField() > maxFields {
		return
	}
	fields := map[string]*field{}
	folded := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := cutTag(f.Tag.Get("json"))
		if f.Anonymous || !f.IsExported() || name == "" || name == "-" || opts != "" && opts != "omitempty" {
			return
		}
		lower := asciiLower(name)
		if _, dup := fields[name]; dup || folded[lower] {
			return
		}
		fields[name] = &field{index: i, bit: i, plan: planOf(f.Type, m)}
		folded[lower] = true
	}
	pl.kind, pl.fields, pl.folded = planStruct, fields, folded
}

func cutTag(tag string) (name, opts string, ok bool) {
	for i := range len(tag) {
		if tag[i] == ',' {
			return tag[:i], tag[i+1:], true
		}
	}
	return tag, "", false
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
