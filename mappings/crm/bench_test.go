package crm

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/iceshub/iceshub/internal/model"
)

// BenchmarkCaseEncode maps a council's copy to its case request and encodes
// it: the council's outbound hot path before HTTP.
func BenchmarkCaseEncode(b *testing.B) {
	raw, err := os.ReadFile("../../testdata/crm/case-default-route.json")
	if err != nil {
		b.Fatal(err)
	}
	var d model.Delivery
	if err := json.Unmarshal(raw, &d); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		req, err := Outbound(d)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(req); err != nil {
			b.Fatal(err)
		}
	}
}
