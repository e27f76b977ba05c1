package fhir

import "strings"

// Hand-written matchers of the FHIR formats the parser checks on every
// referral: a regexp costs about a microsecond a match, and a typical
// bundle is matched dozens of times. match_test.go holds each to the
// regexp it replaces.

// absoluteTypeID returns the Type/id at the end of an absolute fullUrl
// ("https://example.org/fhir/Patient/123"): what
// ^https?://.+/([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})$ captures.
func absoluteTypeID(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return "", false
		}
	}
	slash := strings.LastIndexByte(rest, '/')
	if slash < 0 || !isID(rest[slash+1:]) {
		return "", false
	}
	typeAt := strings.LastIndexByte(rest[:slash], '/')
	if typeAt < 1 || !isTypeName(rest[typeAt+1:slash]) || strings.IndexByte(rest[:typeAt], '\n') >= 0 {
		return "", false
	}
	return rest[typeAt+1:], true
}

// relativeTypeID returns the Type/id of a FHIR relative reference, which
// may name a version: what
// ^([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$
// captures first.
func relativeTypeID(s string) (string, bool) {
	typ, rest, ok := strings.Cut(s, "/")
	if !ok || !isTypeName(typ) {
		return "", false
	}
	id, version, versioned := strings.Cut(rest, "/")
	if !isID(id) {
		return "", false
	}
	if versioned {
		v, ok := strings.CutPrefix(version, "_history/")
		if !ok || !isID(v) {
			return "", false
		}
	}
	return s[:len(typ)+1+len(id)], true
}

// isTypeName matches [A-Z][A-Za-z]+, the shape of a resource type name.
func isTypeName(s string) bool {
	if len(s) < 2 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// isID matches ^[A-Za-z0-9\-.]{1,64}$, a FHIR id.
func isID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isODSCode matches ^[A-Z0-9]{3,10}$.
func isODSCode(s string) bool {
	if len(s) < 3 || len(s) > 10 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isFHIRDate matches
// ^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$, the FHIR
// date type: YYYY, YYYY-MM or YYYY-MM-DD.
func isFHIRDate(s string) bool {
	switch len(s) {
	case 4, 7, 10:
	default:
		return false
	}
	if !digits(s[:4]) {
		return false
	}
	if len(s) == 4 {
		return true
	}
	if s[4] != '-' || !digits(s[5:7]) || !between(s[5:7], "01", "12") {
		return false
	}
	if len(s) == 7 {
		return true
	}
	return s[7] == '-' && digits(s[8:10]) && between(s[8:10], "01", "31")
}

// isFHIRInstant matches
// ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$,
// a full date and time with a zone.
func isFHIRInstant(s string) bool {
	if len(s) < 20 || !digits(s[0:4]) || s[4] != '-' || !digits(s[5:7]) || s[7] != '-' || !digits(s[8:10]) ||
		s[10] != 'T' || !digits(s[11:13]) || s[13] != ':' || !digits(s[14:16]) || s[16] != ':' || !digits(s[17:19]) {
		return false
	}
	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
		return true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-'):
		return digits(rest[1:3]) && rest[3] == ':' && digits(rest[4:6])
	}
	return false
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// between compares two-digit strings.
func between(s, lo, hi string) bool { return lo <= s && s <= hi }
