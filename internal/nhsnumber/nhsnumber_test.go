package nhsnumber

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{"9990000018", nil},
		{"9990000026", nil},
		{"9434765919", nil}, // the NHS's own published example
		{"9990000019", ErrCheckDigit},
		{"3478526985", ErrCheckDigit}, // the NHS number in the BaRS examples
		{"999000001", ErrLength},
		{"99900000188", ErrLength},
		{"99900a0018", ErrNotDigits},
		{"", ErrLength},
		// 999000014's weighted sum gives check digit 10, which no number can have.
		{"9990000140", ErrCheckDigit},
		{"999000014X", ErrNotDigits},
	}
	for _, c := range cases {
		if err := Check(c.in); !errors.Is(err, c.want) {
			t.Errorf("Check(%q) = %v, want %v", c.in, err, c.want)
		}
	}
}

func TestNormalise(t *testing.T) {
	if got := Normalise(" 999 000-0018 "); got != "9990000018" {
		t.Errorf("Normalise = %q", got)
	}
}
