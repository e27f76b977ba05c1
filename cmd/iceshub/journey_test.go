package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

var (
	uuidRE      = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timestampRE = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})`)
	demoCorrRE  = regexp.MustCompile(`demo-[0-9a-f]{8}`)
)

// normalise replaces what differs from run to run (ids, times, correlation
// ids) so that the rest can be compared with a golden file.
func normalise(b []byte) []byte {
	b = uuidRE.ReplaceAll(b, []byte("<uuid>"))
	b = timestampRE.ReplaceAll(b, []byte("<time>"))
	return demoCorrRE.ReplaceAll(b, []byte("demo-<id>"))
}

// TestReturnFlowsEndToEnd plays every return flow (F2 to F8) from HTTP in
// (FHIR from the NHS, signed webhooks from the provider and the council) to
// the simulated partners out, and compares exactly what each partner
// received with testdata/e2e/<step>.json (go test -run ReturnFlows -update
// rewrites them after a reviewed change).
func TestReturnFlowsEndToEnd(t *testing.T) {
	base, h, sims := startTestHub(t, io.Discard)
	ctx := context.Background()
	j, err := startJourney(ctx, h, base, "../../testdata/fhir", sims, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	before := counts(sims.accepted())
	want := map[string]int{}
	for id, n := range before {
		want[id] = n
	}
	for _, step := range journeySteps() {
		got, err := j.play(ctx, step, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for id, n := range step.expect {
			want[id] += n
		}
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		b = append(normalise(b), '\n')
		path := filepath.Join("../../testdata/e2e", step.Slug+".json")
		if *updatePolicy {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		golden, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%s: %v (run with -update to create it)", step.Slug, err)
		}
		if !bytes.Equal(golden, b) {
			t.Errorf("%s (%s): partners received\n%s\nwant (%s)\n%s", step.Slug, step.What, b, path, golden)
		}
	}
	// Nothing else reached anyone: no event echoed to its reporter, no copy
	// to a partner whose route does not name it.
	if got := counts(sims.accepted()); !equalCounts(got, want) {
		t.Errorf("partners received %v in all, want %v", got, want)
	}
	// Every refusal along the way would have been recorded.
	if rj, err := h.store.Rejections(ctx); err != nil || len(rj) != 0 {
		t.Errorf("rejected events %+v, %v", rj, err)
	}
}

func equalCounts(a, b map[string]int) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
