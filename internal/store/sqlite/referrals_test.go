package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

func acceptReferral(t *testing.T, s *SQLite, id, serviceRequest string) {
	t.Helper()
	ref := model.Referral{ID: id, Source: model.Source{ServiceRequestID: serviceRequest}, Requester: model.Requester{OrganisationODS: "Y9Z01"},
		Person: model.Person{NHSNumber: "9990000018"}}
	if _, _, err := s.AcceptOnce(context.Background(), []string{"request:" + id}, intake.Response{Status: 200}, "referral.received",
		message.NewMessage(id, []byte("{}")), &intake.Record{Referral: ref, Status: model.StatusOrdered}); err != nil {
		t.Fatal(err)
	}
}

// Every partner's reference finds the referral it was given for.
func TestCrossReferenceFindsTheReferralByAnyReference(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	acceptReferral(t, s, "ref-1", "sr-1")
	acceptReferral(t, s, "ref-2", "sr-2")
	if err := s.Commit(ctx, store.Batch{Refs: []store.RefUpdate{
		{ReferralID: "ref-1", Council: "council-a"},
		{ReferralID: "ref-1", OrderReference: "ORD-1", OrderSentTo: "provider"},
		{ReferralID: "ref-1", Case: &store.CaseRef{Council: "council-a", Reference: "CASE-1", Purpose: store.CaseForOrder}},
		{ReferralID: "ref-2", Case: &store.CaseRef{Council: "council-b", Reference: "CASE-1", Purpose: store.CaseForOrder}},
		{ReferralID: "ref-1", TaskID: "task-1"},
	}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		l    intake.Lookup
		want string
	}{
		{intake.Lookup{ReferralID: "ref-1"}, "ref-1"},
		{intake.Lookup{ServiceRequestID: "sr-2"}, "ref-2"},
		{intake.Lookup{OrderReference: "ORD-1"}, "ref-1"},
		{intake.Lookup{CaseReference: "CASE-1", Council: "council-a"}, "ref-1"},
		{intake.Lookup{CaseReference: "CASE-1", Council: "council-b"}, "ref-2"},
		{intake.Lookup{OrderReference: "ORD-404"}, ""},
		{intake.Lookup{CaseReference: "CASE-1", Council: "council-c"}, ""},
	} {
		rec, found, err := s.FindReferral(ctx, tc.l)
		if err != nil {
			t.Fatalf("%s: %v", tc.l, err)
		}
		if got := rec.Referral.ID; found != (tc.want != "") || got != tc.want {
			t.Errorf("%s: found %v %q, want %q", tc.l, found, got, tc.want)
		}
	}
	rec, _, _ := s.FindReferral(ctx, intake.Lookup{ReferralID: "ref-1"})
	want := model.References{ServiceRequestID: "sr-1", TaskID: "task-1", OrderReference: "ORD-1", CaseReference: "CASE-1", Council: "council-a", RequesterODS: "Y9Z01"}
	if rec.Refs != want || rec.OrderSentTo != "provider" || rec.Status != model.StatusOrdered || rec.Referral.Person.NHSNumber != "9990000018" {
		t.Errorf("record = %+v, want refs %+v", rec, want)
	}
	// The same case reference at two councils names no one without the council.
	if _, _, err := s.FindReferral(ctx, intake.Lookup{CaseReference: "CASE-1"}); !errors.Is(err, store.ErrAmbiguous) {
		t.Errorf("ambiguous case reference: err = %v", err)
	}
	// A recipient sees its own case reference only.
	refs, err := s.References(ctx, "ref-1", "provider")
	if err != nil || refs.CaseReference != "" || refs.OrderReference != "ORD-1" {
		t.Errorf("provider's references = %+v, %v", refs, err)
	}
}

// An event moves the status only from the status it was checked against;
// an amendment replaces the stored record; a duplicate changes nothing.
func TestAcceptEventOnceIsACompareAndSet(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	acceptReferral(t, s, "ref-1", "sr-1")
	commit := func(key string, from, to model.OrderStatus, amended *model.Referral) (bool, error) {
		_, dup, err := s.AcceptEventOnce(ctx, intake.EventCommit{Keys: []string{key}, Response: intake.Response{Status: 202}, Topic: "event.received",
			Message: message.NewMessage(key, []byte("{}")), Change: intake.StatusChange{ReferralID: "ref-1", From: from, To: to}, Amended: amended})
		return dup, err
	}
	if _, err := commit("e1", model.StatusOrdered, model.StatusAccepted, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := commit("e2", model.StatusOrdered, model.StatusScheduled, nil); !errors.Is(err, intake.ErrConflict) {
		t.Fatalf("stale status: err = %v, want ErrConflict", err)
	}
	if dup, err := commit("e1", model.StatusOrdered, model.StatusCancelled, nil); err != nil || !dup {
		t.Fatalf("repeat: dup %v err %v", dup, err)
	}
	amended := model.Referral{ID: "ref-1", Person: model.Person{NHSNumber: "9990000018"}, Requester: model.Requester{OrganisationODS: "Y9Z02"},
		Equipment: []model.EquipmentItem{{Code: "HOIST-1", Quantity: 1}}}
	if _, err := commit("e3", model.StatusAccepted, "", &amended); err != nil {
		t.Fatal(err)
	}
	rec, _, err := s.FindReferral(ctx, intake.Lookup{ReferralID: "ref-1"})
	if err != nil || rec.Status != model.StatusAccepted || len(rec.Referral.Equipment) != 1 || rec.Refs.RequesterODS != "Y9Z02" {
		t.Errorf("after events: %+v, %v", rec, err)
	}
	if n, _ := s.Pending(ctx, "event.received"); n != 2 {
		t.Errorf("published %d events, want 2 (the refused and the repeated ones publish nothing)", n)
	}
}

// Only the first parked delivery of a lane is ever due; urgent ones first.
func TestParkedLanesOfferOnlyTheirHead(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	now := time.Now()
	park := func(lane, key string, urgent bool, next time.Time) store.Parked {
		return store.Parked{Partner: "provider", Lane: lane, Urgent: urgent, Kind: "referral", ReferralID: lane, IdempotencyKey: key,
			Payload: []byte(key), Attempts: 1, NextAt: next, FirstFailed: now}
	}
	if err := s.Commit(ctx, store.Batch{Park: []store.Parked{
		park("a", "a1", false, now.Add(-time.Second)),
		park("a", "a2", false, now.Add(-time.Hour)), // behind a1 however early it is due
		park("b", "b1", false, now.Add(time.Hour)),  // not yet due
		park("u", "u1", true, now.Add(-time.Millisecond)),
		park("a", "a1", false, now), // the same copy again: parked once
	}}); err != nil {
		t.Fatal(err)
	}
	due, err := s.DueParked(ctx, "provider", now, 10)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range due {
		keys = append(keys, p.IdempotencyKey)
	}
	if len(keys) != 2 || keys[0] != "u1" || keys[1] != "a1" {
		t.Fatalf("due = %v, want [u1 a1]", keys)
	}
	// limit counts across urgent and routine copies.
	if one, err := s.DueParked(ctx, "provider", now, 1); err != nil || len(one) != 1 || one[0].IdempotencyKey != "u1" {
		t.Fatalf("due, limit 1 = %+v, %v; want [u1]", one, err)
	}
	// What a caller attempts already is left out.
	if others, err := s.DueParked(ctx, "provider", now, 10, due[0].ID); err != nil || len(others) != 1 || others[0].IdempotencyKey != "a1" {
		t.Fatalf("due except u1 = %+v, %v; want [a1]", others, err)
	}
	if busy, _ := s.LaneBusy(ctx, "provider", "b"); !busy {
		t.Error("lane b is not busy")
	}
	if err := s.Commit(ctx, store.Batch{Unpark: []int64{due[1].ID}}); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueParked(ctx, "provider", now, 10)
	if len(due) != 2 || due[1].IdempotencyKey != "a2" || string(due[1].Payload) != "a2" {
		t.Fatalf("after a1 is settled due = %+v, want a2 next", due)
	}
}

// A closed order's record goes at the payload cutoff; an open one stays.
func TestPurgeClosedReferralsKeepsOpenOrders(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	acceptReferral(t, s, "open", "sr-open")
	acceptReferral(t, s, "closed", "sr-closed")
	if err := s.Commit(ctx, store.Batch{Refs: []store.RefUpdate{{ReferralID: "closed", Case: &store.CaseRef{Council: "c", Reference: "CASE-9", Purpose: store.CaseForOrder}}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AcceptEventOnce(ctx, intake.EventCommit{Keys: []string{"x"}, Topic: "event.received", Message: message.NewMessage("x", []byte("{}")),
		Change: intake.StatusChange{ReferralID: "closed", From: model.StatusOrdered, To: model.StatusCancelled}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeClosedReferrals(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("before the cutoff: purged %d, %v", n, err)
	}
	n, err := s.PurgeClosedReferrals(ctx, time.Now().Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	if _, found, _ := s.FindReferral(ctx, intake.Lookup{ServiceRequestID: "sr-closed"}); found {
		t.Error("the closed referral is still recorded")
	}
	if _, found, _ := s.FindReferral(ctx, intake.Lookup{CaseReference: "CASE-9", Council: "c"}); found {
		t.Error("the closed referral's case reference is still recorded")
	}
	if _, found, _ := s.FindReferral(ctx, intake.Lookup{ServiceRequestID: "sr-open"}); !found {
		t.Error("the open referral was purged")
	}
}

// Receipts go at the cutoff, and with them the memory that a copy was
// delivered: by then the copy itself is gone too.
func TestPurgeReceipts(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	if err := s.Commit(ctx, store.Batch{Delivered: []store.Delivered{{At: time.Now(), IdempotencyKey: "k1", Recipient: "provider", Kind: "referral", ReferralID: "r"}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeReceipts(ctx, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("before the cutoff: %d, %v", n, err)
	}
	if done, _ := s.WasDelivered(ctx, "r", "k1"); !done {
		t.Fatal("receipt missing before the cutoff")
	}
	if n, err := s.PurgeReceipts(ctx, time.Now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("after the cutoff: %d, %v; want 1", n, err)
	}
	if done, _ := s.WasDelivered(ctx, "r", "k1"); done {
		t.Error("receipt kept after the cutoff")
	}
}

// The delivery step's one read: delivered already, lane busy, references.
func TestDeliveryStateInOneRead(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	acceptReferral(t, s, "ref-1", "sr-1")
	if err := s.Commit(ctx, store.Batch{
		Refs: []store.RefUpdate{{ReferralID: "ref-1", OrderReference: "ORD-1", OrderSentTo: "provider"},
			{ReferralID: "ref-1", Case: &store.CaseRef{Council: "council-a", Reference: "CASE-1", Purpose: store.CaseForOrder}}},
		Delivered: []store.Delivered{{At: time.Now(), IdempotencyKey: "done", Recipient: "council-a", Kind: "referral", ReferralID: "ref-1"}},
		Park: []store.Parked{{Partner: "provider", Lane: "ref-1", Kind: "referral", ReferralID: "ref-1", IdempotencyKey: "waiting",
			Payload: []byte("{}"), NextAt: time.Now(), FirstFailed: time.Now()}},
	}); err != nil {
		t.Fatal(err)
	}
	st, err := s.DeliveryState(ctx, "done", "council-a", "ref-1", "ref-1", store.CaseForOrder)
	if err != nil || !st.Delivered || st.LaneBusy || st.Refs.CaseReference != "CASE-1" || st.Refs.OrderReference != "ORD-1" {
		t.Errorf("council's state = %+v, %v", st, err)
	}
	// Without a case purpose the case references are not read at all.
	st, err = s.DeliveryState(ctx, "done", "council-a", "ref-1", "ref-1", "")
	if err != nil || !st.Delivered || st.Refs.CaseReference != "" || st.Refs.OrderReference != "ORD-1" {
		t.Errorf("council's state without a case purpose = %+v, %v", st, err)
	}
	st, err = s.DeliveryState(ctx, "new", "provider", "ref-1", "ref-1", "")
	if err != nil || st.Delivered || !st.LaneBusy || st.Refs.CaseReference != "" || st.Refs.ServiceRequestID != "sr-1" {
		t.Errorf("provider's state = %+v, %v", st, err)
	}
	st, err = s.DeliveryState(ctx, "new", "provider", "other", "unknown", "")
	if err != nil || st.Delivered || st.LaneBusy || st.Refs != (model.References{}) {
		t.Errorf("unknown referral's state = %+v, %v", st, err)
	}
}

// Delivery states are read in shared batches (readShared): each caller
// gets the answer about its own referral, and a read asked for after a
// commit sees it, however many reads are running meanwhile.
func TestSharedReadsAnswerEachCallerAndSeeEarlierCommits(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	const n = 64
	for i := range n {
		id := fmt.Sprintf("ref-%02d", i)
		if _, _, err := s.AcceptOnce(ctx, []string{"request:" + id}, intake.Response{Status: 200}, "referral.received",
			message.NewMessage(id, []byte("{}")), &intake.Record{Referral: model.Referral{ID: id,
				Source: model.Source{ServiceRequestID: "sr-" + id}}, Status: model.StatusOrdered}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n { // readers all the while, each checking its own answer
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("ref-%02d", i)
			for {
				select {
				case <-stop:
					return
				default:
				}
				st, err := s.DeliveryState(ctx, "none", "provider", id, id, "")
				if err != nil || st.Refs.ServiceRequestID != "sr-"+id || st.Delivered {
					errs <- fmt.Errorf("DeliveryState(%s) = %+v, %v; want its own service request and not delivered", id, st, err)
					return
				}
			}
		}()
	}
	// The readers are stopped before any failure is reported, so that a
	// failing run does not leave them reading a store never closed.
	var fail error
	for i := 0; i < 200 && fail == nil; i++ {
		key := fmt.Sprintf("key-%d", i)
		if err := s.Commit(ctx, store.Batch{Delivered: []store.Delivered{{At: time.Now(), IdempotencyKey: key, Recipient: "provider", Kind: "referral", ReferralID: "ref-00"}}}); err != nil {
			fail = err
		} else if st, err := s.DeliveryState(ctx, key, "provider", "ref-00", "ref-00", ""); err != nil || !st.Delivered {
			fail = fmt.Errorf("after its receipt was committed, DeliveryState(%s) = %+v, %v; want delivered", key, st, err)
		}
	}
	close(stop)
	wg.Wait()
	if fail != nil {
		s.Close()
		t.Fatal(fail)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeliveryState(ctx, "k", "provider", "ref-00", "ref-00", ""); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("DeliveryState after Close = %v; want ErrClosed", err)
	}
}
