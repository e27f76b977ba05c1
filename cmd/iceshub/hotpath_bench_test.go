package main

import (
	"testing"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// BenchmarkParseValidateMapCut is the hub's hot path for one typical
// referral (3 equipment lines), short of storage and HTTP: parse and
// validate the FHIR bundle, map it to the canonical referral, and cut it
// for every recipient of the built-in routes (issue 7's "under 100 µs on
// one core" target).
func BenchmarkParseValidateMapCut(b *testing.B) {
	body := mustRead(b, "../../testdata/fhir/referral-3-lines.json")
	cfg, err := config.Default()
	if err != nil {
		b.Fatal(err)
	}
	var referralRoutes []config.Route
	for _, r := range cfg.Routes {
		if r.Message == string(model.KindReferral) {
			referralRoutes = append(referralRoutes, r)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := fhirmap.ParseMessage(body)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range referralRoutes {
			if _, err := minimise.Apply(&p.Referral, r.Rules(), minimise.Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
