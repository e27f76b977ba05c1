package jsonlimit

import (
	"errors"
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
