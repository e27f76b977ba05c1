package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/google/uuid"

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

// BenchmarkAcceptReferralOverHTTP measures the sender's view: POST a
// 3-line referral over loopback HTTP until the hub has committed it durably
// and answered, while the router delivers earlier ones to simulated partners.
func BenchmarkAcceptReferralOverHTTP(b *testing.B) {
	base, _, sims := startTestHub(b, io.Discard)
	template := mustRead(b, "../../testdata/fhir/referral-3-lines.json")
	const headerID = "8c9a8eab-aedc-5087-9533-41455fb980d2"
	if !bytes.Contains(template, []byte(headerID)) {
		b.Fatal("fixture changed: update the MessageHeader id this benchmark replaces")
	}
	b.ReportAllocs()
	for b.Loop() {
		body := bytes.ReplaceAll(template, []byte(headerID), []byte(uuid.NewString()))
		req, _ := http.NewRequest(http.MethodPost, base+"/fhir/$process-message", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("X-Request-ID", uuid.NewString())
		if err := sims.Creds.Authorise(req); err != nil {
			b.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}
