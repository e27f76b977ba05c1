package fhir

import (
	"net/http"

	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// Limits on the shape of a request body, checked before any parsing so that
// a JSON bomb costs one linear scan. A FHIR referral bundle nests about 12
// deep and holds a few thousand values; the limits leave ample room.
const (
	MaxJSONDepth  = 64
	MaxJSONValues = 100_000
)

// checkJSONShape refuses a body nested deeper than MaxJSONDepth or holding
// more than MaxJSONValues arrays, objects and array elements. It does not
// validate JSON: the parser does that next.
func checkJSONShape(body []byte) error {
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
			if depth > MaxJSONDepth {
				return errorf(http.StatusBadRequest, fhirmap.IssueStructure, "Bundle", "the JSON is nested more than %d levels deep", MaxJSONDepth)
			}
		case '}', ']':
			depth--
		case ',':
			values++
		}
		if values > MaxJSONValues {
			return errorf(http.StatusRequestEntityTooLarge, issueTooLong, "Bundle", "the JSON holds more than %d values", MaxJSONValues)
		}
	}
	return nil
}
