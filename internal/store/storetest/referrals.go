package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

// AcceptReferral accepts a minimal referral id with its ServiceRequest id,
// requested by Y9Z01, for a test to build on.
func AcceptReferral(t *testing.T, s store.Engine, id, serviceRequest string) {
	t.Helper()
	ref := model.Referral{ID: id, Source: model.Source{ServiceRequestID: serviceRequest}, Requester: model.Requester{OrganisationODS: "Y9Z01"},
		Person: model.Person{NHSNumber: "9990000018"}}
	if _, _, err := s.AcceptOnce(context.Background(), []string{"request:" + id}, intake.Response{Status: 200}, "referral.received",
		message.NewMessage(id, []byte("{}")), &intake.Record{Referral: ref, Status: model.StatusOrdered}); err != nil {
		t.Fatal(err)
	}
}

// Every partner's reference finds the referral it was given for.
func testCrossReferenceFindsTheReferralByAnyReference(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	AcceptReferral(t, s, "ref-1", "sr-1")
	AcceptReferral(t, s, "ref-2", "sr-2")
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
func testAcceptEventOnceIsACompareAndSet(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	AcceptReferral(t, s, "ref-1", "sr-1")
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
func testParkedLanesOfferOnlyTheirHead(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
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

// The delivery step's one read: delivered already, lane busy, references.
func testDeliveryStateInOneRead(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	AcceptReferral(t, s, "ref-1", "sr-1")
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

// A permission an operator recorded with a referral (RefUpdate.Permission,
// on releasing a held copy) is found with the referral from then on, over
// the referral's own; an amendment without a permission keeps it, one
// bringing its own replaces it.
func testRecordedPermissionStandsUntilAnAmendmentBringsOne(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	AcceptReferral(t, s, "ref-1", "sr-1")
	AcceptReferral(t, s, "ref-2", "sr-2")
	permission := func(id string) *model.Permission {
		t.Helper()
		rec, found, err := s.FindReferral(ctx, intake.Lookup{ReferralID: id})
		if err != nil || !found {
			t.Fatalf("%s: %v, found %v", id, err, found)
		}
		return rec.Referral.Permission
	}
	if p := permission("ref-1"); p != nil {
		t.Fatalf("a referral without permission reads %+v", p)
	}
	given := &model.Permission{Given: true, Source: "operator-recorded", Recorded: "2026-12-07"}
	if err := s.Commit(ctx, store.Batch{Refs: []store.RefUpdate{{ReferralID: "ref-1", Permission: given}}}); err != nil {
		t.Fatal(err)
	}
	if p := permission("ref-1"); p == nil || *p != *given {
		t.Fatalf("recorded permission reads %+v, want %+v", p, given)
	}
	if p := permission("ref-2"); p != nil {
		t.Fatalf("another referral reads %+v", p)
	}
	amend := func(key string, p *model.Permission) {
		t.Helper()
		amended := model.Referral{ID: "ref-1", Person: model.Person{NHSNumber: "9990000018"}, Permission: p}
		if _, _, err := s.AcceptEventOnce(ctx, intake.EventCommit{Keys: []string{key}, Response: intake.Response{Status: 200}, Topic: "event.received",
			Message: message.NewMessage(key, []byte("{}")), Change: intake.StatusChange{ReferralID: "ref-1"}, Amended: &amended}); err != nil {
			t.Fatal(err)
		}
	}
	amend("amend-1", nil)
	if p := permission("ref-1"); p == nil || *p != *given {
		t.Fatalf("after an amendment without a permission: %+v, want the recorded one", p)
	}
	refused := &model.Permission{Given: false, Source: model.PermissionSourceFHIRConsent}
	amend("amend-2", refused)
	if p := permission("ref-1"); p == nil || *p != *refused {
		t.Fatalf("after an amendment refusing: %+v, want its refusal", p)
	}
}
