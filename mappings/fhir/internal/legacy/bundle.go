package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// entry is one Bundle.entry as read from the raw JSON, before any typed
// decoding: what is needed to index it and to decide whether it is used.
type entry struct {
	index        int
	expr         string // "Bundle.entry[3]"
	fullURL      string
	raw          map[string]json.RawMessage // the resource object; nil when absent
	resourceType string
	id           string
	hasRequest   bool
	method, url  string
}

// res returns the FHIRPath of the entry's resource, or of an element in it.
func (e *entry) res(path ...string) string {
	s := e.expr + ".resource"
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
	id, typ   string
	timestamp string // Bundle.timestamp as sent; read only for events
	entries   []*entry
	byFullURL map[string]*entry
	byTypeID  map[string][]*entry
}

// readBundle reads the Bundle shell: resourceType, id, type and each
// entry's fullUrl, resource, resourceType, id and request. It checks the
// JSON types of exactly these elements, with precise expressions. The
// second result is true when the body is not a Bundle at all.
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
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn):
			is.add(SeverityFatal, IssueStructure, "Bundle", "the request body is not valid JSON (syntax error at byte offset %d)", syn.Offset)
		default:
			is.add(SeverityFatal, IssueStructure, "Bundle", "the request body is not a JSON object; expected a FHIR Bundle")
		}
		return nil, true
	}
	if top == nil {
		is.add(SeverityFatal, IssueStructure, "Bundle", "the request body is JSON null; expected a FHIR Bundle")
		return nil, true
	}
	rt, ok := jsonString(top["resourceType"])
	switch {
	case !ok:
		is.add(SeverityFatal, IssueStructure, "Bundle.resourceType", "the JSON object has no resourceType string; expected a FHIR Bundle")
		return nil, true
	case rt != "Bundle":
		is.add(SeverityFatal, IssueStructure, "Bundle.resourceType", "expected a Bundle, got %s", describeType(rt))
		return nil, true
	}

	b := &bundle{byFullURL: map[string]*entry{}, byTypeID: map[string][]*entry{}}
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
	b.timestamp, _ = jsonString(top["timestamp"])
	raws, _ := optArray(top, "entry", "Bundle.entry", is)
	for i, raw := range raws {
		e := &entry{index: i, expr: fmt.Sprintf("Bundle.entry[%d]", i)}
		b.entries = append(b.entries, e)
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			is.errorf(IssueStructure, e.expr, "Bundle.entry must be a JSON object")
			continue
		}
		e.fullURL, _ = optString(obj, "fullUrl", e.expr+".fullUrl", is)
		if res, present := optObject(obj, "resource", e.expr+".resource", is); present {
			e.raw = res
			if e.raw == nil {
				e.raw = map[string]json.RawMessage{}
			}
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

// describeType names a resourceType in a diagnostic without echoing a value
// that is not a FHIR R4 resource type name.
func describeType(rt string) string {
	if isResourceType(rt) {
		return "a " + rt
	}
	return "a JSON object whose resourceType is not a FHIR R4 resource type"
}

// isResourceType reports whether s is the name of a FHIR R4 resource type.
func isResourceType(s string) bool {
	var rt r4.ResourceType
	b, _ := json.Marshal(s)
	return rt.UnmarshalJSON(b) == nil
}

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
		keys := map[string]bool{}
		if e.resourceType != "" && e.id != "" {
			keys[e.resourceType+"/"+e.id] = true
		}
		if m := absoluteTypeID.FindStringSubmatch(e.fullURL); m != nil {
			keys[m[1]] = true
		}
		for k := range keys {
			b.byTypeID[k] = append(b.byTypeID[k], e)
		}
	}
}

var (
	// relativeRef is a FHIR relative reference: Type/id, optionally with a
	// version.
	relativeRef = regexp.MustCompile(`^([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$`)
	// absoluteTypeID finds Type/id at the end of an absolute fullUrl
	// ("https://example.org/fhir/Patient/123").
	absoluteTypeID = regexp.MustCompile(`^https?://.+/([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})$`)
)

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
	if m := relativeRef.FindStringSubmatch(ref); m != nil {
		switch es := b.byTypeID[m[1]]; len(es) {
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

// isNull reports whether raw is absent or JSON null. FHIR JSON has no nulls;
// the hub reads one as an absent element.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// optString reads an optional string element. The second result is true
// when the element is present and a string; a value of another JSON type is
// reported at expr.
func optString(m map[string]json.RawMessage, key, expr string, is *issues) (string, bool) {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		return "", false
	}
	s, ok := jsonString(raw)
	if !ok {
		is.errorf(IssueStructure, expr, "%s must be a JSON string", lastName(expr))
		return "", false
	}
	return s, true
}

// optObject reads an optional object element; see optString.
func optObject(m map[string]json.RawMessage, key, expr string, is *issues) (map[string]json.RawMessage, bool) {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		return nil, false
	}
	var obj map[string]json.RawMessage
	if bytes.TrimSpace(raw)[0] != '{' || json.Unmarshal(raw, &obj) != nil {
		is.errorf(IssueStructure, expr, "%s must be a JSON object", lastName(expr))
		return nil, false
	}
	return obj, true
}

// optArray reads an optional array element; see optString.
func optArray(m map[string]json.RawMessage, key, expr string, is *issues) ([]json.RawMessage, bool) {
	raw, ok := m[key]
	if !ok || isNull(raw) {
		return nil, false
	}
	var arr []json.RawMessage
	if bytes.TrimSpace(raw)[0] != '[' || json.Unmarshal(raw, &arr) != nil {
		is.errorf(IssueStructure, expr, "%s must be a JSON array", lastName(expr))
		return nil, false
	}
	return arr, true
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
