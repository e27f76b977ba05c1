package fhir_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
	"github.com/iceshub/iceshub/mappings/fhir/internal/legacy"
)

// outcome is what a parse gives, in a form that both the parser and its
// legacy oracle can be compared in: the result, or the kind of error with
// its issues and text.
type outcome struct {
	Parsed any
	Kind   string
	Issues any
	Error  string
}

func outcomeOf(p any, err error, issues func(error) any) outcome {
	if err == nil {
		return outcome{Parsed: p}
	}
	return outcome{Kind: errors.Unwrap(err).Error(), Issues: issues(err), Error: err.Error()}
}

func fastIssues(err error) any {
	var ve *fhirmap.ValidationError
	if errors.As(err, &ve) {
		return ve.Issues
	}
	return "not a ValidationError: " + err.Error()
}

func legacyIssues(err error) any {
	var ve *legacy.ValidationError
	if errors.As(err, &ve) {
		return ve.Issues
	}
	return "not a ValidationError: " + err.Error()
}

// sameAsLegacy parses body with both parsers of both the package and its
// legacy oracle and returns a description of the first difference, or "".
func sameAsLegacy(body []byte) string {
	type pair struct {
		name   string
		fast   func([]byte) (fhirmap.Parsed, error)
		legacy func([]byte) (legacy.Parsed, error)
	}
	for _, c := range []pair{
		{"ParseMessage", fhirmap.ParseMessage, legacy.ParseMessage},
		{"ParseTransaction", fhirmap.ParseTransaction, legacy.ParseTransaction},
	} {
		// Each parse gets its own copy, so that neither can see what the
		// other might have done to the body.
		fp, ferr := c.fast(bytes.Clone(body))
		lp, lerr := c.legacy(bytes.Clone(body))
		f, _ := json.Marshal(outcomeOf(fp, ferr, fastIssues))
		l, _ := json.Marshal(outcomeOf(lp, lerr, legacyIssues))
		if !bytes.Equal(f, l) {
			return c.name + ":\n fast:   " + string(f) + "\n legacy: " + string(l)
		}
	}
	return ""
}

// differentialFiles are every bundle the tests know: the samples, the BaRS
// examples and the invalid fixtures, and the shared BaRS examples when the
// checkout has them beside it.
func differentialFiles(t testing.TB) []string {
	var files []string
	for _, pattern := range []string{
		filepath.Join(testdata, "*.json"),
		filepath.Join(testdata, "bars", "*.json"),
		filepath.Join(testdata, "invalid", "*.json"),
		filepath.Join("..", "..", "..", "shared", "examples", "bars", "*.json"),
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 15 {
		t.Fatalf("found only %d bundles", len(files))
	}
	return files
}

// TestSameAsLegacy holds the parser to the results and issues of the
// parser it replaced, for every bundle in the test data.
func TestSameAsLegacy(t *testing.T) {
	for _, file := range differentialFiles(t) {
		body, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if d := sameAsLegacy(body); d != "" {
			t.Errorf("%s: %s", file, d)
		}
	}
}

// FuzzSameAsLegacy is TestSameAsLegacy for any input.
func FuzzSameAsLegacy(f *testing.F) {
	for _, file := range differentialFiles(f) {
		body, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if d := sameAsLegacy(body); d != "" {
			t.Fatal(d)
		}
	})
}

// TestSameAsLegacyMutated breaks the samples of each kind of bundle one
// element at a time, every way a sender might (null, another JSON type, an
// unknown code, a key in another case, removed, wrapped in an array), and
// holds the parser to its legacy oracle on each: the error paths are where
// a decoder most easily differs.
func TestSameAsLegacyMutated(t *testing.T) {
	step := 1
	if testing.Short() || raceEnabled {
		step = 7
	}
	n := 0
	for _, name := range []string{"referral-1-line.json", "referral-transaction.json", "cancellation-revoked.json", "collection-1-line.json"} {
		doc := decodeAny(t, read(t, name))
		for _, m := range mutants(doc, nil) {
			n++
			if n%step != 0 {
				continue
			}
			body, err := json.Marshal(m.doc)
			if err != nil {
				t.Fatal(err)
			}
			if d := sameAsLegacy(body); d != "" {
				t.Errorf("%s with %s: %s", name, m.what, d)
			}
		}
	}
	if n < 5000 {
		t.Errorf("only %d mutants", n)
	}
}

func decodeAny(t *testing.T, body []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

type mutant struct {
	what string
	doc  any
}

// mutants returns copies of doc, each with one element below path changed.
func mutants(doc any, path []any) []mutant {
	var out []mutant
	at := func(what string, v any) {
		out = append(out, mutant{what: fmtPath(path) + " " + what, doc: replaceAt(doc, path, v)})
	}
	v := valueAt(doc, path)
	for _, r := range []struct {
		what string
		v    any
	}{
		{"null", nil}, {"7", json.Number("7")}, {"-2.5", json.Number("-2.5")}, {"\"x\"", "x"},
		{"\"official\"", "official"}, {"true", true}, {"{}", map[string]any{}}, {"[]", []any{}},
		{"wrapped", []any{v}},
	} {
		at(r.what, r.v)
	}
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if len(path) > 0 {
				out = append(out, mutant{what: fmtPath(path) + " without " + k, doc: replaceAt(doc, path, without(v, k))})
				out = append(out, mutant{what: fmtPath(path) + " with " + k + " capitalised", doc: replaceAt(doc, path, renamed(v, k))})
			}
			out = append(out, mutants(doc, append(append([]any{}, path...), k))...)
		}
	case []any:
		if len(v) > 0 {
			at("unwrapped", v[0])
		}
		for i := range v {
			out = append(out, mutants(doc, append(append([]any{}, path...), i))...)
		}
	}
	return out
}

func valueAt(doc any, path []any) any {
	for _, p := range path {
		switch p := p.(type) {
		case string:
			doc = doc.(map[string]any)[p]
		case int:
			doc = doc.([]any)[p]
		}
	}
	return doc
}

// replaceAt returns a copy of doc with the value at path replaced by v;
// doc itself is left as it was.
func replaceAt(doc any, path []any, v any) any {
	if len(path) == 0 {
		return v
	}
	switch p := path[0].(type) {
	case string:
		m := map[string]any{}
		for k, x := range doc.(map[string]any) {
			m[k] = x
		}
		m[p] = replaceAt(m[p], path[1:], v)
		return m
	default:
		a := append([]any{}, doc.([]any)...)
		a[p.(int)] = replaceAt(a[p.(int)], path[1:], v)
		return a
	}
}

func without(m map[string]any, key string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func renamed(m map[string]any, key string) map[string]any {
	out := without(m, key)
	out[string(bytes.ToUpper([]byte(key[:1])))+key[1:]] = m[key]
	return out
}

func fmtPath(path []any) string {
	b, _ := json.Marshal(path)
	return string(b)
}
