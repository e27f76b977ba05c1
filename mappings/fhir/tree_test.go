package fhir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/iceshub/iceshub/internal/jsonlimit"
)

// FuzzTreeValid holds the tree to encoding/json's idea of valid JSON, and
// its strings and numbers to what encoding/json reads from them.
func FuzzTreeValid(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/fhir/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`"a\u00e9\"b"`, `-0.5e+3`, `[1,{"a":[]},"x"]`, `{"a":1,"a":2}`, `{"a":{"b":1,"B":2}}`, `[{"k":1},{"k":2,"\u006b":3}]`, `01`, `1.`, `"\x"`, `[1,]`, `{"a" 1}`, ` null `, `tru`, "\"\t\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !utf8.Valid(body) {
			return
		}
		tr, ok := parseTree(body)
		if ok != json.Valid(body) {
			t.Fatalf("tree says valid %v, encoding/json %v", ok, !ok)
		}
		if !ok {
			return
		}
		defer tr.release()
		// The tree finds a repeated member name exactly when jsonlimit's
		// scan, the webhooks' detector, does: one rule at both edges.
		expr, name, dup := tr.duplicate("")
		d := jsonlimit.FindDuplicate(body)
		if dup != (d != nil) {
			t.Fatalf("the tree finds a repeated name %v, jsonlimit %v", dup, d)
		}
		if dup && (strings.TrimPrefix(expr, ".") != d.Object || name != d.Member) {
			t.Fatalf("the tree finds %q repeated in %q, jsonlimit %q in %q", name, expr, d.Member, d.Object)
		}
		for i := range tr.nodes {
			n := int32(i)
			switch tr.nodes[i].kind {
			case kindString:
				var s string
				if err := json.Unmarshal(tr.raw(n), &s); err != nil || s != tr.str(n) {
					t.Fatalf("string %q read as %q, encoding/json %q (%v)", tr.raw(n), tr.str(n), s, err)
				}
			case kindNumber:
				var x json.Number
				if err := json.Unmarshal(tr.raw(n), &x); err != nil {
					t.Fatalf("number %q: %v", tr.raw(n), err)
				}
			}
		}
	})
}

func TestTreeDepthAsEncodingJSON(t *testing.T) {
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		body := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		tr, ok := parseTree(body)
		if ok != json.Valid(body) {
			t.Errorf("depth %d: tree says valid %v, encoding/json %v", depth, ok, !ok)
		}
		if ok {
			tr.release()
		}
	}
}

// BenchmarkParseTree reads the 20-line referral into a tree: the JSON pass
// of the parse, repeated member names found as it goes.
func BenchmarkParseTree(b *testing.B) {
	body, err := os.ReadFile("../../testdata/fhir/referral-20-lines.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		tr, ok := parseTree(body)
		if !ok {
			b.Fatal("not valid")
		}
		if _, _, dup := tr.duplicate("Bundle"); dup {
			b.Fatal("a repeated name")
		}
		tr.release()
	}
}
