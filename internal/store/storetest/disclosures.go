package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/store"
)

// FillRecord commits n disclosure entries, one per Commit, alternating two
// subjects and four referrals; exported for the engines' own tests too.
func FillRecord(t *testing.T, s store.Engine, n int) {
	t.Helper()
	at := time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		subj := []string{"sbj_a", "sbj_b"}[i%2]
		ref := []string{"r1", "r2", "r3", "r4"}[i%4]
		if err := s.Commit(context.Background(), store.Batch{Disclosures: []store.Disclosure{{
			At: at.Add(time.Duration(i) * time.Hour), ReferralID: ref, Recipient: "provider", Kind: "referral",
			Fields: []string{"person.name", "person.address"}, Purpose: "delivery", LawfulBasis: "Art 6(1)(e)",
			Outcome: store.OutcomeSent, Subject: subj,
		}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// Verify verifies s's disclosure record, failing t if it cannot be read.
func Verify(t *testing.T, s store.Engine) store.VerifyReport {
	t.Helper()
	rep, err := s.VerifyDisclosures(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func testDisclosureChainVerifiesWhenUntouched(t *testing.T, open func(t *testing.T) store.Engine) {
	s := open(t)
	defer s.Close()
	if rep := Verify(t, s); !rep.OK || rep.Entries != 0 {
		t.Fatalf("empty record: %+v", rep)
	}
	FillRecord(t, s, 5)
	// Several entries in one batch chain too.
	if err := s.Commit(context.Background(), store.Batch{Disclosures: []store.Disclosure{
		{ReferralID: "r9", Recipient: "provider", Outcome: store.OutcomeSent, Subject: "sbj_c"},
		{ReferralID: "r9", Recipient: "council-a", Outcome: store.OutcomeWithheld, Subject: "sbj_c"},
	}}); err != nil {
		t.Fatal(err)
	}
	rep := Verify(t, s)
	if !rep.OK || rep.Entries != 7 || len(rep.Head) != 64 {
		t.Fatalf("untouched record: %+v; want 7 entries verified", rep)
	}
}

func testDisclosuresBySubjectAcrossReferrals(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	FillRecord(t, s, 8)
	got, err := s.DisclosuresBySubject(ctx, "sbj_a")
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	refs := map[string]bool{}
	for _, d := range got {
		if d.Subject != "sbj_a" {
			t.Errorf("entry %d is about %q", d.ID, d.Subject)
		}
		ids = append(ids, d.ID)
		refs[d.ReferralID] = true
	}
	if len(ids) != 4 || ids[0] != 1 || ids[3] != 7 || !refs["r1"] || !refs["r3"] || len(refs) != 2 {
		t.Fatalf("subject a: ids %v referrals %v; want 1,3,5,7 across r1 and r3", ids, refs)
	}
	if got[0].Fields[1] != "person.address" || got[0].LawfulBasis != "Art 6(1)(e)" {
		t.Errorf("entry read back as %+v", got[0])
	}
	if none, err := s.DisclosuresBySubject(ctx, "sbj_nobody"); err != nil || len(none) != 0 {
		t.Errorf("unknown subject = %v, %v", none, err)
	}
	if _, err := s.DisclosuresBySubject(ctx, ""); err == nil {
		t.Error("an empty subject was looked up")
	}
}
