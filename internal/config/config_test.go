package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatalf("built-in configuration does not load: %v", err)
	}
	if len(c.Routes) == 0 || len(c.Partners) < 2 {
		t.Fatalf("default config has %d partners, %d routes", len(c.Partners), len(c.Routes))
	}
	tab, err := c.CouncilTable()
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := tab.Lookup("CH65 0BA"); got != "council-cwac" {
		t.Errorf("CH65 0BA -> %q, want council-cwac", got)
	}
	if got, _ := tab.Lookup("SK10 1AA"); got != "council-ceast" {
		t.Errorf("SK10 1AA -> %q, want council-ceast", got)
	}
}

// The council's copy of a referral, and of status updates, must hold no
// clinical or other special category data. (Equipment issues and
// safeguarding concerns are about health and care, and say so with an
// Article 9 basis.)
func TestDefaultCouncilRouteHasNoSpecialCategoryData(t *testing.T) {
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range c.Routes {
		if r.To != RecipientCouncil || (r.Message != "referral" && r.Message != "order-status") {
			continue
		}
		if r.SpecialCategoryBasis != "" {
			t.Errorf("council %s route names an Article 9 basis; it should need none", r.Message)
		}
	}
}

const base = `
partners:
  - id: provider
    kind: provider
    base_url: http://127.0.0.1:1
  - id: council-a
    kind: council
    base_url: http://127.0.0.1:2
    postcode_prefixes: [CH1]
routes:
  - message: referral
    to: provider
    purpose: delivery
    lawful_basis: Art 6(1)(e)
    special_category_basis: Art 9(2)(h)
    fields: [person.name, equipment]
`

