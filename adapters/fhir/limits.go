package fhir

import (
	"errors"
	"net/http"

	"github.com/iceshub/iceshub/internal/jsonlimit"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// Limits on the shape of a request body, checked before any parsing so that
// a JSON bomb costs one linear scan (internal/jsonlimit). A FHIR referral
// bundle nests about 12 deep and holds a few thousand values; the limits
// leave ample room.
const (
	MaxJSONDepth  = jsonlimit.DefaultMaxDepth
	MaxJSONValues = jsonlimit.DefaultMaxValues
)

// checkJSONShape refuses a body nested deeper than MaxJSONDepth (400) or
// holding more than MaxJSONValues arrays, objects and array elements (413).
// It does not validate JSON: the parser does that next.
func checkJSONShape(body []byte) error {
	err := jsonlimit.Check(body, MaxJSONDepth, MaxJSONValues)
	switch {
	case errors.Is(err, jsonlimit.ErrTooDeep):
		return errorf(http.StatusBadRequest, fhirmap.IssueStructure, "Bundle", "the JSON is nested more than %d levels deep", MaxJSONDepth)
	case err != nil:
		return errorf(http.StatusRequestEntityTooLarge, issueTooLong, "Bundle", "the JSON holds more than %d values", MaxJSONValues)
	}
	return nil
}
