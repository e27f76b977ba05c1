package config

import (
	"strings"
	"testing"
	"time"
)

// withCommissioner is base with a commissioner and its statistics route;
// extra is added to the commissioner's partner entry, route to the routes.
func withCommissioner(extra, route string) string {
	partners := `
  - id: commissioner-icb
    kind: commissioner
    base_url: https://icb.example.org/ices
    token_env: ICESHUB_ICB_TOKEN
` + extra
	y := strings.Replace(base, "routes:\n", strings.TrimPrefix(partners, "\n")+"routes:\n", 1)
	return y + route
}

const statisticsRoute = `
  - message: statistics
    to: commissioner-icb
    purpose: Plan and pay for the equipment service
    lawful_basis: UK GDPR Art 6(1)(e) public task
`

func TestCommissionerGetsOnlyStatistics(t *testing.T) {
	c, err := Parse([]byte(withCommissioner("", statisticsRoute)), "test.yaml")
	if err != nil {
		t.Fatalf("a commissioner with its statistics route: %v", err)
	}
	if p, ok := c.PartnerByID("commissioner-icb"); !ok || p.Kind != KindCommissioner || p.TokenEnv != "ICESHUB_ICB_TOKEN" {
		t.Errorf("partner = %+v", p)
	}
	if c.Stats.PublishDay != DefaultPublishDay || c.Stats.PublishHour == nil || *c.Stats.PublishHour != DefaultPublishHour {
		t.Errorf("publish defaults: day %d hour %v", c.Stats.PublishDay, c.Stats.PublishHour)
	}
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	if got := c.Stats.PublishAt(nov); !got.Equal(time.Date(2026, 12, 1, 6, 0, 0, 0, time.UTC)) {
		t.Errorf("PublishAt(November) = %v", got)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"referral to a commissioner": {withCommissioner("", `
  - message: referral
    to: commissioner-icb
    purpose: p
    lawful_basis: b
    fields: [person.name]
`), "a commissioner receives only message \"statistics\""},
		"statistics to a provider": {withCommissioner("", `
  - message: statistics
    to: provider
    purpose: p
    lawful_basis: b
`), "statistics go to a partner of kind \"commissioner\""},
		"statistics to the council of the area": {withCommissioner("", `
  - message: statistics
    to: council
    purpose: p
    lawful_basis: b
`), "statistics go to a partner of kind \"commissioner\""},
		"fields on statistics": {withCommissioner("", strings.TrimSuffix(statisticsRoute, "\n")+"\n    fields: [person.nhsNumber]\n"),
			"name no fields"},
		"statistics without a lawful basis": {withCommissioner("", "\n  - message: statistics\n    to: commissioner-icb\n    purpose: p\n"),
			"needs a lawful_basis"},
		"a commissioner calling the hub": {withCommissioner("    inbound:\n      mode: hmac\n      hmac: {secret_env: ICB_SECRET}\n", statisticsRoute),
			"never calls the hub"},
		"postcodes on a commissioner": {withCommissioner("    postcode_prefixes: [CH2]\n", statisticsRoute), "only councils have postcode_prefixes"},
		"publish day 29":              {withCommissioner("", statisticsRoute) + "stats:\n  publish_day: 29\n", "stats.publish_day 29 must be from 1 to 28"},
		"publish hour 24":             {withCommissioner("", statisticsRoute) + "stats:\n  publish_hour: 24\n", "stats.publish_hour 24 must be from 0 to 23"},
		"twice":                       {withCommissioner("", statisticsRoute+statisticsRoute), "a second route for message \"statistics\""},
	} {
		if _, err := Parse([]byte(tc.yaml), "test.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to say %q", name, err, tc.want)
		}
	}
	c, err = Parse([]byte(withCommissioner("", statisticsRoute)+"stats:\n  publish_day: 3\n  publish_hour: 0\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Stats.PublishAt(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); !got.Equal(time.Date(2027, 1, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("PublishAt(December), day 3 hour 0 = %v", got)
	}
}
