//go:build race

package fhir_test

// raceEnabled is true when the tests run with the race detector, which
// makes checking every broken variant of the samples too slow for CI.
const raceEnabled = true
