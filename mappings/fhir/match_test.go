package fhir

import (
	"regexp"
	"testing"
)

// The regexps the matchers in match.go replace.
var (
	relativeRefRE    = regexp.MustCompile(`^([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$`)
	absoluteTypeIDRE = regexp.MustCompile(`^https?://.+/([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})$`)
	fhirIDRE         = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	odsCodeRE        = regexp.MustCompile(`^[A-Z0-9]{3,10}$`)
	fhirDateRE       = regexp.MustCompile(`^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$`)
	fhirInstantRE    = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)
)

func FuzzMatchersAsRegexps(f *testing.F) {
	for _, s := range []string{
		"Patient/123", "Patient/123/_history/2", "Patient/1/_history/", "P/1", "patient/1", "Patient/", "Patient/a/b",
		"https://example.org/fhir/Patient/123", "http://x/Patient/1", "https:///Patient/1", "http://\n/Patient/1", "https://a\nb/Patient/1",
		"https://a/b/Patient/1/_history/2", "ABC12", "ab", "A1B2C3D4E5F", "2024", "2024-02", "2024-13", "2024-02-31", "2024-02-00", "2024-1-01",
		"2024-02-03T04:05:06Z", "2024-02-03T04:05:06.789+01:00", "2024-02-03T04:05:06.+01:00", "2024-02-03T04:05:06", "2024-02-03T04:05:06+0100",
		"0123456789012345678901234567890123456789012345678901234567890123", "01234567890123456789012345678901234567890123456789012345678901234",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		capture := func(re *regexp.Regexp) (string, bool) {
			if m := re.FindStringSubmatch(s); m != nil {
				return m[1], true
			}
			return "", false
		}
		if got, ok := relativeTypeID(s); true {
			if want, wok := capture(relativeRefRE); got != want || ok != wok {
				t.Errorf("relativeTypeID(%q) = %q, %v; regexp %q, %v", s, got, ok, want, wok)
			}
		}
		if got, ok := absoluteTypeID(s); true {
			if want, wok := capture(absoluteTypeIDRE); got != want || ok != wok {
				t.Errorf("absoluteTypeID(%q) = %q, %v; regexp %q, %v", s, got, ok, want, wok)
			}
		}
		for _, c := range []struct {
			name string
			got  bool
			re   *regexp.Regexp
		}{
			{"isID", isID(s), fhirIDRE}, {"isODSCode", isODSCode(s), odsCodeRE},
			{"isFHIRDate", isFHIRDate(s), fhirDateRE}, {"isFHIRInstant", isFHIRInstant(s), fhirInstantRE},
		} {
			if want := c.re.MatchString(s); c.got != want {
				t.Errorf("%s(%q) = %v; regexp %v", c.name, s, c.got, want)
			}
		}
	})
}
