package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/iceshub/iceshub/internal/store"
)

// A resolution and what it does commit together: a second resolution of
// the same hold is refused and writes nothing of its batch; a resolved hold
// is no longer listed or counted, but kept with its resolution.
func testResolveHoldOnceWithItsBatch(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	if err := s.Commit(ctx, store.Batch{Holds: []store.Hold{
		{ReferralID: "r1", Kind: "referral", Route: "council", Reason: "no council", Payload: []byte(`{"id":"r1"}`)},
		{ReferralID: "r2", Kind: "referral", Route: "council", Reason: "no council", Payload: []byte(`{"id":"r2"}`)},
	}}); err != nil {
		t.Fatal(err)
	}
	hs, err := s.Held(ctx)
	if err != nil || len(hs) != 2 {
		t.Fatalf("Held = %+v, %v", hs, err)
	}
	id := hs[0].ID
	h, err := s.HeldMessage(ctx, id)
	if err != nil || string(h.Payload) != `{"id":"r1"}` || h.Resolution != nil {
		t.Fatalf("HeldMessage = %+v, %v", h, err)
	}
	batch := func(key string) store.Batch {
		return store.Batch{Messages: []store.TopicMessage{{Topic: deliverTopic("council-a"), Message: message.NewMessage(key, []byte(`{}`))}},
			Refs: []store.RefUpdate{{ReferralID: "r1", Council: "council-a"}}}
	}
	for _, c := range []struct {
		res  store.HoldResolution
		want error
	}{
		{store.HoldResolution{Action: store.ActionRouted, Reason: "why"}, store.ErrByRequired},
		{store.HoldResolution{Action: store.ActionRouted, By: "op"}, store.ErrReasonRequired},
		{store.HoldResolution{Action: store.ActionReleased, By: "op", Permission: &store.PermissionRecord{RecordedBy: "ot"}}, store.ErrPermissionRequired},
	} {
		if err := s.ResolveHold(ctx, id, c.res, batch("k0")); !errors.Is(err, c.want) {
			t.Errorf("ResolveHold(%+v) = %v, want %v", c.res, err, c.want)
		}
	}
	if err := s.ResolveHold(ctx, id+100, store.HoldResolution{Action: store.ActionClosed, By: "op", Reason: "x"}, store.Batch{}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown hold: %v, want ErrNotFound", err)
	}
	if err := s.ResolveHold(ctx, id, store.HoldResolution{Action: store.ActionRouted, By: " op ", Reason: " moved ", Recipient: "council-a"}, batch("k1")); err != nil {
		t.Fatal(err)
	}
	if err := s.ResolveHold(ctx, id, store.HoldResolution{Action: store.ActionClosed, By: "op", Reason: "again"}, batch("k2")); !errors.Is(err, store.ErrHoldResolved) {
		t.Errorf("second resolution: %v, want ErrHoldResolved", err)
	}
	if n, err := s.Pending(ctx, deliverTopic("council-a")); err != nil || n != 1 {
		t.Errorf("pending on the council's queue = %d, %v; want the routed copy only", n, err)
	}
	if hs, _ := s.Held(ctx); len(hs) != 1 || hs[0].ReferralID != "r2" {
		t.Errorf("Held after resolving r1 = %+v", hs)
	}
	if c, _ := s.HeldCounts(ctx); c["council"] != 1 {
		t.Errorf("HeldCounts = %v, want council 1", c)
	}
	all, _ := s.AllHeld(ctx)
	if r := all[0].Resolution; len(all) != 2 || r == nil || r.Action != store.ActionRouted || r.By != "op" || r.Reason != "moved" || r.Recipient != "council-a" || r.At.IsZero() {
		t.Errorf("AllHeld = %+v", all)
	}
}
