package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/demo"
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
	j, err := demo.StartJourney(ctx, h, base, "../../testdata/fhir", sims, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	before := demo.Counts(sims.Accepted())
	want := map[string]int{}
	for id, n := range before {
		want[id] = n
	}
	for _, step := range demo.Steps() {
		got, err := j.Play(ctx, step, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for id, n := range step.Expect {
			want[id] += n
		}
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		// The date booked is a week from today (bookingDate), also written
		// out in the council's note.
		booked, err := time.Parse(time.DateOnly, j.Booked)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(j.Booked), []byte("<booked-date>"))
		b = bytes.ReplaceAll(b, []byte(booked.Format("Monday 2 January 2006")), []byte("<booked-date>"))
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
	if got := demo.Counts(sims.Accepted()); !equalCounts(got, want) {
		t.Errorf("partners received %v in all, want %v", got, want)
	}
	// Every refusal along the way would have been recorded.
	if rj, err := h.Store().Rejections(ctx); err != nil || len(rj) != 0 {
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

// TestCancellationWaitsForItsFailingOrderEndToEnd: the provider refuses
// referral A's order with 503 for a while; the NHS cancels A meanwhile and
// sends referral B. B's order is delivered while A's is still failing; once
// the provider recovers it receives A's order and only then A's
// cancellation, quoting the order's reference.
func TestCancellationWaitsForItsFailingOrderEndToEnd(t *testing.T) {
	base, h, sims := startTestHub(t, io.Discard)
	ctx := context.Background()
	var failing atomic.Bool
	failing.Store(true)
	const nhsNumberA = "9990000018" // the person of referral-1-line.json
	sims.Provider.Partner().FailWhen(func(path, _ string, body []byte) (int, string, bool) {
		return http.StatusServiceUnavailable, "1", failing.Load() && bytes.Contains(body, []byte(nhsNumberA))
	})
	post := func(file string) string {
		t.Helper()
		status, answer, err := sims.PostBundle(ctx, base, mustRead(t, filepath.Join("../../testdata/fhir", file)))
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %v\n%s", file, status, err, answer)
		}
		return demo.ReferralIDFrom(answer)
	}
	a := post("referral-1-line.json")
	attemptsOnA := func() int {
		n := 0
		for _, e := range sims.Provider.Journal() {
			if e.Status == http.StatusServiceUnavailable {
				n++
			}
		}
		return n
	}
	eventually(t, "the provider to refuse A's order", func() bool { return attemptsOnA() >= 1 })
	if cancelled := post("cancellation-revoked.json"); cancelled != a {
		t.Fatalf("the cancellation answered referral %s, want %s", cancelled, a)
	}
	b := post("referral-3-lines.json")
	journalFor := func(id string) []partnersim.Entry {
		var out []partnersim.Entry
		for _, e := range sims.Provider.Journal() {
			if e.Status < 300 && !e.Repeat && bytes.Contains(e.Body, []byte(id)) {
				out = append(out, e)
			}
		}
		return out
	}
	eventually(t, "B's order while A's keeps failing", func() bool { return len(journalFor(b)) == 1 })
	if got := journalFor(a); len(got) != 0 {
		t.Fatalf("the provider accepted %d requests about A while refusing its order", len(got))
	}
	// A's order and its cancellation wait, parked in A's lane, the order
	// first. (A's order may still be in its first attempt's retries when
	// B is delivered: queues hand out copies about other referrals
	// meanwhile.)
	var laneA []string
	eventually(t, "A's order parked in its lane", func() bool {
		parked, err := h.Store().ParkedDeliveries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		laneA = nil
		for _, p := range parked {
			if p.ReferralID == a && p.Partner == "provider" {
				laneA = append(laneA, p.Kind)
			}
		}
		return len(laneA) > 0
	})
	if laneA[0] != "referral" {
		t.Errorf("A's lane at the provider holds %v; want its order first", laneA)
	}

	failing.Store(false)
	eventually(t, "A's order and cancellation", func() bool { return len(journalFor(a)) == 2 })
	got := journalFor(a)
	if got[0].Path != "/orders" || !strings.HasSuffix(got[1].Path, "/cancellation") || got[0].Seq > got[1].Seq {
		t.Fatalf("A's requests in order: %s (seq %d), %s (seq %d); want the order, then its cancellation", got[0].Path, got[0].Seq, got[1].Path, got[1].Seq)
	}
	if want := "/orders/" + got[0].Reference + "/cancellation"; got[1].Path != want {
		t.Errorf("cancellation sent to %s, want %s (the order's reference)", got[1].Path, want)
	}
	eventually(t, "nothing left parked once both are delivered", func() bool {
		ps, err := h.Store().ParkedDeliveries(ctx)
		return err == nil && len(ps) == 0
	})
}
