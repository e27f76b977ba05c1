package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/cmd/internal/bench"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
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

// TestBenchSmokeOnPostgres runs `iceshub bench --backend postgres` with two
// replicas, one of them killed twice, and cancellations: nothing accepted
// is lost, no cancellation overtakes its order, each replica delivers, and
// the run's database is dropped after it.
func TestBenchSmokeOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real hub processes; skipped with -short")
	}
	server := os.Getenv(pgtest.EnvURL)
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: the PostgreSQL tests must run in CI", pgtest.EnvURL)
		}
		t.Skipf("PostgreSQL tests skipped: %s is not set", pgtest.EnvURL)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "iceshub")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out, errs bytes.Buffer
	args := []string{"bench", "--json", "--hub", bin, "--backend", "postgres", "--replicas", "2", "--postgres-url", server,
		"--scenario", "failover", "--lease", "3s", "--cancel-every", "3", "--duration", "3s", "--rate", "40",
		"--senders", "2", "--fixtures", "../../testdata/fhir", "--drain", "90s", "--sample", "200ms"}
	if code := run(args, &out, &errs); code != 0 {
		t.Fatalf("bench exit %d: %s", code, errs.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("bench JSON: %v\n%s", err, out.String())
	}
	if rep.Accepted == 0 || rep.Lost != 0 || rep.CancellationsAccepted == 0 || rep.Backend != "postgres" || rep.Replicas != 2 || rep.LeaseSeconds != 3 {
		t.Errorf("accepted %d, lost %d, cancellations %d, backend %s x %d, lease %gs", rep.Accepted, rep.Lost, rep.CancellationsAccepted, rep.Backend, rep.Replicas, rep.LeaseSeconds)
	}
	for p, n := range rep.OrderViolations {
		if n != 0 || rep.OrderChecked[p] == 0 {
			t.Errorf("%s: %d order violations of %d pairs", p, n, rep.OrderChecked[p])
		}
	}
	if len(rep.PerReplica) != 2 || rep.PerReplica[1].Lives != 3 || len(rep.Events) != 4 {
		t.Fatalf("replicas %+v, events %+v: want 2 replicas, the second with 3 lives, and 2 kills and 2 starts", rep.PerReplica, rep.Events)
	}
	for _, r := range rep.PerReplica {
		if r.Delivered == 0 || r.CPUSeconds <= 0 {
			t.Errorf("replica %+v: delivered nothing or spent no CPU", r)
		}
	}
	conn, err := pgx.Connect(context.Background(), server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", rep.Database).Scan(&n); err != nil || n != 0 || rep.Database == "" {
		t.Errorf("database %q: %d left after the run (%v); want it dropped", rep.Database, n, err)
	}
}
