package routes_test

import (
	"context"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/subject"
)

var testSubjectKey, _ = subject.NewKey([]byte(strings.Repeat("s", subject.MinKeyBytes)))

// TestDisclosuresCarryTheSubjectNotTheNHSNumber: every entry, sent or
// withheld, names the person by the keyed hash of the full referral's NHS
// number, and a lookup by subject finds exactly that person's entries across
// referrals.
func TestDisclosuresCarryTheSubjectNotTheNHSNumber(t *testing.T) {
	ctx := context.Background()
	e := start(t, &fakePartner{}, &fakePartner{})
	e.accept(t, referral("r1", "CH1 4AA"))  // provider and council: sent
	e.accept(t, referral("r2", "LS10 4YU")) // provider sent, council withheld
	other := referral("r3", "CH1 4AA")
	other.Person.NHSNumber = "9990000026"
	e.accept(t, other)
	waitFor(t, "six outcomes", func() bool {
		n := 0
		for _, id := range []string{"r1", "r2", "r3"} {
			ds, _ := e.store.Disclosures(ctx, id)
			n += len(ds)
		}
		return n == 6
	})

	ada := testSubjectKey.Of("9990000018")
	ds, err := e.store.DisclosuresBySubject(ctx, ada)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, d := range ds {
		got[d.ReferralID+" "+d.Recipient] = d.Outcome
	}
	want := map[string]string{"r1 provider": store.OutcomeSent, "r1 council-a": store.OutcomeSent,
		"r2 provider": store.OutcomeSent, "r2 council": store.OutcomeWithheld}
	if len(got) != len(want) || len(ds) != len(want) {
		t.Fatalf("entries about the subject: %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	for _, id := range []string{"r1", "r2", "r3"} {
		all, _ := e.store.Disclosures(ctx, id)
		for _, d := range all {
			if d.Subject == "" || strings.Contains(d.Subject, "999000") {
				t.Errorf("entry %d subject %q: want a keyed hash, never the number", d.ID, d.Subject)
			}
		}
	}
	if rep, err := e.store.VerifyDisclosures(ctx); err != nil || !rep.OK || rep.Entries != 6 {
		t.Errorf("verify = %+v, %v", rep, err)
	}
}
