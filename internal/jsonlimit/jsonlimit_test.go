package jsonlimit

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		body string
		want error
	}{
		{"ordinary", `{"event":"order-status","data":{"status":"delivered","lines":[1,2,3]}}`, nil},
		{"deep", strings.Repeat("[", 65) + strings.Repeat("]", 65), ErrTooDeep},
		{"deep objects", strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65), ErrTooDeep},
		{"brackets inside strings do not count", `{"s":"` + strings.Repeat("[", 200) + `\"` + `"}`, nil},
		{"many values", "[" + strings.Repeat("1,", 100_001) + "1]", ErrTooManyValues},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check([]byte(c.body), 0, 0)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, c.want)
			}
		})
	}
	if err := Check([]byte(`[[[1]]]`), 2, 0); !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), "2 levels") {
		t.Fatalf("custom depth: %v", err)
	}
}

// checkByteByByte is the byte-at-a-time scan Check replaced: the reference
// it must agree with.
func checkByteByByte(body []byte, maxDepth, maxValues int) error {
	depth, values := 0, 0
	inString, escaped := false, false
	for _, c := range body {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			values++
			if depth > maxDepth {
				return &Error{Limit: maxDepth, Err: ErrTooDeep}
			}
		case '}', ']':
			depth--
		case ',':
			values++
		}
		if values > maxValues {
			return &Error{Limit: maxValues, Err: ErrTooManyValues}
		}
	}
	return nil
}

func FuzzCheckAgreesWithByteByByteScan(f *testing.F) {
	for _, s := range []string{`{"a":"b\\"[[[","c":[1,2]}`, `"\\\\"[[`, `["x\\\\\"[",[[1]]]`, `{"s":"unterminated [[[`, `[[[`, `"a"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, want := Check(body, 3, 5), checkByteByByte(body, 3, 5)
		if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
			t.Fatalf("Check(%q) = %v, the byte-by-byte scan says %v", body, got, want)
		}
	})
}

func BenchmarkCheckReferral(b *testing.B) {
	body, err := os.ReadFile("../../testdata/fhir/referral-3-lines.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := Check(body, 0, 0); err != nil {
			b.Fatal(err)
		}
	}
}
