//go:build race

package fhir_test

// raceEnabled is true when the tests run with the race detector, which
// makes the legacy parser too slow to hold every mutant to.
const raceEnabled = true
