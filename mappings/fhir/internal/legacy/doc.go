// Package legacy is mappings/fhir's parser as it was before issue 7 made it
// fast: a frozen copy of its reading, checking and mapping of inbound
// bundles, which decoded with encoding/json in several passes. It is the
// oracle of the differential tests and fuzz target in mappings/fhir, which
// hold the fast parser to exactly the same results and issues for every
// input. Nothing else may import it, and it must not change: a fix to the
// parser belongs in mappings/fhir, with the differential test taught why
// the two now differ.
package legacy
