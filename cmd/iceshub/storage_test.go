package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store/sqlite"
)

// TestStorageStaysBounded drives cycles of referrals through the hub (over
// HTTP, to the simulated partners) and applies the hub's own retention
// policy after each, as if its periods had passed, then compares the
// database file and its write-ahead log after N cycles and after 3N.
// Retention deletes acknowledged messages, idempotency records and the
// disclosure entries of people inactive for the period, and SQLite reuses
// the pages they held, so the file after 3N cycles stays near its size
// after N instead of tripling (it does triple without retention). The
// bounds are generous, so that they hold on any machine; what they catch is
// growth with traffic.
//
// The record of an order still open is kept too, so each cycle's orders are
// closed by the provider (order.cancelled) before retention runs.
func TestStorageStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a hundred and more referrals through the hub; skipped with -short")
	}
	// Ten cycles of five order.cancelled webhooks: a quick machine sends
	// them faster than the provider's built-in rate limit allows.
	o := startOpsHub(t, opsHubConfig{unlimited: true})
	template := referralTemplate(t)
	const perCycle, n = 5, 10
	ctx := context.Background()
	ret := o.hub.Config().Retention
	periods := time.Duration(ret.PayloadDays)*24*time.Hour + time.Duration(ret.DisclosureYears)*366*24*time.Hour + 24*time.Hour

	cycle := func() {
		ids := make([]string, 0, perCycle)
		for range perCycle {
			ids = append(ids, o.send(t, template))
		}
		for _, id := range ids {
			eventually(t, "every copy of a referral delivered (provider, council, NHS endpoint)", func() bool {
				return len(o.outcomes(t, id)) == 3
			})
		}
		// The provider closes each order, as orders are closed in time, so
		// that retention may remove the referral's record too; the status
		// goes to the council and the NHS endpoint.
		for _, id := range ids {
			rec, found, err := o.hub.Store().FindReferral(ctx, intake.Lookup{ReferralID: id})
			if err != nil || !found {
				t.Fatalf("referral %s: %v %v", id, found, err)
			}
			status, answer, err := o.sims.PostWebhook(ctx, o.base+provider.EventsPath, "provider", map[string]any{
				"eventId": uuid.NewString(), "type": "order.cancelled", "orderReference": rec.Refs.OrderReference,
				"occurredAt": time.Now().UTC().Format(time.RFC3339)})
			if err != nil || status != http.StatusAccepted {
				t.Fatalf("order.cancelled: %d %v\n%s", status, err, answer)
			}
		}
		for _, id := range ids {
			eventually(t, "the closing status delivered", func() bool {
				ds, err := o.hub.Store().Disclosures(ctx, id)
				return err == nil && len(ds) == 5
			})
		}
		if _, err := o.hub.Store().ApplyRetention(ctx, hub.RetentionPolicy(ret, time.Now().Add(periods))); err != nil {
			t.Fatal(err)
		}
	}
	size := func(suffix string) int64 {
		fi, err := os.Stat(filepath.Join(o.dir, sqlite.FileName+suffix))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}

	for range n {
		cycle()
	}
	dbN, walN := size(""), size("-wal")
	for range 2 * n {
		cycle()
	}
	db3N, wal3N := size(""), size("-wal")
	t.Logf("after %d referrals: file %d KiB, log %d KiB; after %d: file %d KiB, log %d KiB",
		n*perCycle, dbN>>10, walN>>10, 3*n*perCycle, db3N>>10, wal3N>>10)

	if limit := dbN + dbN/2; db3N > limit {
		t.Errorf("database file grew from %d to %d bytes between %d and %d cycles (limit %d): retention does not keep it bounded",
			dbN, db3N, n, 3*n, limit)
	}
	// The log is checkpointed into the file (retention truncates it) and
	// reused; it must not grow with traffic either. A checkpoint that
	// readers held up leaves it as large as journal_size_limit (8 MiB) and
	// what came since, never more with more traffic.
	if limit := max(walN+walN/2+1<<20, 12<<20); wal3N > int64(limit) {
		t.Errorf("write-ahead log grew from %d to %d bytes (limit %d)", walN, wal3N, limit)
	}
	eventually(t, "every queue to be empty after the last cycle", func() bool {
		qs, err := o.hub.Store().Queues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range qs {
			if q.Pending != 0 {
				return false
			}
		}
		return true
	})
}
