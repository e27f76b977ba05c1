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
	"github.com/iceshub/iceshub/internal/store/storetest"
)

// A closed order's record goes at the payload cutoff; an open one stays.
func TestPurgeClosedReferralsKeepsOpenOrders(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	storetest.AcceptReferral(t, s, "open", "sr-open")
	storetest.AcceptReferral(t, s, "closed", "sr-closed")
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
