package fhir_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// assertValidFHIR checks a resource the hub emits against the FHIR R4 rules
// it could break, independently of the structs that wrote it: no null,
// empty string, empty object or empty array anywhere (FHIR JSON forbids
// them); no two variants of one choice element; and the required elements
// and codes of Bundle, MessageHeader, OperationOutcome and
// CapabilityStatement. (During development the same answers were also
// checked against the official R4 JSON schema.)
func assertValidFHIR(t *testing.T, body []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	for _, p := range fhirProblems("", v) {
		t.Errorf("invalid FHIR: %s\n%s", p, body)
	}
}

var (
	elementName  = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
	fhirIDRE     = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	instantRE    = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
	choicePrefix = []string{"value", "event", "effective", "deceased", "code", "occurrence"}
	issueTypes   = []string{"invalid", "structure", "required", "value", "invariant", "security", "login", "unknown", "expired", "forbidden", "suppressed", "processing", "not-supported", "duplicate", "multiple-matches", "not-found", "deleted", "too-long", "code-invalid", "extension", "too-costly", "business-rule", "conflict", "transient", "lock-error", "no-store", "exception", "timeout", "incomplete", "throttled", "informational"}
	bundleTypes  = []string{"document", "message", "transaction", "transaction-response", "batch", "batch-response", "history", "searchset", "collection"}
)

func fhirProblems(path string, v any) []string {
	var out []string
	switch x := v.(type) {
	case nil:
		out = append(out, path+": null")
	case string:
		if x == "" {
			out = append(out, path+": empty string")
		}
	case []any:
		if len(x) == 0 {
			out = append(out, path+": empty array")
		}
		for i, item := range x {
			out = append(out, fhirProblems(fmt.Sprintf("%s[%d]", path, i), item)...)
		}
	case map[string]any:
		if len(x) == 0 {
			out = append(out, path+": empty object")
		}
		choices := map[string]int{}
		for k, item := range x {
			if k != "resourceType" && !elementName.MatchString(k) {
				out = append(out, path+"."+k+": not a FHIR element name")
			}
			for _, c := range choicePrefix {
				if len(k) > len(c) && strings.HasPrefix(k, c) && k[len(c)] >= 'A' && k[len(c)] <= 'Z' {
					choices[c]++
				}
			}
			out = append(out, fhirProblems(path+"."+k, item)...)
		}
		for c, n := range choices {
			if n > 1 {
				out = append(out, fmt.Sprintf("%s: %d variants of %s[x]", path, n, c))
			}
		}
		if rt, ok := x["resourceType"].(string); ok {
			out = append(out, resourceProblems(path, rt, x)...)
		}
	}
	return out
}

