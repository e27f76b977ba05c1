package legacy

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// decode fills dst, a pointer to a golang-fhir-models resource struct, from
// the elements of e's resource named in keep, and from no other element.
//
// Reading only the elements the hub uses is the tolerant-reader rule in one
// place: a sender's mistake in an element the hub ignores (Observation.note
// sent as an object, an unknown code in Patient.communication) cannot make
// a referral fail. A mistake in an element the hub uses is reported at that
// element, or at the array item when the element repeats, and the element is
// left at its zero value; the other elements are still decoded so that every
// problem is found in one pass. decode returns the names of the elements
// that failed.
func decode(e *entry, dst any, is *issues, keep ...string) map[string]bool {
	pruned := map[string]json.RawMessage{}
	for _, k := range keep {
		if v, ok := e.raw[k]; ok && !isNull(v) {
			pruned[k] = v
		}
	}
	b, _ := json.Marshal(pruned) // cannot fail: a map of valid raw JSON
	if json.Unmarshal(b, dst) == nil {
		return nil
	}
	// Find the failing elements one by one.
	typ := reflect.TypeOf(dst).Elem()
	failed := map[string]bool{}
	for _, k := range keep {
		v, ok := pruned[k]
		if !ok {
			continue
		}
		if err := unmarshalOne(typ, k, v); err != nil {
			failed[k] = true
			delete(pruned, k)
			reportDecode(e, typ, k, v, err, is)
		}
	}
	reflect.ValueOf(dst).Elem().SetZero()
	b, _ = json.Marshal(pruned)
	_ = json.Unmarshal(b, dst) // the remaining elements each decoded alone
	return failed
}

// unmarshalOne decodes the single element k into a new value of typ.
func unmarshalOne(typ reflect.Type, k string, v json.RawMessage) error {
	b, _ := json.Marshal(map[string]json.RawMessage{k: v})
	return json.Unmarshal(b, reflect.New(typ).Interface())
}

// reportDecode reports why element k did not decode: at the failing array
// item when the element is an array, with the JSON type expected when the
// decoder says so. The error text itself is never quoted, since the
// decoder's messages can echo values.
func reportDecode(e *entry, typ reflect.Type, k string, v json.RawMessage, err error, is *issues) {
	var items []json.RawMessage
	if ft := fieldType(typ, k); ft != nil && ft.Kind() == reflect.Slice && json.Unmarshal(v, &items) == nil && len(items) > 0 {
		found := false
		for i, item := range items {
			b, _ := json.Marshal([]json.RawMessage{item})
			if err := unmarshalOne(typ, k, b); err != nil {
				found = true
				reportAt(e, fmt.Sprintf("%s[%d]", k, i), k, item, err, is)
			}
		}
		if found {
			return
		}
	}
	reportAt(e, k, k, v, err, is)
}

// fieldType returns the type of the field of struct type typ whose JSON
// name is k, or nil.
func fieldType(typ reflect.Type, k string) reflect.Type {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name == k {
			return f.Type
		}
	}
	return nil
}

// reportAt reports err for the element at path (k, or k[i]) whose value is
// v.
func reportAt(e *entry, path, k string, v json.RawMessage, err error, is *issues) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		rest := strings.TrimPrefix(te.Field, k)
		if rest != "" && !strings.HasPrefix(rest, ".") {
			rest = ""
		}
		p := path + rest
		is.errorf(IssueStructure, e.res(p), "%s.%s must be %s", e.resourceType, stripIndexes(p), jsonKind(te.Type))
		return
	}
	if codes, ok := codeSets[e.resourceType+"."+k]; ok {
		if _, isString := jsonString(v); !isString {
			is.errorf(IssueStructure, e.res(path), "%s.%s must be a JSON string", e.resourceType, k)
			return
		}
		is.errorf(IssueInvalid, e.res(path), "%s.%s must be one of the codes %s", e.resourceType, k, strings.Join(codes, ", "))
		return
	}
	is.errorf(IssueInvalid, e.res(path), "%s.%s is not valid FHIR: a code outside its value set or a value of the wrong type", e.resourceType, stripIndexes(path))
}

// jsonKind names the JSON type a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "of another JSON type"
}

// stripIndexes turns "telecom[1].system" into "telecom.system".
func stripIndexes(p string) string {
	var b strings.Builder
	skip := false
	for _, r := range p {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// The FHIR R4 codes of the coded elements the hub checks itself, so that a
// sender is told which codes are allowed.
var (
	requestStatusCodes     = []string{"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"}
	requestIntentCodes     = []string{"proposal", "plan", "directive", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option"}
	requestPriorityCodes   = []string{"routine", "urgent", "asap", "stat"}
	genderCodes            = []string{"male", "female", "other", "unknown"}
	observationStatusCodes = []string{"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
	bundleTypeCodes        = []string{"document", "message", "transaction", "transaction-response", "batch", "batch-response", "history", "searchset", "collection"}

	codeSets = map[string][]string{
		"ServiceRequest.status":   requestStatusCodes,
		"ServiceRequest.intent":   requestIntentCodes,
		"ServiceRequest.priority": requestPriorityCodes,
		"DeviceRequest.status":    requestStatusCodes,
		"DeviceRequest.intent":    requestIntentCodes,
		"Patient.gender":          genderCodes,
		"Observation.status":      observationStatusCodes,
		"Consent.status":          consentStatusCodes,
	}
)

// code reads the coded element key of e's resource as a string and checks
// it against the element's value set. It reports a missing element when
// required, a non-string as a structure error and an unknown code as
// invalid. The second result is true for a valid code.
func code(e *entry, key string, required bool, is *issues) (string, bool) {
	expr := e.res(key)
	s, present := optString(e.raw, key, expr, is)
	if !present {
		if required && !is.failedAt(expr) {
			is.errorf(IssueRequired, expr, "%s.%s is required", e.resourceType, key)
		}
		return "", false
	}
	if codes := codeSets[e.resourceType+"."+key]; codes != nil && !slices.Contains(codes, s) {
		is.errorf(IssueInvalid, expr, "%s.%s must be one of the codes %s", e.resourceType, key, strings.Join(codes, ", "))
		return "", false
	}
	return s, true
}

// has reports whether e's resource has a non-null element key.
func has(e *entry, key string) bool {
	v, ok := e.raw[key]
	return ok && !isNull(v)
}
