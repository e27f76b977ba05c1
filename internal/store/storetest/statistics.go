package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
)

// testStatisticsCountedWithTheirStep: a referral is counted once, with its
// acceptance (not again when resent); an event's counts are written with
// it, and not at all when it is refused (its status change lost a race),
// nor when it is resent.
func testStatisticsCountedWithTheirStep(t *testing.T, open func(t *testing.T) store.Engine) {
	s := open(t)
	defer s.Close()
	accepted := time.Date(2026, 1, 31, 9, 0, 0, 0, time.UTC)
	a, b := statReferral("ref-a", accepted), statReferral("ref-b", accepted)
	acceptStat(t, s, "request:a", a)
	if !acceptStat(t, s, "request:a", a) {
		t.Fatal("a resent referral was not a duplicate")
	}
	acceptStat(t, s, "request:b", b)
	key := stats.Key{Month: "2026-01", Council: "council-a", Priority: "urgent", Setting: "home", Class: "12 36"}
	want := []stats.Count{{Key: key, Measure: stats.Referrals, Days: stats.NoDays, N: 2}}
	if got := statRows(t, s); !slices.Equal(got, want) {
		t.Fatalf("after two referrals (one resent): %+v, want %+v", got, want)
	}

	delivered := accepted.Add(30 * time.Hour) // February, 2 days
	if err := eventStat(s, "event:1", a, model.KindOrderStatus, model.StatusOrdered, model.StatusDelivered, delivered); err != nil {
		t.Fatal(err)
	}
	if err := eventStat(s, "event:1", a, model.KindOrderStatus, model.StatusOrdered, model.StatusDelivered, delivered); err != nil {
		t.Fatal(err) // resent: the first answer, nothing written
	}
	// b is still ordered: an event that expects it scheduled loses the
	// compare-and-set, and counts nothing.
	if err := eventStat(s, "event:2", b, model.KindOrderStatus, model.StatusScheduled, model.StatusDelivered, delivered); !errors.Is(err, intake.ErrConflict) {
		t.Fatalf("stale event: %v, want ErrConflict", err)
	}
	if err := eventStat(s, "event:3", b, model.KindSafeguarding, model.StatusOrdered, "", delivered); err != nil {
		t.Fatal(err)
	}
	feb := key
	feb.Month = "2026-02"
	want = append(want, stats.Count{Key: feb, Measure: stats.Delivered, Days: 2, N: 1},
		stats.Count{Key: feb, Measure: stats.SafeguardingConcerns, Days: stats.NoDays, N: 1})
	if got := statRows(t, s); !slices.Equal(got, want) {
		t.Fatalf("after the events: %+v, want %+v", got, want)
	}
	if got, _ := s.Statistics(context.Background(), "2026-02", "2026-02"); len(got) != 2 {
		t.Errorf("February alone: %+v", got)
	}
}

