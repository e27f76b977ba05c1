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

// A dead-lettered publication of the statistics is replayed as it was
// published, under the current route's purpose and basis; without a route
// to its commissioner any more, it is refused.
func TestRecutOfTheStatisticsKeepsTheTable(t *testing.T) {
	old := model.Delivery{Kind: model.KindStatistics, Recipient: "commissioner-icb", IdempotencyKey: "k", Fields: []string{model.StatisticsLabel},
		Purpose: "planning", LawfulBasis: "Art 6(1)(e)", Statistics: &model.Statistics{Month: "2026-11", ContentType: "text/csv", Body: "a,b\n1,2\n"}}
	now := []config.Route{{Message: config.MessageStatistics, To: "commissioner-icb", Purpose: "planning (revised)", LawfulBasis: "Art 6(1)(e)"}}
	got, err := routes.NewRecut(routes.RecutConfig{Routes: now}, oneReferral{})(old)
	if err != nil {
		t.Fatal(err)
	}
	if got.Purpose != "planning (revised)" || got.Statistics == nil || *got.Statistics != *old.Statistics || got.IdempotencyKey != "k" ||
		len(got.Fields) != 1 || got.Fields[0] != model.StatisticsLabel || got.Referral.ID != "" {
		t.Errorf("re-cut %+v", got)
	}
	if _, err := routes.NewRecut(routes.RecutConfig{}, oneReferral{})(old); !errors.Is(err, routes.ErrNoCurrentRoute) {
		t.Errorf("no route: err = %v", err)
	}
}
