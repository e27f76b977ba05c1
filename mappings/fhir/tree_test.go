package fhir

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
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
	for _, s := range []string{`"a\u00e9\"b"`, `-0.5e+3`, `[1,{"a":[]},"x"]`, `{"a":1,"a":2}`, `01`, `1.`, `"\x"`, `[1,]`, `{"a" 1}`, ` null `, `tru`, "\"\t\""} {
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
