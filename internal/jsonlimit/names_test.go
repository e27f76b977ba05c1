package jsonlimit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestFindDuplicate(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"m%d":%d,`, i, i)
		}
		b.WriteString(extra + `"last":0}`)
		return b.String()
	}
	cases := []struct {
		name, body    string
		object, name2 string
		found         bool
	}{
		{name: "none", body: `{"event":"x","data":{"status":"delivered","lines":[{"a":1},{"a":2}]}}`},
		{name: "same name in sibling objects", body: `[{"a":1},{"a":2}]`},
		{name: "same name at two levels", body: `{"a":{"a":1}}`},
		{name: "a name repeated as a value", body: `{"a":"a","b":["a","a"]}`},
		{name: "top level", body: `{"type":"x","type":"y"}`, found: true, name2: "type"},
		{name: "nested", body: `{"data":{"lines":[{"code":"a"},{"code":"b","qty":1,"code":"c"}]}}`, found: true, object: "data.lines[1]", name2: "code"},
		{name: "escaped", body: `{"data":{"st\u0061tus":"a","status":"b"}}`, found: true, object: "data", name2: "status"},
		{name: "case", body: `{"Status":"a","status":"b"}`, found: true, name2: "status"},
		{name: "after a closed object", body: `{"a":{"b":1,"c":[1,{"d":2}]},"e":1,"a":2}`, found: true, name2: "a"},
		{name: "strings holding braces and commas", body: `{"a":"{\"a\":1,","b":"]","a":0}`, found: true, name2: "a"},
		{name: "unsafe names are not shown", body: `{"9434765919":{"x y":1,"x y":2}}`, found: true, object: "?", name2: "?"},
		{name: "top-level array", body: `[0,{"a":1,"a":2}]`, found: true, object: "[1]", name2: "a"},
		{name: "many members", body: many(200, "")},
		{name: "many members, one repeated", body: many(200, `"m7":1,`), found: true, name2: "m7"},
		{name: "many members, one repeated in another case", body: many(200, `"M150":1,`), found: true, name2: "M150"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !json.Valid([]byte(c.body)) {
				t.Fatalf("the case is not valid JSON")
			}
			d := FindDuplicate([]byte(c.body))
			if (d != nil) != c.found {
				t.Fatalf("FindDuplicate = %v, want found %v", d, c.found)
			}
			if d == nil {
				return
			}
			if d.Object != c.object || d.Member != c.name2 {
				t.Fatalf("FindDuplicate = %q %q, want %q %q", d.Object, d.Member, c.object, c.name2)
			}
			if !errors.Is(d, ErrDuplicateName) {
				t.Fatalf("%v does not unwrap to ErrDuplicateName", d)
			}
		})
	}
	if got := (&DuplicateError{Object: "data.lines[1]", Member: "code"}).Field(); got != "data.lines[1].code" {
		t.Fatalf("Field = %q", got)
	}
}

func TestShownName(t *testing.T) {
	for name, want := range map[string]string{"status": "status", "_birthDate": "_birthDate", "x-y": "x-y", "$ref": "$ref",
		"": "?", "9434765919": "?", "a b": "?", "Jane": "Jane", "é": "?", strings.Repeat("a", 65): "?"} {
		if got := ShownName([]byte(name)); got != want {
			t.Errorf("ShownName(%q) = %q, want %q", name, got, want)
		}
	}
}

// hasDuplicate is a reference: encoding/json's token stream, each object's
// names kept folded.
func hasDuplicate(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	type level struct {
		object, key bool
		names       map[string]bool
	}
	var stack []*level
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *level
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if s, ok := tok.(string); ok && top != nil && top.object && top.key {
			k := FoldName([]byte(s))
			if top.names[k] {
				return true
			}
			top.names[k] = true
			top.key = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &level{object: true, key: true, names: map[string]bool{}})
			continue
		case json.Delim('['):
			stack = append(stack, &level{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true // a value was read: a name comes next
		}
	}
}

func FuzzFindDuplicate(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":1},"c":[{"b":1,"B":2}]}`, `{"a\"":1,"a\u0022":2}`, `[{"k":"{\"k\":1,"},{"k":1}]`, `{"K":1,"\u212a":2}`, `{"x":[1,2,{"y":{}}],"y":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d := FindDuplicate(body) // never panics, valid JSON or not
		if !json.Valid(body) {
			return
		}
		if want := hasDuplicate(body); (d != nil) != want {
			t.Fatalf("FindDuplicate(%q) = %v, the token stream says %v", body, d, want)
		}
	})
}

func BenchmarkFindDuplicateEvent(b *testing.B) {
	body := []byte(`{"eventId":"evt-1","type":"order.failed-delivery","orderReference":"ORD-1","occurredAt":"2026-01-02T10:00:00Z","reason":{"code":"no-access","text":"nobody home"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if FindDuplicate(body) != nil {
			b.Fatal("duplicate")
		}
	}
}
