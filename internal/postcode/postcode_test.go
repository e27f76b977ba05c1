package postcode

import "testing"

func TestLookupMostSpecificWins(t *testing.T) {
	tab, err := NewTable(map[string][]string{
		"council-a": {"CH", "CW6"},
		"council-b": {"CH65", "cw6 9"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		postcode, owner string
		ok              bool
	}{
		{"CH1 4BJ", "council-a", true},
		{"ch650ba", "council-b", true}, // district beats area
		{"CH6 5AA", "council-a", true}, // CH6 is not CH65: districts match whole
		{"CW6 0AA", "council-a", true}, // district
		{"CW6 9AA", "council-b", true}, // sector beats district
		{"LS10 4YU", "", false},        // nobody covers Leeds
		{"not a postcode", "", false},  // malformed never matches
		{"", "", false},
	}
	for _, c := range cases {
		got, ok := tab.Lookup(c.postcode)
		if got != c.owner || ok != c.ok {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", c.postcode, got, ok, c.owner, c.ok)
		}
	}
}

func TestNewTableRejectsConflictsAndMalformed(t *testing.T) {
	if _, err := NewTable(map[string][]string{"a": {"CH1"}, "b": {"ch1"}}); err == nil {
		t.Error("a prefix claimed twice was accepted")
	}
	if _, err := NewTable(map[string][]string{"a": {"CH1 4BJ"}}); err == nil {
		t.Error("a full postcode was accepted as a prefix")
	}
	if _, err := NewTable(map[string][]string{"a": {"12"}}); err == nil {
		t.Error("a malformed prefix was accepted")
	}
}

func TestNormalise(t *testing.T) {
	if got, ok := Normalise(" ch65  0ba "); !ok || got != "CH65 0BA" {
		t.Errorf("Normalise = %q, %v", got, ok)
	}
	if p, ok := Split("SW1A 1AA"); !ok || p.District != "SW1A" || p.Sector != "SW1A 1" || p.Area != "SW" {
		t.Errorf("Split(SW1A 1AA) = %+v, %v", p, ok)
	}
}
