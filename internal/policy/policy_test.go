package policy

import (
	"testing"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/model"
)

// A route of the statistics discloses no field: its one row says so.
func TestStatisticsRouteHasOneRowOfNoOnesData(t *testing.T) {
	cfg := &config.Config{
		Partners: []config.Partner{{ID: "commissioner-icb", Kind: config.KindCommissioner, Name: "ICB"}},
		Routes:   []config.Route{{Message: config.MessageStatistics, To: "commissioner-icb", Purpose: "planning", LawfulBasis: "Art 6(1)(e)"}},
	}
	rows := Flows(cfg)
	if len(rows) != 1 {
		t.Fatalf("rows = %+v", rows)
	}
	if r := rows[0]; r.Field != model.StatisticsLabel || r.Class != string(model.ClassNone) || r.Recipient != "commissioner-icb (ICB)" ||
		r.Purpose != "planning" || r.Article6 != "Art 6(1)(e)" {
		t.Errorf("row = %+v", r)
	}
}