func resourceProblems(path, rt string, r map[string]any) []string {
	var out []string
	need := func(keys ...string) {
		for _, k := range keys {
			if _, ok := r[k]; !ok {
				out = append(out, fmt.Sprintf("%s: %s.%s is required", path, rt, k))
			}
		}
	}
	oneOf := func(k string, codes []string) {
		if s, ok := r[k].(string); ok && !slices.Contains(codes, s) {
			out = append(out, fmt.Sprintf("%s: %s.%s %q is not a code", path, rt, k, s))
		}
	}
	if id, ok := r["id"].(string); ok && !fhirIDRE.MatchString(id) {
		out = append(out, path+": id is not a FHIR id")
	}
	switch rt {
	case "Bundle":
		need("type")
		oneOf("type", bundleTypes)
		if ts, ok := r["timestamp"].(string); ok && !instantRE.MatchString(ts) {
			out = append(out, path+": timestamp is not an instant")
		}
		typ, _ := r["type"].(string)
		entries, _ := r["entry"].([]any)
		for i, e := range entries {
			en, _ := e.(map[string]any)
			resp, hasResp := en["response"].(map[string]any)
			if strings.HasSuffix(typ, "-response") {
				if !hasResp || resp["status"] == nil {
					out = append(out, fmt.Sprintf("%s.entry[%d]: response.status is required in a %s", path, i, typ))
				}
			} else if hasResp {
				out = append(out, fmt.Sprintf("%s.entry[%d]: response only in a -response bundle", path, i))
			}
			if typ == "message" {
				res, _ := en["resource"].(map[string]any)
				if res == nil {
					out = append(out, fmt.Sprintf("%s.entry[%d]: a message entry needs a resource", path, i))
				} else if i == 0 && res["resourceType"] != "MessageHeader" {
					out = append(out, path+": the first entry of a message must be a MessageHeader")
				}
			}
		}
	case "MessageHeader":
		need("eventCoding", "source")
		if src, _ := r["source"].(map[string]any); src["endpoint"] == nil {
			out = append(out, path+": MessageHeader.source.endpoint is required")
		}
		if resp, ok := r["response"].(map[string]any); ok {
			if id, _ := resp["identifier"].(string); !fhirIDRE.MatchString(id) {
				out = append(out, path+": response.identifier must be an id")
			}
			if c, _ := resp["code"].(string); !slices.Contains([]string{"ok", "transient-error", "fatal-error"}, c) {
				out = append(out, path+": response.code is not a code")
			}
		}
	case "OperationOutcome":
		need("issue")
		issues, _ := r["issue"].([]any)
		for i, is := range issues {
			m, _ := is.(map[string]any)
			if s, _ := m["severity"].(string); !slices.Contains([]string{"fatal", "error", "warning", "information"}, s) {
				out = append(out, fmt.Sprintf("%s.issue[%d]: severity %q", path, i, s))
			}
			if c, _ := m["code"].(string); !slices.Contains(issueTypes, c) {
				out = append(out, fmt.Sprintf("%s.issue[%d]: code %q", path, i, c))
			}
		}
	case "CapabilityStatement":
		need("status", "date", "kind", "fhirVersion", "format")
		oneOf("status", []string{"draft", "active", "retired", "unknown"})
		oneOf("kind", []string{"instance", "capability", "requirements"})
		if r["kind"] == "instance" {
			need("implementation")
		}
		rests, _ := r["rest"].([]any)
		for _, rs := range rests {
			m, _ := rs.(map[string]any)
			if mode, _ := m["mode"].(string); mode != "server" && mode != "client" {
				out = append(out, path+": rest.mode")
			}
			inters, _ := m["interaction"].([]any)
			for _, in := range inters {
				c, _ := in.(map[string]any)["code"].(string)
				if !slices.Contains([]string{"transaction", "batch", "search-system", "history-system"}, c) {
					out = append(out, path+": rest.interaction.code "+c)
				}
			}
		}
	}
	return out
}

// TestAssertValidFHIRCatchesFaults proves the checker can fail.
func TestAssertValidFHIRCatchesFaults(t *testing.T) {
	bad := []string{
		`{"resourceType":"OperationOutcome","issue":[]}`,
		`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"oops"}]}`,
		`{"resourceType":"Bundle","type":"message","entry":[{"resource":{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"value"}]}}]}`,
		`{"resourceType":"MessageHeader","eventCoding":{"code":"x"},"eventUri":"x","source":{"endpoint":"x"}}`,
		`{"resourceType":"MessageHeader","eventCoding":{"code":"x"},"source":{}}`,
		`{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"location":"x"}}]}`,
		`{"resourceType":"Bundle","type":"message","timestamp":"yesterday"}`,
		`{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1","format":["json"]}`,
		`{"resourceType":"Bundle","type":"message","id":""}`,
		`{"resourceType":"Bundle","type":"message","identifier":null}`,
	}
	for _, b := range bad {
		var v any
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			t.Fatal(err)
		}
		if len(fhirProblems("", v)) == 0 {
			t.Errorf("no problem found in %s", b)
		}
	}
}
