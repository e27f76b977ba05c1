package fhir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/iceshub/iceshub/internal/jsonlimit"
)

// FuzzParse feeds arbitrary bytes to both parsers, seeded with every fixture
// (referrals, amendments, cancellations and collection requests).
// Whatever the input, a parser must return either a referral, a
// cancellation or a collection request that names the referral it is
// about, or a *ValidationError that says whether it is unparseable (400) or
// invalid (422), with at least one error issue: never panic, never another
// error.
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
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PUT","url":"ServiceRequest/a"},"resource":{"resourceType":"ServiceRequest","id":"a","status":"revoked","intent":"order","subject":{"reference":"Patient/p"}}},{"request":{"method":"PUT","url":"Patient/p"},"resource":{"resourceType":"Patient","id":"p"}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"ServiceRequest"},"resource":{"resourceType":"ServiceRequest","status":"active","intent":"order","code":{"coding":[{"system":"` + RequestKindSystem + `","code":"collection"}]},"basedOn":[{"reference":"ServiceRequest/a"}],"reasonCode":[{"coding":[{"system":"` + CollectionReasonSystem + `","code":"died"}]}],"subject":{"reference":"Patient/p"}}},{"request":{"method":"PUT","url":"Patient/p"},"resource":{"resourceType":"Patient","id":"p"}}]}`))
	// Repeated member names, at the top, in a resource, in an element the
	// hub does not read, and in another case: refused (400).
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","type":"message","entry":[]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"PUT","url":"ServiceRequest/a"},"resource":{"resourceType":"ServiceRequest","id":"a","status":"active","status":"revoked","intent":"order","subject":{"reference":"Patient/p"}}},{"request":{"method":"PUT","url":"Patient/p"},"resource":{"resourceType":"Patient","id":"p","identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990000018","Value":"9990000026"}]}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","type":"message","entry":[{"resource":{"resourceType":"Basic","note":{"a":1,"a\u0000":2,"\u0061":3}}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, parse := range []func([]byte) (Parsed, error){ParseMessage, ParseTransaction} {
			p, err := parse(body)
			if err == nil {
				switch p.Kind {
				case "referral":
					if p.Change != nil {
						t.Fatalf("a referral with an event: %+v", p.Change)
					}
				case "cancellation", "collection":
					if p.Change == nil || p.Change.Kind != p.Kind || p.Change.Status == "" {
						t.Fatalf("%s without its event: %+v", p.Kind, p.Change)
					}
					if p.Target.ServiceRequestID == "" && p.Target.ReferralID == "" {
						t.Fatalf("%s that names no referral", p.Kind)
					}
				default:
					t.Fatalf("accepted with kind %q", p.Kind)
				}
				if d := jsonlimit.FindDuplicate(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))); d != nil {
					t.Fatalf("accepted a body that repeats a member name: %v", d)
				}
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
