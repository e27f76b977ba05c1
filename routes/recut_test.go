package routes_test

import (
	"context"
	"errors"
	"testing"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/routes"
)

type oneReferral struct{ rec intake.Record }

func (o oneReferral) FindReferral(_ context.Context, l intake.Lookup) (intake.Record, bool, error) {
	return o.rec, l.ReferralID == o.rec.Referral.ID, nil
}

// A replay follows the current policy: a field the route no longer names is
// not sent, one it now names is, and a sharing no route allows any more is
// refused.
func TestRecutAppliesTheCurrentRoute(t *testing.T) {
	full := referral("r-1", "CH1 4AA")
	old := model.Delivery{Kind: model.KindReferral, Recipient: "council-a", IdempotencyKey: "k", Fields: []string{"person.nhsNumber", "person.name"},
		Referral: model.Referral{ID: "r-1", Person: model.Person{NHSNumber: full.Person.NHSNumber, Name: full.Person.Name}}}
	now := []config.Route{{Message: "referral", To: config.RecipientCouncil, Purpose: "tracking (revised)", LawfulBasis: "Art 6(1)(e)",
		Fields: []string{"person.nhsNumber", "priority"}}}
	recut := routes.NewRecut(routes.RecutConfig{Routes: now, PartnerKinds: map[string]string{"council-a": config.KindCouncil}},
		oneReferral{intake.Record{Referral: full}})
	got, err := recut(old)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Referral.Person.Name.IsZero() || got.Referral.Priority != full.Priority || got.Referral.Person.NHSNumber == "" {
		t.Errorf("re-cut copy %+v: want the NHS number and priority, no name", got.Referral)
	}
	if got.IdempotencyKey != "k" || got.Recipient != "council-a" || got.Purpose != "tracking (revised)" || len(got.Fields) != 2 {
		t.Errorf("re-cut delivery %+v", got)
	}
	recut = routes.NewRecut(routes.RecutConfig{PartnerKinds: map[string]string{"council-a": config.KindCouncil}}, oneReferral{})
	if _, err := recut(old); !errors.Is(err, routes.ErrNoCurrentRoute) {
		t.Errorf("no route: err = %v, want ErrNoCurrentRoute", err)
	}
}
