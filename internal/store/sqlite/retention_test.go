package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/storetest"
	"zombiezen.com/go/sqlite"
)

func publishN(t *testing.T, s *SQLite, topic string, n int) {
	t.Helper()
	for i := range n {
		msg := message.NewMessage(string(rune('a'+i))+"-msg", []byte(`{"person":"someone"}`))
		if err := s.Commit(context.Background(), store.Batch{Messages: []store.TopicMessage{{Topic: topic, Message: msg}}}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPurgeMessagesRemovesOnlyAcknowledgedOldOnes(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	publishN(t, s, "deliver.provider", 4)
	publishN(t, s, "deliver.nobody", 2) // no consumer ever subscribed
	// Two consumer groups: one acknowledged 3 messages, the other 2.
	tamper(t, s, `INSERT INTO 'watermill_offsets_deliver.provider' (consumer_group, offset_acked, locked_until) VALUES ('a', 3, 0), ('b', 2, 0)`)

	// Nothing is old yet.
	got, err := s.PurgeMessages(ctx, time.Now().Add(-time.Hour))
	if err != nil || len(got) != 0 {
		t.Fatalf("recent messages purged: %v, %v", got, err)
	}
	got, err = s.PurgeMessages(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got["deliver.provider"] != 2 || len(got) != 1 {
		t.Fatalf("purged %v; want 2 from deliver.provider only (acknowledged by every group), none from deliver.nobody", got)
	}
	if n, _ := s.Pending(ctx, "deliver.provider"); n != 2 {
		t.Errorf("pending after purge = %d, want 2", n)
	}
	if n, _ := s.Pending(ctx, "deliver.nobody"); n != 2 {
		t.Errorf("unsubscribed topic pending = %d, want 2", n)
	}
	// The offset high-water mark survives: the next message gets offset 5.
	publishN(t, s, "deliver.provider", 1)
	var last int64
	if err := s.read(ctx, `SELECT MAX("offset") FROM 'watermill_deliver.provider'`, nil, func(st *sqlite.Stmt) error {
		last = st.ColumnInt64(0)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if last != 5 {
		t.Errorf("next offset = %d, want 5", last)
	}
	// Everything acknowledged is gone once all groups catch up.
	tamper(t, s, `UPDATE 'watermill_offsets_deliver.provider' SET offset_acked = 5`)
	got, _ = s.PurgeMessages(ctx, time.Now().Add(time.Hour))
	if got["deliver.provider"] != 3 {
		t.Errorf("second purge %v, want 3", got)
	}
}

func TestPurgeIdempotency(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	tamper(t, s, `INSERT INTO idempotency (key, response, created_at) VALUES ('old', '{}', ?), ('new', '{}', ?)`,
		ts(time.Now().AddDate(0, 0, -40)), ts(time.Now()))
	n, err := s.PurgeIdempotency(ctx, time.Now().AddDate(0, 0, -30))
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
}

func TestPruneInactiveSubjectsKeepsRecentlyActiveAndChain(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	day := func(y int, m time.Month) time.Time { return time.Date(y, m, 1, 9, 0, 0, 0, time.UTC) }
	for _, e := range []struct {
		subject string
		at      time.Time
	}{
		{"sbj_a", day(2010, 1)}, {"sbj_a", day(2010, 2)}, // inactive since 2010
		{"sbj_b", day(2010, 3)}, // active again in 2024
		{"sbj_c", day(2010, 4)}, // inactive, but after b's old entry
		{"sbj_b", day(2024, 1)},
	} {
		if err := s.Commit(ctx, store.Batch{Disclosures: []store.Disclosure{{At: e.at, ReferralID: "r", Recipient: "provider", Kind: "referral",
			Fields: []string{"person.name"}, Purpose: "p", LawfulBasis: "b", Outcome: store.OutcomeSent, Subject: e.subject}}}); err != nil {
			t.Fatal(err)
		}
	}
	cutoff := day(2026, 1).AddDate(-7, 0, 0)
	n, err := s.PruneInactiveSubjects(ctx, cutoff)
	if err != nil || n != 2 {
		t.Fatalf("removed %d, %v; want a's 2 entries", n, err)
	}
	if ds, _ := s.DisclosuresBySubject(ctx, "sbj_a"); len(ds) != 0 {
		t.Errorf("inactive subject kept: %v", ds)
	}
	if ds, _ := s.DisclosuresBySubject(ctx, "sbj_b"); len(ds) != 2 {
		t.Errorf("recently active subject lost entries: %v", ds)
	}
	if ds, _ := s.DisclosuresBySubject(ctx, "sbj_c"); len(ds) != 1 {
		t.Errorf("c's entry, behind b's, must wait: %v", ds)
	}
	// Nor is a's subject kept in the index of who the record names.
	var indexed []string
	if err := s.read(ctx, `SELECT subject FROM disclosure_subjects ORDER BY subject`, nil, func(st *sqlite.Stmt) error {
		indexed = append(indexed, st.ColumnText(0))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(indexed, ",") != "sbj_b,sbj_c" {
		t.Errorf("subjects indexed after pruning = %v, want sbj_b and sbj_c only", indexed)
	}
	if rep := storetest.Verify(t, s); !rep.OK || rep.Checkpoint != 2 || rep.Entries != 3 {
		t.Fatalf("after pruning: %+v", rep)
	}
	// Years later b is inactive too: everything goes, and the record still
	// verifies and grows.
	if n, err := s.PruneInactiveSubjects(ctx, day(2032, 1)); err != nil || n != 3 {
		t.Fatalf("second prune removed %d, %v; want 3", n, err)
	}
	storetest.FillRecord(t, s, 2)
	if rep := storetest.Verify(t, s); !rep.OK || rep.Checkpoint != 5 || rep.Entries != 2 {
		t.Fatalf("after second prune and new entries: %+v", rep)
	}
	// A broken record is never pruned.
	tamper(t, s, `UPDATE disclosures SET outcome = 'withheld' WHERE id = 6`)
	if _, err := s.PruneInactiveSubjects(ctx, day(2100, 1)); err == nil {
		t.Error("pruned a broken record")
	}
}
