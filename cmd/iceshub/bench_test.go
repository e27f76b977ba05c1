package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/iceshub/iceshub/cmd/internal/bench"
)

// TestBenchSmoke runs `iceshub bench` for a moment against the real binary so
// that the bench cannot rot. It asserts what the run must show, never how
// fast it was.
func TestBenchSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real hub process; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "iceshub")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, c := range []struct{ scenario, flow string }{
		{"steady", bench.FlowDefault}, {"outage", bench.FlowDefault}, {"backlog", bench.FlowDefault}, {"steady", bench.FlowF1},
	} {
		scenario := c.scenario
		t.Run(scenario+"-"+c.flow, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := []string{"bench", "--json", "--hub", bin, "--scenario", scenario, "--flow", c.flow, "--duration", "2s", "--outage", "500ms",
				"--senders", "2", "--fixtures", "../../testdata/fhir", "--drain", "90s", "--sample", "200ms"}
			if scenario == "backlog" {
				args = append(args, "--preload", "200")
			}
			if code := run(args, &out, &errs); code != 0 {
				t.Fatalf("bench exit %d: %s", code, errs.String())
			}
			var rep bench.Report
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("bench JSON: %v\n%s", err, out.String())
			}
			if rep.Accepted == 0 || rep.Undelivered != 0 || rep.Delivered["provider"] < rep.Accepted || rep.Delivered["council"] < rep.Accepted {
				t.Errorf("accepted %d, delivered %v, undelivered %d: every accepted referral must reach provider and council",
					rep.Accepted, rep.Delivered, rep.Undelivered)
			}
			if nhs := rep.Delivered["nhs"]; rep.Flow != c.flow || (c.flow == bench.FlowF1) != (nhs == 0) {
				t.Errorf("flow %q reported, %d delivered to the requester's NHS endpoint; want flow %q, and deliveries there only in the default flow",
					rep.Flow, nhs, c.flow)
			}
			if scenario == "backlog" && (rep.Preloaded != 200 || rep.BacklogAtEnd == 0) {
				t.Errorf("backlog: preloaded %d, backlog at the end %d; want 200 preloaded and the send's copies pending", rep.Preloaded, rep.BacklogAtEnd)
			}
			if rep.EndToEnd.N != int(rep.Accepted) || rep.Sender.N != int(rep.Accepted) || rep.HubPeakRSSMB <= 0 || rep.DatabaseMB <= 0 {
				t.Errorf("incomplete report: %+v", rep)
			}
		})
	}
}
