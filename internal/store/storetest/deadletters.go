package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

func deliverTopic(partner string) string { return "deliver." + partner }

// commitDeadLetter records one dead letter of a delivery to partner and
// returns its id.
func commitDeadLetter(t *testing.T, s store.Engine, partner, key string, payload []byte) int64 {
	t.Helper()
	if payload == nil {
		d := model.Delivery{Kind: model.KindReferral, Recipient: partner, IdempotencyKey: key,
			Referral: model.Referral{ID: "ref-" + key, Source: model.Source{CorrelationID: "corr-" + key}}}
		var err error
		if payload, err = json.Marshal(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(context.Background(), store.Batch{DeadLetters: []store.DeadLetter{{
		Recipient: partner, Kind: "referral", ReferralID: "ref-" + key, IdempotencyKey: key, StatusCode: 422,
		PartnerAnswer: `{"code":"invalid-order"}`, Error: "refused", Payload: payload,
	}}}); err != nil {
		t.Fatal(err)
	}
	dls, err := s.DeadLetters(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dls[len(dls)-1].ID
}

func testDeadLetterShowDiscardKeepsEvidence(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	id := commitDeadLetter(t, s, "provider", "k1", nil)

	d, err := s.DeadLetter(ctx, id)
	if err != nil || d.ID != id || d.StatusCode != 422 || len(d.Payload) == 0 || d.Resolution != nil {
		t.Fatalf("DeadLetter = %+v, %v", d, err)
	}
	if _, err := s.DeadLetter(ctx, id+100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	if err := s.DiscardDeadLetter(ctx, id, "cli:op", "  "); !errors.Is(err, store.ErrReasonRequired) {
		t.Errorf("blank reason: %v, want ErrReasonRequired", err)
	}
	if err := s.DiscardDeadLetter(ctx, id, "", "why"); !errors.Is(err, store.ErrByRequired) {
		t.Errorf("no one: %v, want ErrByRequired", err)
	}
	if err := s.DiscardDeadLetter(ctx, id+100, "cli:op", "why"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
	if err := s.DiscardDeadLetter(ctx, id, "cli:op", "test order, never real"); err != nil {
		t.Fatal(err)
	}
	if err := s.DiscardDeadLetter(ctx, id, "cli:op", "again"); !errors.Is(err, store.ErrResolved) {
		t.Errorf("second discard: %v, want ErrResolved", err)
	}
	if _, err := s.ReplayDeadLetter(ctx, id, store.Replay{By: "cli:op", Topic: deliverTopic}); !errors.Is(err, store.ErrResolved) {
		t.Errorf("replay of a discarded one: %v, want ErrResolved", err)
	}
	d, err = s.DeadLetter(ctx, id)
	if err != nil || len(d.Payload) == 0 || d.Resolution == nil || d.Resolution.Action != store.ActionDiscarded ||
		d.Resolution.By != "cli:op" || d.Resolution.Reason != "test order, never real" || d.Resolution.At.IsZero() {
		t.Fatalf("after discard = %+v %+v, %v; want the evidence kept and the decision recorded", d, d.Resolution, err)
	}
	counts, err := s.DeadLetterCounts(ctx)
	if err != nil || len(counts) != 1 || counts[0].Total != 1 || counts[0].Open != 0 {
		t.Errorf("counts = %+v, %v", counts, err)
	}
}

func testReplayPublishesSameKeyOnce(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	id := commitDeadLetter(t, s, "provider", "k2", nil)

	if _, err := s.ReplayDeadLetter(ctx, id, store.Replay{By: "op", Topic: deliverTopic, Recut: func(d model.Delivery) (model.Delivery, error) {
		d.IdempotencyKey = "other"
		return d, nil
	}}); !errors.Is(err, store.ErrNotReplayable) {
		t.Errorf("a re-cut that changes the key: %v, want ErrNotReplayable", err)
	}
	if n, _ := s.Pending(ctx, deliverTopic("provider")); n != 0 {
		t.Fatalf("a refused replay published %d messages", n)
	}

	recut := false
	d, err := s.ReplayDeadLetter(ctx, id, store.Replay{By: "op", Reason: "fixed", Topic: deliverTopic, Recut: func(d model.Delivery) (model.Delivery, error) {
		recut = true
		d.Fields = []string{"person.name"}
		return d, nil
	}})
	if err != nil || !recut || d.IdempotencyKey != "k2" {
		t.Fatalf("replay = %+v, %v (recut %v)", d, err, recut)
	}
	if n, _ := s.Pending(ctx, deliverTopic("provider")); n != 1 {
		t.Fatalf("pending after replay = %d, want 1", n)
	}
	if _, err := s.ReplayDeadLetter(ctx, id, store.Replay{By: "op", Topic: deliverTopic}); !errors.Is(err, store.ErrResolved) {
		t.Errorf("second replay: %v, want ErrResolved", err)
	}
	if n, _ := s.Pending(ctx, deliverTopic("provider")); n != 1 {
		t.Fatalf("pending after a refused second replay = %d, want 1", n)
	}

	// The published message is the (re-cut) delivery, same key, with its
	// metadata.
	sub, err := s.NewSubscriber()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	subCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(subCtx, deliverTopic("provider"))
	if err != nil {
		t.Fatal(err)
	}
	var msg *message.Message
	select {
	case msg = <-msgs:
	case <-subCtx.Done():
		t.Fatal("no replayed message")
	}
	msg.Ack()
	var got model.Delivery
	if err := json.Unmarshal(msg.Payload, &got); err != nil || got.IdempotencyKey != "k2" || len(got.Fields) != 1 {
		t.Errorf("replayed payload = %s, %v", msg.Payload, err)
	}
	if msg.UUID != "k2" || msg.Metadata.Get(store.MetaReplayOf) == "" || msg.Metadata.Get("referral_id") != "ref-k2" {
		t.Errorf("replayed message %s metadata %v", msg.UUID, msg.Metadata)
	}
}

func testReplayRefusesWhatIsNotADelivery(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	id := commitDeadLetter(t, s, "provider", "k3", []byte("not json"))
	if _, err := s.ReplayDeadLetter(ctx, id, store.Replay{By: "op", Topic: deliverTopic}); !errors.Is(err, store.ErrNotReplayable) {
		t.Errorf("undecodable payload: %v, want ErrNotReplayable", err)
	}
	if _, err := s.ReplayDeadLetter(ctx, id, store.Replay{Topic: deliverTopic}); !errors.Is(err, store.ErrByRequired) {
		t.Errorf("no one: %v, want ErrByRequired", err)
	}
	// It can still be discarded.
	if err := s.DiscardDeadLetter(ctx, id, "op", "undecodable"); err != nil {
		t.Fatal(err)
	}
}

func testQueuesAndProbe(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := openWithTopics(t, open, "deliver.a", "deliver.b")
	before := time.Now().Add(-time.Second)
	for i := range 3 {
		if err := s.Commit(ctx, store.Batch{Messages: []store.TopicMessage{{Topic: "deliver.a", Message: message.NewMessage(string(rune('a'+i)), []byte("{}"))}}}); err != nil {
			t.Fatal(err)
		}
	}
	qs, err := s.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.QueueStat{}
	for _, q := range qs {
		got[q.Topic] = q
	}
	if a := got["deliver.a"]; a.Pending != 3 || a.OldestPending.Before(before) || a.OldestPending.After(time.Now()) {
		t.Errorf("deliver.a = %+v", a)
	}
	if b, ok := got["deliver.b"]; !ok || b.Pending != 0 || !b.OldestPending.IsZero() {
		t.Errorf("deliver.b = %+v, %v", b, ok)
	}
	// Nothing is parked: each partner with a delivery queue reads 0.
	for _, topic := range []string{"parked.a", "parked.b"} {
		if p, ok := got[topic]; !ok || p.Pending != 0 {
			t.Errorf("%s = %+v, %v; want present and 0", topic, p, ok)
		}
	}
	if at, ok, err := s.OldestPending(ctx, "deliver.a"); err != nil || !ok || !at.Equal(got["deliver.a"].OldestPending) {
		t.Errorf("OldestPending = %v, %v, %v", at, ok, err)
	}
	if _, ok, err := s.OldestPending(ctx, "deliver.b"); err != nil || ok {
		t.Errorf("OldestPending of an empty topic = %v, %v", ok, err)
	}
	if err := s.Probe(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Probe(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("probe of a closed store: %v, want ErrClosed", err)
	}
}
