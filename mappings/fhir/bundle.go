package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// entry is one Bundle.entry as read from the raw JSON, before any typed
// decoding: what is needed to index it and to decide whether it is used.
type entry struct {
	index        int
	expr         string // "Bundle.entry[3]"
	resExpr      string // "Bundle.entry[3].resource"
	fullURL      string
	raw          val // the resource object; absent when the entry has none
	resourceType string
	id           string
	hasRequest   bool
	method, url  string
}

// res returns the FHIRPath of the entry's resource, or of an element in it.
func (e *entry) res(path ...string) string {
	switch len(path) {
	case 0:
		return e.resExpr
	case 1:
		if !strings.HasPrefix(path[0], "[") {
			return e.resExpr + "." + path[0]
		}
	}
	s := e.resExpr
	for _, p := range path {
		if strings.HasPrefix(p, "[") {
			s += p
		} else {
			s += "." + p
		}
	}
	return s
}

// bundle is a Bundle read from the raw JSON and indexed for reference
// resolution.
type bundle struct {
	t         *tree
	id, typ   string
	timestamp string // Bundle.timestamp as sent; read only for events
	entries   []*entry
	byFullURL map[string]*entry
	byTypeID  map[string][]*entry
}

// readBundle reads the Bundle shell: resourceType, id, type and each
// entry's fullUrl, resource, resourceType, id and request. It checks the
// JSON types of exactly these elements, with precise expressions. The
// second result is true when the body is not a Bundle at all. A Bundle's
// tree belongs to the parse and is released by it.
func readBundle(body []byte, is *issues) (*bundle, bool) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark some senders add
	if len(bytes.TrimSpace(body)) == 0 {
		is.add(SeverityFatal, IssueStructure, "Bundle", "the request body is empty; expected a FHIR Bundle in JSON")
		return nil, true
	}
	if !utf8.Valid(body) {
		is.add(SeverityFatal, IssueStructure, "Bundle", "the request body is not valid UTF-8")
		return nil, true
	}
	t, ok := parseTree(body)
	if !ok {
		notJSON(body, is)
		return nil, true
	}
	if expr, name, found := t.duplicate("Bundle"); found {
		// FHIR JSON forbids it, and readers disagree on which value
		// counts: encoding/json and this package's reader take the last,
		// others (a gateway, an audit copy) may take the first.
		t.release()
		if name == "?" {
			is.add(SeverityFatal, IssueStructure, expr, "this JSON object repeats a member name; FHIR JSON allows each name once in an object (the hub compares names without regard to case)")
		} else {
			is.add(SeverityFatal, IssueStructure, expr, "this JSON object repeats the member %q; FHIR JSON allows each name once in an object (the hub compares names without regard to case)", name)
		}
		return nil, true
	}
	top := val{t: t}
	switch top.kind() {
	case kindObject:
	case kindNull:
		t.release()
		is.add(SeverityFatal, IssueStructure, "Bundle", "the request body is JSON null; expected a FHIR Bundle")
		return nil, true
	default:
		t.release()
		is.add(SeverityFatal, IssueStructure, "Bundle", "the request body is not a JSON object; expected a FHIR Bundle")
		return nil, true
	}
	rt, ok := top.get("resourceType").str()
	switch {
	case !ok:
		t.release()
		is.add(SeverityFatal, IssueStructure, "Bundle.resourceType", "the JSON object has no resourceType string; expected a FHIR Bundle")
		return nil, true
	case rt != "Bundle":
		t.release()
		is.add(SeverityFatal, IssueStructure, "Bundle.resourceType", "expected a Bundle, got %s", describeType(rt))
		return nil, true
	}

	b := &bundle{t: t, byFullURL: map[string]*entry{}, byTypeID: map[string][]*entry{}}
	b.id, _ = optString(top, "id", "Bundle.id", is)
	if t, present := optString(top, "type", "Bundle.type", is); !present {
		if !is.failedAt("Bundle.type") {
			is.errorf(IssueRequired, "Bundle.type", "Bundle.type is required")
		}
	} else {
		b.typ = t
	}
	// Bundle.timestamp is read without complaint here: only an event uses
	// it (as the time it happened), and checks it there.
	b.timestamp, _ = top.get("timestamp").str()
	entries, _ := optArray(top, "entry", "Bundle.entry", is)
	b.entries = make([]*entry, 0, entries.len())
	all := make([]entry, entries.len())
	for i, obj := range entries.items() {
		e := &all[i]
		e.index, e.expr, e.resExpr = i, entryExpr(i), resourceExpr(i)
		b.entries = append(b.entries, e)
		if obj.kind() != kindObject {
			is.errorf(IssueStructure, e.expr, "Bundle.entry must be a JSON object")
			continue
		}
		e.fullURL, _ = optString(obj, "fullUrl", e.expr+".fullUrl", is)
		if res, present := optObject(obj, "resource", e.expr+".resource", is); present {
			e.raw = res
			if t, ok := optString(res, "resourceType", e.res("resourceType"), is); ok && t != "" {
				e.resourceType = t
			} else if !is.failedAt(e.res("resourceType")) {
				is.errorf(IssueStructure, e.res("resourceType"), "the resource has no resourceType")
			}
			e.id, _ = optString(res, "id", e.res("id"), is)
		}
		if req, present := optObject(obj, "request", e.expr+".request", is); present {
			e.hasRequest = true
			e.method, _ = optString(req, "method", e.expr+".request.method", is)
			e.url, _ = optString(req, "url", e.expr+".request.url", is)
		}
	}
	b.index(is)
	return b, false
}

