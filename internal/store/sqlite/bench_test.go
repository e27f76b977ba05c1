package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

// BenchmarkCommitDisclosure appends one disclosure entry (hash-chained) in
// one durable commit, as every delivery outcome does. Run with -cpu to see
// group commit: parallel callers share fsyncs.
func BenchmarkCommitDisclosure(b *testing.B) {
	s := openTemp(b, b.TempDir())
	defer s.Close()
	d := store.Disclosure{At: time.Now(), ReferralID: "ref-1", Recipient: "provider", Kind: "referral",
		Fields: []string{"person.name", "equipment"}, Purpose: "deliver", LawfulBasis: "Art 6(1)(e)", Outcome: store.OutcomeSent, Subject: "sbj_x"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Commit(context.Background(), store.Batch{Disclosures: []store.Disclosure{d}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDeliveryStateAfterACommit is the delivery step's one read, as it
// runs under load: another caller has committed since the last read, so
// the reader's page cache starts empty. Only the read is timed.
func BenchmarkDeliveryStateAfterACommit(b *testing.B) {
	ctx := context.Background()
	s := openTemp(b, b.TempDir())
	defer s.Close()
	const referrals = 2000
	ids := acceptReferrals(b, s, referrals, nil)
	for _, id := range ids {
		if err := s.Commit(ctx, store.Batch{Refs: []store.RefUpdate{{ReferralID: id, OrderReference: "ORD-" + id, OrderSentTo: "provider"},
			{ReferralID: id, Case: &store.CaseRef{Council: "council-a", Reference: "CASE-" + id, Purpose: store.CaseForOrder}}}}); err != nil {
			b.Fatal(err)
		}
	}
	for _, partner := range []string{"provider", "council-a"} {
		b.Run(partner, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				if err := s.Probe(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				id := ids[i%referrals]
				casePurpose := ""
				if partner == "council-a" {
					casePurpose = store.CaseForOrder
				}
				if _, err := s.DeliveryState(ctx, "key-"+id, partner, id, id, casePurpose); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDeliveryStatesAfterACommit is the delivery step's read as the
// queues make it under load: after each commit a group of deliveries (16
// here) read their state at once. Reported per read.
func BenchmarkDeliveryStatesAfterACommit(b *testing.B) {
	ctx := context.Background()
	s := openTemp(b, b.TempDir())
	defer s.Close()
	const referrals, group = 2000, 16
	ids := acceptReferrals(b, s, referrals, nil)
	b.ResetTimer()
	for i := 0; i < b.N; i += group {
		b.StopTimer()
		if err := s.Probe(ctx); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		for j := range group {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := ids[(i+j)%referrals]
				if _, err := s.DeliveryState(ctx, "key-"+id, "provider", id, id, ""); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
	}
}

// BenchmarkAcceptOnce accepts new referrals, each with its record, in one
// durable commit per group of callers, as intake does on the hot path.
// Parallel callers share fsyncs (group commit); run with -cpu to vary them.
func BenchmarkAcceptOnce(b *testing.B) {
	ctx := context.Background()
	s := openTemp(b, b.TempDir())
	defer s.Close()
	var n atomic.Int64
	councils := []string{"council-a", "council-b", "council-c"}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			id := fmt.Sprintf("ref-%08d", i)
			ref := model.Referral{ID: id, Source: model.Source{ServiceRequestID: "sr-" + id}, ReceivedAt: time.Now(),
				Priority: model.PriorityRoutine, DeliverySetting: model.DeliverySetting{Kind: model.SettingHome},
				Equipment: []model.EquipmentItem{{Code: "12 22 18", Quantity: 1}}}
			rec := &intake.Record{Referral: ref, Refs: model.References{Council: councils[i%3]}, Status: model.StatusOrdered}
			if _, _, err := s.AcceptOnce(ctx, []string{"request:" + id}, intake.Response{Status: 200}, "referral.received",
				message.NewMessage(id, []byte("{}")), rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkQueueHandOut measures the queue's own work per message: read
// from the messages this process committed, handed out, acknowledged, its
// offset saved; b.N messages over 100 referrals, 16 in flight.
func BenchmarkQueueHandOut(b *testing.B) {
	s, err := Open(Options{DataDir: b.TempDir(), PollInterval: time.Millisecond, InFlight: 16})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.EnsureTopics("deliver.bench"); err != nil {
		b.Fatal(err)
	}
	payload := bytes.Repeat([]byte("x"), 2048)
	for i := 0; i < b.N; i += 500 {
		var batch store.Batch
		for j := i; j < min(i+500, b.N); j++ {
			m := message.NewMessage(fmt.Sprint(j), payload)
			m.Metadata.Set(intake.MetaReferralID, fmt.Sprint(j%100))
			batch.Messages = append(batch.Messages, store.TopicMessage{Topic: "deliver.bench", Message: m})
		}
		if err := s.Commit(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	sub, _ := s.NewSubscriber()
	defer sub.Close()
	b.ResetTimer()
	msgs, err := sub.Subscribe(context.Background(), "deliver.bench")
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		(<-msgs).Ack()
	}
}

// BenchmarkFindReferral is the read an event's fan-out makes of its
// referral (FindReferral by id): the sealed record decoded, the council's
// case looked up. Only the read is timed.
func BenchmarkFindReferral(b *testing.B) {
	ctx := context.Background()
	s := openTemp(b, b.TempDir())
	defer s.Close()
	const referrals = 2000
	ids := acceptReferrals(b, s, referrals, func(rec *intake.Record) {
		rec.Referral.Person.NHSNumber = "9990000018"
		rec.Referral.Equipment = []model.EquipmentItem{{Code: "HOIST-1", Quantity: 1}}
		rec.Refs.Council = "council-a"
	})
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, found, err := s.FindReferral(ctx, intake.Lookup{ReferralID: ids[i%referrals]}); err != nil || !found {
			b.Fatal(found, err)
		}
	}
}

// acceptReferrals records n referrals, ref-00000 onwards, each with its
// ServiceRequest id and status ordered, and what fill adds to its record
// (nil: nothing); it returns their ids. Not timed.
func acceptReferrals(b *testing.B, s *SQLite, n int, fill func(*intake.Record)) []string {
	b.Helper()
	b.StopTimer()
	defer b.StartTimer()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("ref-%05d", i)
		rec := intake.Record{Referral: model.Referral{ID: ids[i], Source: model.Source{ServiceRequestID: "sr-" + ids[i]}}, Status: model.StatusOrdered}
		if fill != nil {
			fill(&rec)
		}
		if _, _, err := s.AcceptOnce(context.Background(), []string{"request:" + ids[i]}, intake.Response{Status: 200}, "referral.received",
			message.NewMessage(ids[i], []byte("{}")), &rec); err != nil {
			b.Fatal(err)
		}
	}
	return ids
}
