package routes_test

import (
	"context"
	"testing"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// A route that needs the person's express permission sends only when the
// referral records it given; otherwise the copy is held and recorded as
// withheld, and other recipients are served as usual.
func TestRouteRequiringPermission(t *testing.T) {
	table := append([]config.Route(nil), testRoutes...)
	table[1].RequiresPermission = true // the council route
	e := startWith(t, table, &fakePartner{}, &fakePartner{})

	absent := referral("p-absent", "CH1 4AA")
	refused := referral("p-refused", "CH1 4AB")
	refused.Permission = &model.Permission{Given: false, Source: model.PermissionSourceFHIRConsent}
	given := referral("p-given", "CH1 4AC")
	given.Permission = &model.Permission{Given: true, Source: model.PermissionSourceFHIRConsent}
	for _, r := range []model.Referral{absent, refused, given} {
		e.accept(t, r)
	}

	waitFor(t, "provider copies of all three", func() bool { return len(e.provider.received()) == 3 })
	waitFor(t, "two holds", func() bool {
		hs, _ := e.store.Held(context.Background())
		return len(hs) == 2
	})
	waitFor(t, "the permitted council copy", func() bool { return len(e.council.received()) == 1 })
	if got := e.council.received()[0].Referral.ID; got != "p-given" {
		t.Errorf("council received %s, want only p-given", got)
	}
	if e.council.received()[0].Referral.Permission != nil {
		t.Error("the permission record was copied to the recipient")
	}
	reasons := map[string]string{}
	hs, _ := e.store.Held(context.Background())
	for _, h := range hs {
		reasons[h.ReferralID] = h.Reason
	}
	if reasons["p-absent"] != routes.HoldNoPermission || reasons["p-refused"] != routes.HoldPermissionRefused {
		t.Errorf("hold reasons %v", reasons)
	}
	for _, id := range []string{"p-absent", "p-refused"} {
		ds, _ := e.store.Disclosures(context.Background(), id)
		var withheld int
		for _, d := range ds {
			if d.Outcome == store.OutcomeWithheld && d.Recipient == "council-a" && len(d.Fields) == 0 {
				withheld++
			}
		}
		if withheld != 1 {
			t.Errorf("%s: %d withheld council entries, want 1: %+v", id, withheld, ds)
		}
	}
}
