package provider

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/iceshub/iceshub/internal/model"
)

// BenchmarkOutboundEncode maps a provider's copy to its request, with the
// disclosure record of what it holds, and encodes the body: what the
// provider adapter does before HTTP.
func BenchmarkOutboundEncode(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("../../testdata/provider", "order-care-home-asap.json"))
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
		if _, err := json.Marshal(req.Body); err != nil {
			b.Fatal(err)
		}
	}
}
