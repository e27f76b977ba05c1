package fhir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to both parsers, seeded with every fixture.
// Whatever the input, a parser must return either a referral or a
// *ValidationError that says whether it is unparseable (400) or invalid
// (422), with at least one error issue: never panic, never another error.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"*.json", "bars/*.json", "invalid/*.json"} {
		files, _ := filepath.Glob(filepath.Join("../../testdata/fhir", pattern))
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"resourceType":"Bundle","type":"message","entry":[{}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func([]byte) (Parsed, error){ParseMessage, ParseTransaction} {
			_, err := parse(body)
			if err == nil {
				continue
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, not *ValidationError: %v", err, err)
			}
			if !errors.Is(err, ErrNotBundle) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error is neither ErrNotBundle nor ErrInvalid: %v", err)
			}
			hasError := false
			for _, i := range ve.Issues {
				hasError = hasError || i.IsError()
			}
			if !hasError {
				t.Fatalf("refusal without an error issue: %+v", ve.Issues)
			}
		}
	})
}
