package intake

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
)

// laggingStore knows the referral only from the after-th lookup on, as when
// the provider's answer to the order is committed a moment after the
// provider reports on it.
type laggingStore struct {
	mu       sync.Mutex
	after    int
	lookups  int
	accepted []EventCommit
	rejected []Rejection
}

func (s *laggingStore) FindReferral(_ context.Context, _ Lookup) (Record, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	if s.after == 0 || s.lookups < s.after {
		return Record{}, false, nil
	}
	r := model.Referral{ID: "r1"}
	return Record{Referral: r, Status: model.StatusOrdered, OrderSentTo: "provider"}, true, nil
}

func (s *laggingStore) AcceptEventOnce(_ context.Context, c EventCommit) (Response, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accepted = append(s.accepted, c)
	return c.Response, false, nil
}

func (s *laggingStore) RecordRejection(_ context.Context, r Rejection) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected = append(s.rejected, r)
	return nil
}

func (s *laggingStore) StoredResponse(context.Context, []string) (Response, bool, error) {
	return Response{}, false, nil
}

func scheduled(find Lookup) EventSubmission {
	return EventSubmission{
		Keys: []string{"provider:e1"}, Find: find, Sender: Sender{Partner: "provider", Kind: SenderProvider}, Response: Response{Status: 202},
		Event: model.Event{Kind: model.KindOrderStatus, From: "provider", Status: model.StatusScheduled, OccurredAt: time.Now()},
	}
}

// An event naming an order reference the hub has not recorded yet waits for
// it, and is accepted once it is recorded.
func TestEventWaitsForAnOrderReferenceAboutToBeRecorded(t *testing.T) {
	st := &laggingStore{after: 4}
	ev, err := NewEvents(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ev.AcceptEvent(context.Background(), scheduled(Lookup{OrderReference: "ORD-1"}))
	if err != nil || out.Response.Status != 202 || len(st.accepted) != 1 || st.accepted[0].Change.ReferralID != "r1" {
		t.Fatalf("AcceptEvent = %+v, %v (accepted %d); want it accepted once the reference is known", out, err, len(st.accepted))
	}
	if len(st.rejected) != 0 || st.lookups != 4 {
		t.Fatalf("rejected %d, lookups %d; want none rejected after 4 lookups", len(st.rejected), st.lookups)
	}
}

// A reference that never turns up is refused as unknown once the wait is
// over; a reference the hub made itself (the referral id) is not waited for.
func TestEventForAnUnknownReferenceIsRefusedAfterTheWait(t *testing.T) {
	st := &laggingStore{}
	ev, err := NewEvents(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.WithReceiptWait(60 * time.Millisecond)
	_, err = ev.AcceptEvent(context.Background(), scheduled(Lookup{OrderReference: "ORD-unknown"}))
	if !errors.Is(err, ErrUnknownReferral) || len(st.rejected) != 1 || st.lookups < 2 {
		t.Fatalf("err %v, rejected %d, lookups %d; want ErrUnknownReferral, recorded, after looking more than once", err, len(st.rejected), st.lookups)
	}
	st.lookups = 0
	if _, err := ev.AcceptEvent(context.Background(), scheduled(Lookup{ReferralID: "r-unknown"})); !errors.Is(err, ErrUnknownReferral) || st.lookups != 1 {
		t.Fatalf("by referral id: err %v after %d lookups; want ErrUnknownReferral after one", err, st.lookups)
	}
}

// An accepted event carries what it adds to the statistics to the store,
// to be written in its transaction: here one order scheduled, in the
// month the hub accepted the event.
func TestEventCarriesItsStatistics(t *testing.T) {
	st := &laggingStore{after: 1}
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	ev, err := NewEvents(st, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.AcceptEvent(context.Background(), scheduled(Lookup{ReferralID: "r1"})); err != nil {
		t.Fatal(err)
	}
	want := stats.Increment{Key: stats.Key{Month: "2026-03", Class: stats.UnknownClass}, Measure: stats.Scheduled, Days: stats.NoDays}
	if len(st.accepted) != 1 || len(st.accepted[0].Stats) != 1 || st.accepted[0].Stats[0] != want {
		t.Fatalf("accepted %+v, want the statistics %+v", st.accepted, want)
	}
}
