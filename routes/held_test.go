package routes_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

func heldResolver(t *testing.T, e *env) *routes.Held {
	t.Helper()
	h, err := routes.NewHeld(e.cfg, e.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// waitHold waits for the one open hold of referral id and returns it.
func waitHold(t *testing.T, e *env, id string) store.Hold {
	t.Helper()
	var found store.Hold
	waitFor(t, "the hold of "+id, func() bool {
		hs, _ := e.store.Held(context.Background())
		for _, h := range hs {
			if h.ReferralID == id {
				found = h
				return true
			}
		}
		return false
	})
	return found
}

func openHolds(t *testing.T, e *env) int {
	t.Helper()
	hs, err := e.store.Held(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(hs)
}

// A referral no council covers, routed by a person to a council: the
// council's copy is cut by the council route under the fan-out's key and
// delivered, its disclosure recorded; the council is recorded for the
// referral; the hold is no longer listed and cannot be resolved again.
func TestRouteHeldReferralToChosenCouncil(t *testing.T) {
	ctx := context.Background()
	e := start(t, &fakePartner{}, &fakePartner{})
	e.accept(t, referral("h-route", "LS10 4YU"))
	hold := waitHold(t, e, "h-route")
	h := heldResolver(t, e)

	if _, err := h.Route(ctx, hold.ID, "provider", "cli:op", "covers Leeds now"); !errors.Is(err, routes.ErrCannotResolve) {
		t.Errorf("route to the provider: %v, want ErrCannotResolve", err)
	}
	if _, err := h.Route(ctx, hold.ID, "council-a", "cli:op", " "); !errors.Is(err, store.ErrReasonRequired) {
		t.Errorf("route without a reason: %v, want ErrReasonRequired", err)
	}
	if _, err := h.Release(ctx, hold.ID, store.PermissionRecord{RecordedBy: "x", Evidence: "doc-1"}, "cli:op", ""); !errors.Is(err, routes.ErrCannotResolve) {
		t.Errorf("release of a no-council hold: %v, want ErrCannotResolve", err)
	}
	if n := len(e.council.received()); n != 0 {
		t.Fatalf("refused resolutions sent %d copies", n)
	}

	res, err := h.Route(ctx, hold.ID, "council-a", "cli:op", "temporary address in council A's area")
	if err != nil {
		t.Fatal(err)
	}
	key := routes.IdempotencyKey("h-route", "council-a", model.KindReferral)
	if res.Recipient != "council-a" || len(res.IdempotencyKeys) != 1 || res.IdempotencyKeys[0] != key {
		t.Errorf("resolved %+v, want one copy for council-a under key %s", res, key)
	}
	waitFor(t, "the council's copy", func() bool { return len(e.council.received()) == 1 })
	got := e.council.received()[0]
	if got.IdempotencyKey != key || got.Referral.Person.Name.Text != "Ada Testperson" || len(got.Referral.Equipment) != 0 ||
		got.Referral.Person.BirthDate != "" || got.Referral.Clinical.Weight != nil {
		t.Errorf("council copy not cut by the council route: %+v", got)
	}
	waitFor(t, "the sent disclosure", func() bool {
		ds, _ := e.store.Disclosures(ctx, "h-route")
		for _, d := range ds {
			if d.Recipient == "council-a" && d.Outcome == store.OutcomeSent && d.Purpose == "case tracking" && d.Subject != "" {
				return true
			}
		}
		return false
	})
	rec, found, err := e.store.FindReferral(ctx, intake.Lookup{ReferralID: "h-route"})
	if err != nil || !found || rec.Refs.Council != "council-a" {
		t.Errorf("referral's council = %q (%v, %v), want council-a", rec.Refs.Council, found, err)
	}
	if n := openHolds(t, e); n != 0 {
		t.Errorf("%d holds still listed after routing", n)
	}
	all, _ := e.store.AllHeld(ctx)
	if len(all) != 1 || all[0].Resolution == nil || all[0].Resolution.Action != store.ActionRouted ||
		all[0].Resolution.By != "cli:op" || all[0].Resolution.Reason != "temporary address in council A's area" || all[0].Resolution.Recipient != "council-a" {
		t.Errorf("recorded resolution %+v", all)
	}
	for name, again := range map[string]func() error{
		"route": func() error { _, err := h.Route(ctx, hold.ID, "council-a", "cli:op", "again"); return err },
		"close": func() error { _, err := h.Close(ctx, hold.ID, "cli:op", "again"); return err },
	} {
		if err := again(); !errors.Is(err, store.ErrHoldResolved) {
			t.Errorf("%s a routed hold: %v, want ErrHoldResolved", name, err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(e.council.received()); n != 1 {
		t.Errorf("council received %d copies, want 1", n)
	}
}

// A copy held for want of the person's express permission is released once
// a person records it: delivered to the recipient it was held for, cut by
// its route, without the permission record; the record of the permission
// (who, when, evidence) is kept with the resolution.
func TestReleaseHeldCopyOncePermissionRecorded(t *testing.T) {
	ctx := context.Background()
	table := append([]config.Route(nil), testRoutes...)
	table[1].RequiresPermission = true
	e := startWith(t, table, &fakePartner{}, &fakePartner{})
	e.accept(t, referral("h-perm", "CH1 4AA"))
	hold := waitHold(t, e, "h-perm")
	if hold.Route != "council-a" || hold.Reason != routes.HoldNoPermission {
		t.Fatalf("hold %+v", hold)
	}
	h := heldResolver(t, e)
	if _, err := h.Route(ctx, hold.ID, "council-a", "cli:op", "why"); !errors.Is(err, routes.ErrCannotResolve) {
		t.Errorf("route of a permission hold: %v, want ErrCannotResolve", err)
	}
	if _, err := h.Release(ctx, hold.ID, store.PermissionRecord{RecordedBy: "OT J. Example"}, "cli:op", ""); !errors.Is(err, store.ErrPermissionRequired) {
		t.Errorf("release without evidence: %v, want ErrPermissionRequired", err)
	}
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	res, err := h.Release(ctx, hold.ID, store.PermissionRecord{RecordedBy: "OT J. Example", RecordedAt: at, Evidence: "consent form CF-0042"}, "cli:op", "signed form received")
	if err != nil {
		t.Fatal(err)
	}
	if res.Recipient != "council-a" || len(res.IdempotencyKeys) != 1 {
		t.Errorf("resolved %+v", res)
	}
	waitFor(t, "the released copy", func() bool { return len(e.council.received()) == 1 })
	got := e.council.received()[0]
	if got.Referral.ID != "h-perm" || got.Referral.Permission != nil || len(got.Referral.Equipment) != 0 {
		t.Errorf("released copy %+v", got)
	}
	all, _ := e.store.AllHeld(ctx)
	r := all[0].Resolution
	if r == nil || r.Action != store.ActionReleased || r.Permission == nil || r.Permission.RecordedBy != "OT J. Example" ||
		!r.Permission.RecordedAt.Equal(at) || r.Permission.Evidence != "consent form CF-0042" {
		t.Errorf("recorded resolution %+v", r)
	}
	if _, err := h.Release(ctx, hold.ID, store.PermissionRecord{RecordedBy: "x", Evidence: "y"}, "cli:op", ""); !errors.Is(err, store.ErrHoldResolved) {
		t.Errorf("second release: %v, want ErrHoldResolved", err)
	}
}

// Routing a no-council hold to a council whose route needs permission the
// referral does not record holds it again for that council, as the fan-out
// would have; closing records the reason and sends nothing.
func TestRouteHeldAgainForPermissionAndClose(t *testing.T) {
	ctx := context.Background()
	table := append([]config.Route(nil), testRoutes...)
	table[1].RequiresPermission = true
	e := startWith(t, table, &fakePartner{}, &fakePartner{})
	e.accept(t, referral("h-again", "LS10 4YU"))
	hold := waitHold(t, e, "h-again")
	h := heldResolver(t, e)
	res, err := h.Route(ctx, hold.ID, "council-a", "cli:op", "address is in A")
	if err != nil {
		t.Fatal(err)
	}
	if res.HeldAgain != routes.HoldNoPermission || len(res.IdempotencyKeys) != 0 {
		t.Errorf("resolved %+v, want held again for permission", res)
	}
	again := waitHold(t, e, "h-again")
	if again.Route != "council-a" || again.ID == hold.ID {
		t.Fatalf("new hold %+v", again)
	}
	if _, err := h.Close(ctx, again.ID, "cli:op", ""); !errors.Is(err, store.ErrReasonRequired) {
		t.Errorf("close without a reason: %v", err)
	}
	if _, err := h.Close(ctx, again.ID, "cli:op", "the person declined"); err != nil {
		t.Fatal(err)
	}
	if n := openHolds(t, e); n != 0 {
		t.Errorf("%d holds listed after close", n)
	}
	all, _ := e.store.AllHeld(ctx)
	if r := all[len(all)-1].Resolution; r == nil || r.Action != store.ActionClosed || r.Reason != "the person declined" || r.Recipient != "" {
		t.Errorf("close recorded as %+v", r)
	}
	if _, err := h.Close(ctx, again.ID, "cli:op", "twice"); !errors.Is(err, store.ErrHoldResolved) {
		t.Errorf("second close: %v, want ErrHoldResolved", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(e.council.received()); n != 0 {
		t.Errorf("council received %d copies", n)
	}
	counts, _ := e.store.HeldCounts(ctx)
	if len(counts) != 0 {
		t.Errorf("held counts %v after every hold was resolved", counts)
	}
}

// A permission recorded on releasing a held copy stands for the referral:
// its cancellation goes to the council without a hold of its own, while
// the cancellation of a referral whose copy was not released is held, as
// before, for want of the permission.
func TestAReleasedPermissionStandsForTheReferralsLaterMessages(t *testing.T) {
	ctx := context.Background()
	table := append([]config.Route(nil), testRoutes...)
	table[1].RequiresPermission = true
	table = append(table, config.Route{Message: string(model.KindCancellation), To: config.RecipientCouncil, Purpose: "close the case",
		LawfulBasis: "Art 6(1)(e)", Fields: []string{"event.reason"}, RequiresPermission: true})
	e := startWith(t, table, &fakePartner{}, &fakePartner{})
	e.accept(t, referral("perm-a", "CH1 4AA"))
	hold := waitHold(t, e, "perm-a")
	h := heldResolver(t, e)
	if _, err := h.Release(ctx, hold.ID, store.PermissionRecord{RecordedBy: "OT J. Example", Evidence: "consent form CF-0042"}, "cli:op", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the released referral", func() bool { return len(e.council.received()) == 1 })
	e.accept(t, referral("perm-b", "CH1 4AB"))
	waitHold(t, e, "perm-b")

	events, err := intake.NewEvents(e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"perm-a", "perm-b"} {
		if _, err := events.AcceptEvent(ctx, intake.EventSubmission{
			Keys:  []string{"nhs:cancel-" + id},
			Event: model.Event{Kind: model.KindCancellation, From: "nhs", Status: model.StatusCancelled, Reason: model.Coded{Code: "no-longer-required"}, OccurredAt: time.Now()},
			Find:  intake.Lookup{ReferralID: id}, Response: intake.Response{Status: 200},
		}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "perm-a's cancellation at the council", func() bool { return len(e.council.received()) == 2 })
	if got := e.council.received()[1]; got.Kind != model.KindCancellation || got.Referral.ID != "perm-a" {
		t.Errorf("the council received %s of %s", got.Kind, got.Referral.ID)
	}
	waitFor(t, "perm-b's cancellation held", func() bool {
		hs, _ := e.store.Held(ctx)
		for _, h := range hs {
			if h.ReferralID == "perm-b" && h.Kind == string(model.KindCancellation) && h.Reason == routes.HoldNoPermission {
				return true
			}
		}
		return false
	})
	if n := openHolds(t, e); n != 2 {
		t.Errorf("%d open holds, want perm-b's referral and cancellation", n)
	}
}
