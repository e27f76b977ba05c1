package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store/sqlite"
	"github.com/iceshub/iceshub/internal/subject"
	"github.com/iceshub/iceshub/routes"
)

// TestRetentionRunOnDemoTraffic sends the sample referrals through a running
// hub, then runs 'retention run' at three moments: now (nothing is old),
// 31 days on (delivered payloads and idempotency records go, the
// disclosure record stays) and 7 years on (the record goes too, and still
// verifies). While the hub runs, 'retention run' is refused and removes
// nothing; it runs once the hub has stopped.
func TestRetentionRunOnDemoTraffic(t *testing.T) {
	t.Setenv(subject.EnvKey, "")
	ctx := context.Background()
	o := startOpsHub(t, opsHubConfig{})
	base, h, sims := o.base, o.hub, o.sims
	dir := h.Config().Store.DataDir
	files, _ := filepath.Glob("../../testdata/fhir/referral-*.json")
	entries := 0
	for _, f := range files {
		status, answer, err := sims.PostBundle(ctx, base, mustRead(t, f))
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %v\n%s", f, status, err, answer)
		}
		entries += len(waitOutcomes(t, h, demo.ReferralIDFrom(answer), 3))
	}
	// Wait until every message is acknowledged.
	topics := append([]string{intake.TopicReferralReceived}, routes.Topics([]string{"provider", "council-cwac", "council-ceast", "nhs-trust"})...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending int64
		for _, tp := range topics {
			n, err := h.Store().Pending(ctx, tp)
			if err != nil {
				t.Fatal(err)
			}
			pending += n
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages still pending", pending)
		}
		time.Sleep(10 * time.Millisecond)
	}

	var refused bytes.Buffer
	if code := run([]string{"retention", "run", "--data", dir, "--now", time.Now().AddDate(7, 0, 1).UTC().Format(time.RFC3339)}, io.Discard, &refused); code != 1 ||
		!strings.Contains(refused.String(), sqlite.LockFileName) || !strings.Contains(refused.String(), "stop the hub") {
		t.Fatalf("retention run with the hub running = %d, want 1 naming the lock\n%s", code, refused.String())
	}
	if err := o.stop(); err != nil {
		t.Fatal(err)
	}

	retention := func(now time.Time) string {
		t.Helper()
		var out, errs bytes.Buffer
		if code := run([]string{"retention", "run", "--data", dir, "--now", now.UTC().Format(time.RFC3339)}, &out, &errs); code != 0 {
			t.Fatalf("retention run exited %d: %s", code, errs.String())
		}
		return out.String()
	}
	total := regexp.MustCompile(`removed (\d+) messages in all, (\d+) idempotency records, (\d+) disclosure record entries`)
	counts := func(out string) [3]int {
		t.Helper()
		m := total.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("retention output lacks its totals:\n%s", out)
		}
		var c [3]int
		for i := range c {
			c[i], _ = strconv.Atoi(m[i+1])
		}
		return c
	}

	if c := counts(retention(time.Now())); c != [3]int{} {
		t.Errorf("today: removed %v, want nothing", c)
	}
	out := retention(time.Now().AddDate(0, 0, 31))
	c := counts(out)
	// A referral's copies: provider, NHS and (but for the one no council
	// covers) its council; the referral itself is cut as it is accepted and
	// never waits on a topic.
	if c[0] < 3*len(files)-1 || c[1] < len(files) || c[2] != 0 {
		t.Errorf("after 31 days removed %v, want every delivered message (%d referrals) and idempotency record, no disclosures:\n%s", c, len(files), out)
	}
	if !strings.Contains(out, "from "+routes.TopicDeliver("provider")) || !strings.Contains(out, "held messages and dead letters") {
		t.Errorf("output:\n%s", out)
	}
	if c := counts(retention(time.Now().AddDate(7, 0, 1))); c[2] != entries {
		t.Errorf("after 7 years removed %v, want all %d disclosure entries", c, entries)
	}
	var verify bytes.Buffer
	if code := run([]string{"audit", "verify", "--data", dir}, &verify, io.Discard); code != 0 || !strings.Contains(verify.String(), "after checkpoint") {
		t.Errorf("audit verify after retention: exit %d: %s", code, verify.String())
	}
	if code := run([]string{"retention", "run", "--now", "yesterday", "--data", dir}, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad --now: exit %d, want 2", code)
	}
}
