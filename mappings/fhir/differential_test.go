package fhir_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// fingerprintsFile records, for every bundle the tests know and for each
// of thousands of broken variants of the samples, a fingerprint of what the
// parser answers: its result, or the kind of error with its issues and
// text. They were recorded from the parser this one replaced (a three-pass
// decoder over encoding/json and the golang-fhir-models types), so these
// tests hold the parser to that behaviour. Rewrite them with -update only
// when a change of behaviour is meant, and review why each one changed.
const fingerprintsFile = testdata + "/golden/parse-fingerprints.json"

// outcome is what a parse gives: the result, or the kind of error with its
// issues and text.
type outcome struct {
	Parsed any
	Kind   string
	Issues any
	Error  string
}

func outcomeOf(p fhirmap.Parsed, err error) outcome {
	if err == nil {
		return outcome{Parsed: p}
	}
	var ve *fhirmap.ValidationError
	var issues any = "not a ValidationError: " + err.Error()
	if errors.As(err, &ve) {
		issues = ve.Issues
	}
	return outcome{Kind: errors.Unwrap(err).Error(), Issues: issues, Error: err.Error()}
}

// answers returns what ParseMessage and ParseTransaction answer for body,
// as JSON, and its fingerprint (64 bits of its SHA-256, in hex).
func answers(body []byte) (string, string) {
	var all []byte
	for _, parse := range []func([]byte) (fhirmap.Parsed, error){fhirmap.ParseMessage, fhirmap.ParseTransaction} {
		// Each parse gets its own copy, so that neither can see what the
		// other might have done to the body.
		p, err := parse(bytes.Clone(body))
		b, _ := json.Marshal(outcomeOf(p, err))
		all = append(append(all, b...), '\n')
	}
	sum := sha256.Sum256(all)
	return string(all), hex.EncodeToString(sum[:8])
}

// recorded is the fingerprints file: of each known file by name, and of
// each broken variant of a sample, in the order mutants makes them.
type recorded struct {
	Files  map[string]string   `json:"files"`
	Broken map[string][]string `json:"broken"`
}

func loadRecorded(t *testing.T) recorded {
	t.Helper()
	r := recorded{Files: map[string]string{}, Broken: map[string][]string{}}
	b, err := os.ReadFile(fingerprintsFile)
	switch {
	case err != nil && *update:
		return r
	case err != nil:
		t.Fatalf("%v (run go test -update to record)", err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// saveRecorded rewrites the fingerprints file with edit applied (-update).
func saveRecorded(t *testing.T, edit func(*recorded)) {
	t.Helper()
	r := loadRecorded(t)
	edit(&r)
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fingerprintsFile, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// compare reports a parse whose fingerprint is not the recorded one.
func compare(t *testing.T, name string, body []byte, want string) string {
	t.Helper()
	got, sum := answers(body)
	switch {
	case *update:
	case want == "":
		t.Errorf("%s: no fingerprint recorded (run go test -update and review the change)", name)
	case want != sum:
		t.Errorf("%s: the parser answers differently from what was recorded:\n%s", name, got)
	}
	return sum
}

// knownFiles are every bundle the tests know: the samples, the BaRS
// examples and the invalid fixtures, and the shared BaRS examples the
// checkout has beside it (../shared/examples/bars); by name relative to
// testdata (shared ones prefixed "shared/"). Their fingerprints are
// recorded, so a checkout without them fails here, naming what is missing,
// rather than passing with fewer bundles checked.
func knownFiles(t testing.TB) map[string]string {
	files := map[string]string{}
	for _, pattern := range []string{
		filepath.Join(testdata, "*.json"),
		filepath.Join(testdata, "bars", "*.json"),
		filepath.Join(testdata, "invalid", "*.json"),
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range m {
			rel, _ := filepath.Rel(testdata, path)
			files[filepath.ToSlash(rel)] = path
		}
	}
	sharedDir := filepath.Join("..", "..", "..", "shared", "examples", "bars")
	shared, _ := filepath.Glob(filepath.Join(sharedDir, "*.json"))
	if len(shared) == 0 {
		abs, _ := filepath.Abs(sharedDir)
		t.Fatalf("no shared BaRS examples in %s: the shared folder must be checked out beside the repository "+
			"(their parse results are recorded in %s)", abs, fingerprintsFile)
	}
	for _, path := range shared {
		files["shared/"+filepath.Base(path)] = path
	}
	if len(files) < 15 {
		t.Fatalf("found only %d bundles", len(files))
	}
	return files
}

// TestParseAnswersAsRecorded holds the parser to the recorded results and
// issues for every bundle in the test data.
func TestParseAnswersAsRecorded(t *testing.T) {
	r := loadRecorded(t)
	files := knownFiles(t)
	seen := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body, err := os.ReadFile(files[name])
		if err != nil {
			t.Fatal(err)
		}
		seen[name] = compare(t, "file "+name, body, r.Files[name])
	}
	if *update {
		saveRecorded(t, func(r *recorded) { maps.Copy(r.Files, seen) })
	}
}

// TestParseAnswersAsRecordedForBrokenBundles breaks the samples of each
// kind of bundle one element at a time, every way a sender might (null,
// another JSON type, an unknown code, a key in another case, removed,
// wrapped in an array), and holds the parser to the recorded answer for
// each: the error paths are where a decoder most easily differs.
func TestParseAnswersAsRecordedForBrokenBundles(t *testing.T) {
	step := 1
	if testing.Short() || raceEnabled {
		step = 7
	}
	r := loadRecorded(t)
	n := 0
	seen := map[string][]string{}
	for _, name := range []string{"referral-1-line.json", "referral-transaction.json", "cancellation-revoked.json", "collection-1-line.json"} {
		doc := decodeAny(t, read(t, name))
		want := r.Broken[name]
		for i, m := range mutants(doc, nil) {
			n++
			if n%step != 0 && !*update {
				continue
			}
			body, err := json.Marshal(m.doc)
			if err != nil {
				t.Fatal(err)
			}
			w := ""
			if i < len(want) {
				w = want[i]
			}
			seen[name] = append(seen[name], compare(t, name+" with "+m.what, body, w))
		}
		if !*update && len(want) != len(mutants(doc, nil)) {
			t.Errorf("%s: %d variants recorded, %d made (run go test -update)", name, len(want), len(mutants(doc, nil)))
		}
	}
	if n < 5000 {
		t.Errorf("only %d variants", n)
	}
	if *update {
		saveRecorded(t, func(r *recorded) { r.Broken = seen })
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
