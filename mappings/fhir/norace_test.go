//go:build !race

package fhir_test

const raceEnabled = false