func TestParseErrorsNameTheProblemAndLine(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", base + `
  - message: referral
    to: council
    purpose: tracking
    lawful_basis: Art 6(1)(e)
    fields: [person.nickname]
`, []string{"test.yaml:22", `unknown field "person.nickname"`}},
		{"special category without Article 9", base + `
  - message: referral
    to: council
    purpose: tracking
    lawful_basis: Art 6(1)(e)
    fields: [clinical.notes]
`, []string{"test.yaml:22", `special category field "clinical.notes"`, "Article 9"}},
		{"unknown recipient", base + `
  - message: referral
    to: council-b
    purpose: tracking
    lawful_basis: Art 6(1)(e)
    fields: [person.name]
`, []string{"test.yaml:19", `unknown recipient "council-b"`}},
		{"unknown key", base + "\nextra: 1\n", []string{"test.yaml", "extra"}},
		{"missing basis", strings.Replace(base, "    lawful_basis: Art 6(1)(e)\n", "", 1), []string{"lawful_basis"}},
		{"secret in file", strings.Replace(base, "kind: provider\n", "kind: provider\n    token_env: s3cr3t-token-value\n", 1), []string{"token_env"}},
		{"council without area", strings.Replace(base, "    postcode_prefixes: [CH1]\n", "", 1), []string{`council "council-a" needs postcode_prefixes`}},
		{"commit delay too long", base + "\nstore:\n  commit_delay: 50ms\n", []string{"store.commit_delay 50ms", "10ms"}},
		{"ops address not HOST:PORT", base + "\nserver:\n  ops_addr: localhost\n", []string{`server.ops_addr "localhost" is not HOST:PORT`}},
		{"ops address the partners' address", base + "\nserver:\n  addr: 127.0.0.1:8080\n  ops_addr: 127.0.0.1:8080\n", []string{`server.ops_addr "127.0.0.1:8080" is server.addr too`}},
		{"negative commit delay", base + "\nstore:\n  commit_delay: -1ms\n", []string{"store.commit_delay -1ms"}},
		{"retry horizon shorter than a wait", base + "\ndelivery:\n  retry_max_wait: 10m\n  retry_horizon: 1m\n", []string{"retry_horizon", "10m0s", "1m0s"}},
		{"nhs partner without ODS codes", strings.Replace(base, "partners:\n", "partners:\n  - id: trust\n    kind: nhs\n    base_url: http://127.0.0.1:3\n", 1), []string{`nhs partner "trust" needs ods_codes`}},
		{"route to requester without nhs partner", base + `
  - message: order-status
    to: requester
    purpose: status
    lawful_basis: Art 6(1)(e)
    fields: [event.reason]
`, []string{`route to "requester" but no nhs partner`}},
		{"unknown message kind", base + `
  - message: gossip
    to: council
    purpose: status
    lawful_basis: Art 6(1)(e)
    fields: [event.reason]
`, []string{`route message "gossip" is not a known kind`, "order-status"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), "test.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	c, err := Parse([]byte(base), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxBodyBytes != 1<<20 || c.Store.Backend != "sqlite" || c.Partners[0].RetryMax != 4 ||
		c.Store.EffectiveCommitDelay() != DefaultCommitDelay {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.Server.OpsAddr != "" {
		t.Errorf("ops_addr defaults to %q, want empty (one listener)", c.Server.OpsAddr)
	}
	// 0 is a setting (never wait), not "unset".
	c, err = Parse([]byte(base+"\nstore:\n  commit_delay: 0s\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Store.EffectiveCommitDelay(); d != 0 {
		t.Errorf("commit_delay: 0s gave %s, want 0 (never wait)", d)
	}
}

const councilRoute = `
  - message: referral
    to: council
    purpose: tracking
    lawful_basis: Art 6(1)(e)
    pseudonym_key_env: ICESHUB_PSEUDONYM_KEY
    fields:
      - person.name
`

func TestParseTransformErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, fields string
		want         []string
	}{
		{"unknown transform", "      - {field: person.birthDate, as: month}\n", []string{"test.yaml:25", `unknown transform "month"`, "keep, pseudonymise"}},
		{"inapplicable transform", "      - field: person.name\n        as: year\n", []string{"test.yaml:26", `"year" cannot be applied to "person.name"`, "it can be: keep"}},
		{"pseudonymise a postcode", "      - {field: person.postcode, as: pseudonymise}\n", []string{"test.yaml:25", `cannot be applied to "person.postcode"`}},
		{"unknown key", "      - {field: person.gender, how: keep}\n", []string{"test.yaml:25", `unknown key "how"`}},
		{"no field", "      - {as: year}\n", []string{"test.yaml:25", "needs a field"}},
		{"named twice", "      - {field: person.name, as: keep}\n", []string{"test.yaml:25", `names field "person.name" twice`}},
		{"address and postcode disagree", "      - person.address\n      - {field: person.postcode, as: district}\n", []string{"test.yaml:26", "same transform"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(base+councilRoute+c.fields), "test.yaml")
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseFieldForms(t *testing.T) {
	y := base + strings.Replace(councilRoute, "    pseudonym_key_env: ICESHUB_PSEUDONYM_KEY\n", "", 1) + `      - {field: person.nhsNumber, as: pseudonymise}
      - field: person.birthDate
        as: age-band
      - {field: person.address, as: district}
      - {field: accessNotes, as: redact}
      - {field: priority, as: keep}
policy:
  pseudonym_key_env: ICESHUB_PSEUDONYM_KEY
`
	c, err := Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Routes[1]
	if got, want := strings.Join(r.Disclosed(), " "), "person.name person.nhsNumber(pseudonymise) person.birthDate(age-band) person.address(district) accessNotes(redact) priority"; got != want {
		t.Errorf("disclosed = %q, want %q", got, want)
	}
	if got := strings.Join(c.Routes[0].Disclosed(), " "); got != "person.name equipment" {
		t.Errorf("plain route disclosed = %q", got)
	}
	if r.PseudonymKeyEnv != "ICESHUB_PSEUDONYM_KEY" || !r.Pseudonymises() || c.Routes[0].Pseudonymises() {
		t.Errorf("pseudonym key env = %q", r.PseudonymKeyEnv)
	}
	if r.FieldLines[2] != 25 || r.AsLines[2] != 26 {
		t.Errorf("lines of person.birthDate: field %d, as %d; want 25, 26", r.FieldLines[2], r.AsLines[2])
	}

	t.Setenv("ICESHUB_PSEUDONYM_KEY", "")
	if err := c.CheckSecrets(); err == nil || !strings.Contains(err.Error(), "ICESHUB_PSEUDONYM_KEY") || !strings.Contains(err.Error(), "test.yaml:18") {
		t.Errorf("CheckSecrets without the key = %v", err)
	}
	t.Setenv("ICESHUB_PSEUDONYM_KEY", "a-test-key-of-32-bytes-for-tests")
	if err := c.CheckSecrets(); err != nil {
		t.Errorf("CheckSecrets with the key = %v", err)
	}
}

func TestParsePseudonymiseNeedsAKeyVariable(t *testing.T) {
	y := base + strings.Replace(councilRoute, "    pseudonym_key_env: ICESHUB_PSEUDONYM_KEY\n", "", 1) + "      - {field: person.nhsNumber, as: pseudonymise}\n"
	_, err := Parse([]byte(y), "test.yaml")
	if err == nil || !strings.Contains(err.Error(), "test.yaml:24") || !strings.Contains(err.Error(), "pseudonym_key_env") {
		t.Errorf("err = %v", err)
	}
	y = strings.Replace(y, "    fields:\n      - person.name", "    pseudonym_key_env: my-secret-key\n    fields:\n      - person.name", 1)
	if _, err := Parse([]byte(y), "test.yaml"); err == nil || !strings.Contains(err.Error(), "not an environment variable name") {
		t.Errorf("err = %v", err)
	}
}

// The stats section: NHS England's rules when absent; what is set is
// checked (each setting at least 1, standards of known priorities only).
func TestStatsDefaultsAndChecks(t *testing.T) {
	c, err := Parse([]byte(base), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Stats.Rules()
	if r.SuppressUpTo != 7 || r.RoundTo != 5 || r.MinValues != 8 || r.Standards["urgent"] != 1 || r.Standards["routine"] != 7 {
		t.Errorf("stats defaults: %+v", r)
	}
	c, err = Parse([]byte(base+"\nstats:\n  suppress_up_to: 10\n  round_to: 1\n  standards:\n    stat: 1\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Stats.Rules(); r.SuppressUpTo != 10 || r.RoundTo != 1 || r.MinValues != 8 || len(r.Standards) != 1 || r.Standards["stat"] != 1 {
		t.Errorf("stats as set: %+v", r)
	}
	for y, want := range map[string]string{
		"\nstats:\n  round_to: -5\n":              "round_to must be at least 1",
		"\nstats:\n  suppress_up_to: -1\n":        "suppress_up_to must be at least 1",
		"\nstats:\n  standards:\n    soon: 3\n":   `unknown priority "soon"`,
		"\nstats:\n  standards:\n    urgent: 0\n": "standards.urgent must be from 1",
		"\nstats:\n  threshold: 7\n":              "threshold",
	} {
		if _, err := Parse([]byte(base+y), "test.yaml"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %q", y, err, want)
		}
	}
}

func TestConsoleSettingsAndChecks(t *testing.T) {
	c, err := Parse([]byte(base+"\nconsole:\n  secure_cookies: true\n  session_idle: 10m\n  session_lifetime: 4h\n  max_failed_sign_ins: 3\n  lock_for: 1h\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if k := c.Console; !k.SecureCookies || k.SessionIdle != 10*time.Minute || k.SessionLifetime != 4*time.Hour || k.MaxFailedSignIns != 3 || k.LockFor != time.Hour {
		t.Errorf("console as set: %+v", k)
	}
	if c, err := Parse([]byte(base), "test.yaml"); err != nil || c.Console != (Console{}) {
		t.Errorf("console left out: %+v, %v (zero: the console's own defaults)", c.Console, err)
	}
	for y, want := range map[string]string{
		"\nconsole:\n  session_idle: 30s\n":                        "console.session_idle 30s must be at least 1m",
		"\nconsole:\n  lock_for: -1m\n":                            "console.lock_for -1m0s must be at least 1m",
		"\nconsole:\n  session_idle: 2h\n  session_lifetime: 1h\n": "console.session_lifetime 1h0m0s is shorter than console.session_idle 2h0m0s",
		"\nconsole:\n  max_failed_sign_ins: -2\n":                  "console.max_failed_sign_ins -2 must be at least 1",
		"\nconsole:\n  secure: true\n":                             "secure",
	} {
		if _, err := Parse([]byte(base+y), "test.yaml"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %q", y, err, want)
		}
	}
}
