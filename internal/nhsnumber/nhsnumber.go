// Package nhsnumber checks NHS numbers.
package nhsnumber

import (
	"errors"
	"strings"
)

// System is the FHIR identifier system of the NHS number.
const System = "https://fhir.nhs.uk/Id/nhs-number"

// Errors returned by Check; callers can tell them apart with errors.Is.
var (
	ErrLength     = errors.New("NHS number must be 10 digits")
	ErrNotDigits  = errors.New("NHS number must contain only digits")
	ErrCheckDigit = errors.New("NHS number check digit is wrong (modulus 11)")
)

// Normalise removes the spaces and hyphens people put in NHS numbers
// ("943 476 5919").
func Normalise(s string) string {
	return separators.Replace(strings.TrimSpace(s))
}

// separators is built once: building a Replacer costs more than using it,
// and every inbound referral is normalised.
var separators = strings.NewReplacer(" ", "", "-", "")

// Check reports whether s (already normalised) is a valid NHS number: ten
// digits whose last is the modulus 11 check digit of the first nine, weighted
// 10 down to 2. A remainder giving 11 means check digit 0; 10 means the number
// can never be valid.
func Check(s string) error {
	if len(s) != 10 {
		return ErrLength
	}
	sum := 0
	for i := 0; i < 10; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return ErrNotDigits
		}
		if i < 9 {
			sum += int(c-'0') * (10 - i)
		}
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	if check == 10 || check != int(s[9]-'0') {
		return ErrCheckDigit
	}
	return nil
}