// testRetentionKeepsTheStatistics: once retention has removed closed
// orders' records and the idempotency records of their months, the
// statistics of those months are unchanged.
func testRetentionKeepsTheStatistics(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	accepted := time.Now().Add(-time.Hour)
	a, b := statReferral("ref-a", accepted), statReferral("ref-b", accepted)
	acceptStat(t, s, "request:a", a)
	acceptStat(t, s, "request:b", b)
	if err := eventStat(s, "event:a", a, model.KindOrderStatus, model.StatusOrdered, model.StatusDelivered, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := eventStat(s, "event:a2", a, model.KindOrderStatus, model.StatusDelivered, model.StatusCollected, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := eventStat(s, "event:b", b, model.KindCancellation, model.StatusOrdered, model.StatusCancelled, time.Now()); err != nil {
		t.Fatal(err)
	}
	before := statRows(t, s)
	if len(before) != 4 {
		t.Fatalf("statistics before retention: %+v", before)
	}
	rep, err := s.ApplyRetention(ctx, store.RetentionPolicy{MessagesBefore: time.Now().Add(time.Hour), SubjectsInactiveSince: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Referrals != 2 || rep.IdempotencyKeys != 5 {
		t.Fatalf("retention removed %+v; want both closed referrals and every idempotency record", rep)
	}
	if after := statRows(t, s); !slices.Equal(after, before) {
		t.Errorf("statistics after retention: %+v, want %+v", after, before)
	}
}

// statReferral is a fictional urgent referral for a home, of a hoist
// (ISO 9999 12 36), accepted at accepted.
func statReferral(id string, accepted time.Time) *intake.Record {
	return &intake.Record{Referral: model.Referral{ID: id, ReceivedAt: accepted, Source: model.Source{ServiceRequestID: "sr-" + id},
		Person:   model.Person{NHSNumber: "9990000026", Name: model.HumanName{Family: "Testperson"}, Address: model.Address{Postcode: "CH1 1AA"}},
		Priority: model.PriorityUrgent, DeliverySetting: model.DeliverySetting{Kind: model.SettingHome},
		Equipment: []model.EquipmentItem{{Code: "12 36 03", Quantity: 1}}},
		Refs: model.References{Council: "council-a"}, Status: model.StatusOrdered}
}

func acceptStat(t *testing.T, s store.Engine, key string, rec *intake.Record) bool {
	t.Helper()
	_, dup, err := s.AcceptOnce(context.Background(), []string{key}, intake.Response{Status: 200}, "referral.received",
		message.NewMessage(rec.Referral.ID, []byte("{}")), rec)
	if err != nil {
		t.Fatal(err)
	}
	return dup
}

// eventStat commits an event that moves rec's order from from to to, with
// what it adds to the statistics, as intake.Events does.
func eventStat(s store.Engine, key string, rec *intake.Record, kind model.Kind, from, to model.OrderStatus, at time.Time) error {
	ev := model.Event{Kind: kind, ReceivedAt: at, Status: to}
	_, _, err := s.AcceptEventOnce(context.Background(), intake.EventCommit{Keys: []string{key}, Topic: "event.received",
		Message: message.NewMessage(key, []byte("{}")), Change: intake.StatusChange{ReferralID: rec.Referral.ID, From: from, To: to},
		Stats: stats.ForEvent(&rec.Referral, rec.Refs.Council, &ev, from, to)})
	return err
}

func statRows(t *testing.T, s store.Engine) []stats.Count {
	t.Helper()
	rows, err := s.Statistics(context.Background(), "0000-01", "9999-12")
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// testBatchStatsAndPublishedKeys: what a batch adds to the statistics is
// written with it (an order placed, with its receipt), and nothing when
// the batch fails; retention deletes old idempotency keys but keeps those
// of the statistics published to commissioners, so that a month is never
// published twice.
func testBatchStatsAndPublishedKeys(t *testing.T, open func(t *testing.T) store.Engine) {
	s := open(t)
	defer s.Close()
	ctx := context.Background()
	key := stats.Key{Month: "2026-03", Council: "council-a", Priority: "routine", Class: stats.UnknownClass}
	placed := []stats.Increment{{Key: key, Measure: stats.OrdersPlaced, Days: stats.NoDays}}
	if err := s.Commit(ctx, store.Batch{Stats: placed, Delivered: []store.Delivered{{At: time.Now(), IdempotencyKey: "k-1",
		Recipient: "provider", Kind: string(model.KindReferral), ReferralID: "ref-1", PartnerReference: "ORD-1", StatusCode: 201}}}); err != nil {
		t.Fatal(err)
	}
	want := []stats.Count{{Key: key, Measure: stats.OrdersPlaced, Days: stats.NoDays, N: 1}}
	if got := statRows(t, s); !slices.Equal(got, want) {
		t.Fatalf("after an order placed: %+v, want %+v", got, want)
	}

	for _, k := range []string{"request:old", store.StatisticsKeyPrefix + "commissioner-icb:2026-02"} {
		if _, dup, err := s.AcceptWithBatch(ctx, []string{k}, intake.Response{Status: 202}, nil, store.Batch{}); err != nil || dup {
			t.Fatalf("accept %s: dup %v, %v", k, dup, err)
		}
	}
	if _, err := s.ApplyRetention(ctx, store.RetentionPolicy{MessagesBefore: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for k, kept := range map[string]bool{"request:old": false, store.StatisticsKeyPrefix + "commissioner-icb:2026-02": true} {
		_, dup, err := s.AcceptWithBatch(ctx, []string{k}, intake.Response{Status: 202}, nil, store.Batch{})
		if err != nil || dup != kept {
			t.Errorf("after retention, %s: seen %v (%v), want %v", k, dup, err, kept)
		}
	}
}