// The FHIRPaths of the first entries and their resources, so that a
// typical bundle's are not built for every parse.
var entryExprs, resourceExprs = func() (entries, resources [64]string) {
	for i := range entries {
		entries[i] = "Bundle.entry[" + strconv.Itoa(i) + "]"
		resources[i] = entries[i] + ".resource"
	}
	return
}()

func entryExpr(i int) string {
	if i < len(entryExprs) {
		return entryExprs[i]
	}
	return "Bundle.entry[" + strconv.Itoa(i) + "]"
}

func resourceExpr(i int) string {
	if i < len(resourceExprs) {
		return resourceExprs[i]
	}
	return entryExpr(i) + ".resource"
}

// notJSON reports why body, which the tree would not read, is no JSON
// object, in encoding/json's words: they give the offset of a syntax error.
func notJSON(body []byte, is *issues) {
	var top map[string]json.RawMessage
	err := json.Unmarshal(body, &top)
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		is.add(SeverityFatal, IssueStructure, "Bundle", "the request body is not valid JSON (syntax error at byte offset %d)", syn.Offset)
	default:
		is.add(SeverityFatal, IssueStructure, "Bundle", "the request body is not a JSON object; expected a FHIR Bundle")
	}
}

// describeType names a resourceType in a diagnostic without echoing a value
// that is not a FHIR R4 resource type name.
func describeType(rt string) string {
	if isResourceType(rt) {
		return "a " + rt
	}
	return "a JSON object whose resourceType is not a FHIR R4 resource type"
}

// isResourceType reports whether s is the name of a FHIR R4 resource type.
func isResourceType(s string) bool { return resourceTypes()[s] }

// resourceTypes is the set of the names r4.ResourceType decodes from.
var resourceTypes = sync.OnceValue(func() map[string]bool {
	names := map[string]bool{}
	for rt := r4.ResourceType(0); ; rt++ {
		name := rt.Code()
		var back r4.ResourceType
		if back.UnmarshalJSON([]byte(`"`+name+`"`)) != nil || back != rt {
			return names
		}
		names[name] = true
	}
})

// index builds the fullUrl and Type/id indexes. A fullUrl used by two
// entries makes every reference to it ambiguous, so it is an error.
func (b *bundle) index(is *issues) {
	for _, e := range b.entries {
		if e.fullURL != "" {
			if first, dup := b.byFullURL[e.fullURL]; dup {
				is.errorf(IssueStructure, e.expr+".fullUrl", "fullUrl is not unique: %s has the same fullUrl", first.expr)
			} else {
				b.byFullURL[e.fullURL] = e
			}
		}
		typeID := ""
		if e.resourceType != "" && e.id != "" {
			typeID = e.resourceType + "/" + e.id
			b.byTypeID[typeID] = append(b.byTypeID[typeID], e)
		}
		if k, ok := absoluteTypeID(e.fullURL); ok && k != typeID {
			b.byTypeID[k] = append(b.byTypeID[k], e)
		}
	}
}

// why says why a reference did not resolve.
type why int

const (
	resolved why = iota
	noReference
	notInBundle
	ambiguous
	contained
	conditional
)

// resolve finds the entry a reference string points to: by fullUrl
// (urn:uuid:, urn:oid: or an absolute URL), else as a relative Type/id
// reference against the resource type and id (or absolute fullUrl) of the
// entries. Anything else, including a bare id, resolves to nothing.
func (b *bundle) resolve(ref string) (*entry, why) {
	switch {
	case ref == "":
		return nil, noReference
	case strings.HasPrefix(ref, "#"):
		return nil, contained
	}
	if e, ok := b.byFullURL[ref]; ok {
		return e, resolved
	}
	if strings.Contains(ref, "?") {
		return nil, conditional
	}
	if typeID, ok := relativeTypeID(ref); ok {
		switch es := b.byTypeID[typeID]; len(es) {
		case 0:
		case 1:
			return es[0], resolved
		default:
			return nil, ambiguous
		}
	}
	return nil, notInBundle
}

// ofType returns the entries whose resource is of type t, in order.
func (b *bundle) ofType(t string) []*entry {
	var out []*entry
	for _, e := range b.entries {
		if e.resourceType == t {
			out = append(out, e)
		}
	}
	return out
}

// jsonString returns raw as a string when it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// optString reads an optional string element. The second result is true
// when the element is present and a string; a value of another JSON type is
// reported at expr.
func optString(obj val, key, expr string, is *issues) (string, bool) {
	v := obj.get(key)
	if v.isNull() {
		return "", false
	}
	s, ok := v.str()
	if !ok {
		is.errorf(IssueStructure, expr, "%s must be a JSON string", lastName(expr))
		return "", false
	}
	return s, true
}

// optObject reads an optional object element; see optString.
func optObject(obj val, key, expr string, is *issues) (val, bool) {
	v := obj.get(key)
	if v.isNull() {
		return val{}, false
	}
	if v.kind() != kindObject {
		is.errorf(IssueStructure, expr, "%s must be a JSON object", lastName(expr))
		return val{}, false
	}
	return v, true
}

// optArray reads an optional array element; see optString.
func optArray(obj val, key, expr string, is *issues) (val, bool) {
	v := obj.get(key)
	if v.isNull() {
		return val{}, false
	}
	if v.kind() != kindArray {
		is.errorf(IssueStructure, expr, "%s must be a JSON array", lastName(expr))
		return val{}, false
	}
	return v, true
}

// lastName returns "Bundle.entry.resource" style naming of the last element
// of an expression, without indexes: "Bundle.entry[2].fullUrl" -> "fullUrl".
func lastName(expr string) string {
	if i := strings.LastIndexByte(expr, '.'); i >= 0 {
		expr = expr[i+1:]
	}
	if i := strings.IndexByte(expr, '['); i >= 0 {
		expr = expr[:i]
	}
	return expr
}
