package fhir

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParseMessage parses, validates and maps referral bundles of 1, 3
// and 20 equipment lines: the inbound hot path before storage.
func BenchmarkParseMessage(b *testing.B) {
	for _, name := range []string{"referral-1-line.json", "referral-3-lines.json", "referral-20-lines.json"} {
		body, err := os.ReadFile(filepath.Join("../../testdata/fhir", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := ParseMessage(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
