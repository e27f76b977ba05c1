package store

import (
	"context"
	"testing"
	"time"
)

// BenchmarkCommitDisclosure appends one disclosure entry (hash-chained) in
// one durable commit, as every delivery outcome does. Run with -cpu to see
// group commit: parallel callers share fsyncs.
func BenchmarkCommitDisclosure(b *testing.B) {
	s := openTemp(b, b.TempDir())
	defer s.Close()
	d := Disclosure{At: time.Now(), ReferralID: "ref-1", Recipient: "provider", Kind: "referral",
		Fields: []string{"person.name", "equipment"}, Purpose: "deliver", LawfulBasis: "Art 6(1)(e)", Outcome: OutcomeSent, Subject: "sbj_x"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Commit(context.Background(), Batch{Disclosures: []Disclosure{d}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
