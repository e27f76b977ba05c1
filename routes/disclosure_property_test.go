package routes_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	"github.com/iceshub/iceshub/internal/postcode"
	crmmap "github.com/iceshub/iceshub/mappings/crm"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
	providermap "github.com/iceshub/iceshub/mappings/provider"
)

// everyTransform is a configuration whose routes use every transform.
const everyTransform = `
policy:
  pseudonym_key_env: ICESHUB_TEST_PSEUDONYM_KEY
partners:
  - id: provider
    kind: provider
    base_url: http://127.0.0.1:1
  - id: council-a
    kind: council
    base_url: http://127.0.0.1:2
    postcode_prefixes: [CH]
routes:
  - message: referral
    to: provider
    purpose: delivery
    lawful_basis: Art 6(1)(e)
    special_category_basis: Art 9(2)(h)
    fields:
      - {field: person.nhsNumber, as: pseudonymise}
      - person.name
      - {field: person.birthDate, as: age-band}
      - {field: person.address, as: district}
      - {field: accessNotes, as: redact}
      - equipment
      - clinical.weight
      - {field: clinical.notes, as: redact}
  - message: referral
    to: council
    purpose: tracking
    lawful_basis: Art 6(1)(e)
    fields:
      - {field: person.nhsNumber, as: pseudonymise}
      - {field: person.birthDate, as: year}
      - {field: person.postcode, as: district}
      - {field: accessNotes, as: redact}
      - person.telecom
      - requester.organisation
`

// markerGroup is a set of generated values that only the owner fields can
// disclose: as is, or under one of the transforms in survives (the address
// keeps its town and district when cut to its postcode district). A group
// with only set is what a transform writes instead (a pseudonym, a year, a
// postcode district, "[redacted]"): its values appear only under those
// transforms, never as is.
type markerGroup struct {
	owners   []string
	survives []string
	only     []string
	values   []string
}

// shows reports whether the group's values may appear in a payload cut by
// a rule sending its owner under transform as.
func (g markerGroup) shows(as string) bool {
	if len(g.only) > 0 {
		return contains(g.only, as)
	}
	return as == minimise.Keep || contains(g.survives, as)
}

type markedReferral struct {
	ref    model.Referral
	groups []markerGroup
	// empty are the catalogue fields left out of this referral.
	empty map[string]bool
}

// testPseudonymKey is ICESHUB_TEST_PSEUDONYM_KEY in these tests.
const testPseudonymKey = "a-test-key-of-32-bytes-for-tests"

// genReferral returns a canonical referral, with an event, holding a unique
// marker value in every field that can hold one, except a random subset of
// the catalogue's fields that it leaves empty (each with probability 1/3,
// so absence is exercised as much as presence), and which fields own each
// marker. Values a transform writes instead are groups of their own.
//
// Longer than 100 lines: it fills every field of a referral, one after another.
func genReferral(rng *rand.Rand, n int) markedReferral {
	seq := 0
	mk := func() string {
		seq++
		var b strings.Builder
		for range 8 {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
		return fmt.Sprintf("Mk%03d%03dx%s", n%1000, seq, b.String())
	}
	m := markedReferral{empty: map[string]bool{}}
	for _, f := range model.FieldNames() {
		if rng.IntN(3) == 0 {
			m.empty[f] = true
		}
	}
	has := func(f string) bool { return !m.empty[f] }
	var nhs string
	for {
		nhs = fmt.Sprintf("999%07d", rng.IntN(10_000_000))
		if nhsnumber.Check(nhs) == nil {
			break
		}
	}
	birthYear := 1920 + rng.IntN(90)
	birth := fmt.Sprintf("%04d-%02d-%02d", birthYear, 1+rng.IntN(12), 1+rng.IntN(28))
	letters := "ABDEFGHJLNPQRSTUWXYZ"
	pc := fmt.Sprintf("CH%d %d%c%c", 1+rng.IntN(66), rng.IntN(10), letters[rng.IntN(len(letters))], letters[rng.IntN(len(letters))])
	weight := fmt.Sprintf("%d.%d", 40+rng.IntN(900), 1+rng.IntN(9))
	// Neither urgent nor routine: a safeguarding case and a Communication
	// are urgent whatever the referral's priority, and a Communication
	// about an equipment issue writes a priority of its own, routine or
	// urgent from the issue type (which the record lists as event.reason),
	// whose bytes must not be taken for the referral's.
	priority := []model.Priority{model.PriorityASAP, model.PriorityStat}[rng.IntN(2)]

	group := func(owner string, survives []string, values ...string) {
		m.groups = append(m.groups, markerGroup{owners: []string{owner}, survives: survives, values: values})
	}
	instead := func(owners []string, as string, value string) {
		m.groups = append(m.groups, markerGroup{owners: owners, only: []string{as}, values: []string{value}})
	}
	r := model.Referral{ID: "ref-" + fmt.Sprint(n), Source: model.Source{CorrelationID: "corr"}, ReceivedAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	if has("person.nhsNumber") {
		r.Person.NHSNumber = nhs
		group("person.nhsNumber", nil, nhs)
		instead([]string{"person.nhsNumber"}, minimise.Pseudonymise, minimise.Pseudonym([]byte(testPseudonymKey), nhs))
	}
	if has("person.birthDate") {
		r.Person.BirthDate = birth
		group("person.birthDate", nil, birth)
		instead([]string{"person.birthDate"}, minimise.Year, fmt.Sprintf(`"birthDate":"%04d"`, birthYear))
		instead([]string{"person.birthDate"}, minimise.AgeBand, `"ageBand":"`)
	}
	if has("person.gender") {
		r.Person.Gender = mk()
		group("person.gender", nil, r.Person.Gender)
	}
	if has("person.name") {
		r.Person.Name = model.HumanName{Text: mk(), Prefix: []string{mk()}, Given: []string{mk(), mk()}, Family: mk()}
		group("person.name", nil, r.Person.Name.Text, r.Person.Name.Prefix[0], r.Person.Name.Given[0], r.Person.Name.Given[1], r.Person.Name.Family)
	}
	// person.address is the whole address, postcode included;
	// person.postcode the postcode alone. Leaving out the address keeps
	// the postcode unless it is left out too.
	if has("person.address") {
		r.Person.Address = model.Address{Lines: []string{mk(), mk()}, City: mk(), District: mk()}
		group("person.address", nil, r.Person.Address.Lines...)
		group("person.address", []string{minimise.District}, r.Person.Address.City, r.Person.Address.District)
	}
	if has("person.postcode") {
		r.Person.Address.Postcode = pc
		owners := []string{"person.address", "person.postcode"}
		m.groups = append(m.groups, markerGroup{owners: owners, values: []string{pc}})
		parts, _ := postcode.Split(pc)
		instead(owners, minimise.District, `"postcode":"`+parts.District+`"`)
	}
	if has("person.telecom") {
		r.Person.Telecom = []model.ContactPoint{{System: "phone", Value: mk(), Use: "home"}}
		group("person.telecom", nil, r.Person.Telecom[0].Value)
	}
	if has("requester.practitioner") {
		r.Requester.PractitionerName = mk()
		group("requester.practitioner", nil, r.Requester.PractitionerName)
	}
	if has("requester.organisation") {
		r.Requester.OrganisationODS, r.Requester.OrganisationName = mk(), mk()
		group("requester.organisation", nil, r.Requester.OrganisationODS, r.Requester.OrganisationName)
	}
	if has("requester.contact") {
		r.Requester.Contact = []model.ContactPoint{{System: "email", Value: mk(), Use: "work"}}
		group("requester.contact", nil, r.Requester.Contact[0].Value)
	}
	if has("priority") {
		r.Priority = priority
		group("priority", nil, `"priority":"`+string(priority)+`"`)
	}
	if has("deliverySetting") {
		r.DeliverySetting = model.DeliverySetting{Kind: model.SettingCareHome, Name: mk()}
		group("deliverySetting", nil, r.DeliverySetting.Name)
	}
	if has("accessNotes") {
		r.AccessNotes = mk()
		group("accessNotes", nil, r.AccessNotes)
		instead([]string{"accessNotes"}, minimise.Redact, `"accessNotes":"`+minimise.Redacted+`"`)
	}
	if has("equipment") {
		r.Equipment = []model.EquipmentItem{{LineID: mk(), Code: mk(), Description: mk(), Quantity: 1 + rng.IntN(5), Notes: mk()}}
		e := r.Equipment[0]
		group("equipment", nil, e.LineID, e.Code, e.Description, e.Notes)
	}
	if has("clinical.reasons") {
		r.Clinical.Reasons = []model.Coded{{Code: mk(), Display: mk()}}
		group("clinical.reasons", nil, r.Clinical.Reasons[0].Code, r.Clinical.Reasons[0].Display)
	}
	if has("clinical.conditions") {
		r.Clinical.Conditions = []model.Coded{{Code: mk(), Display: mk()}}
		group("clinical.conditions", nil, r.Clinical.Conditions[0].Code, r.Clinical.Conditions[0].Display)
	}
	if has("clinical.weight") {
		r.Clinical.Weight = &model.Observation{Code: model.Coded{Display: mk()}, Value: weight, Unit: "kg"}
		group("clinical.weight", nil, r.Clinical.Weight.Code.Display, `"bodyWeight":{"value":`+weight)
	}
	if has("clinical.observations") {
		r.Clinical.Observations = []model.Observation{{Code: model.Coded{Display: mk()}, Value: mk(), Unit: "cm"}}
		group("clinical.observations", nil, r.Clinical.Observations[0].Code.Display, r.Clinical.Observations[0].Value)
	}
	if has("clinical.notes") {
		r.Clinical.Notes = []string{mk(), mk()}
		group("clinical.notes", nil, r.Clinical.Notes...)
		instead([]string{"clinical.notes"}, minimise.Redact, `"notes":["`+minimise.Redacted+`"]`)
	}

	ev := &model.Event{ID: "evt-" + fmt.Sprint(n), ReferralID: r.ID, From: "someone", OccurredAt: r.ReceivedAt, Status: model.StatusFailedDelivery,
		Complaint: &model.Complaint{Reference: "CMP-" + fmt.Sprint(n), Council: "council-a", ContactAllowed: rng.IntN(2) == 0}}
	if has("event.scheduledDate") {
		ev.ScheduledDate = mk()
		group("event.scheduledDate", nil, ev.ScheduledDate)
	}
	if has("event.reason") {
		ev.Reason = model.Coded{Code: mk(), Display: mk()}
		group("event.reason", nil, ev.Reason.Code, ev.Reason.Display)
	}
	if has("event.description") {
		ev.Description = mk()
		group("event.description", nil, ev.Description)
	}
	if has("complaint.category") {
		ev.Complaint.Category = mk()
		group("complaint.category", nil, ev.Complaint.Category)
	}
	if has("complaint.summary") {
		ev.Complaint.Summary = mk()
		group("complaint.summary", nil, ev.Complaint.Summary)
	}
	if has("complaint.contact") {
		ev.Complaint.Contact = []model.ContactPoint{{System: "phone", Value: mk()}}
		group("complaint.contact", nil, ev.Complaint.Contact[0].Value)
	}
	if has("complaint.reply") {
		ev.Complaint.Reply = mk()
		group("complaint.reply", nil, ev.Complaint.Reply)
	}
	r.Event = ev
	m.ref = r
	return m
}

// encodeFor returns what the recipient of route r would be sent for d, the
// partner's own wire payload from the hub's outbound mappings, and the
// disclosure record the mapping gives it (what the sender returns in its
// receipt, and the hub records).
func encodeFor(t *testing.T, cfg *config.Config, r config.Route, d model.Delivery) (body any, fields []string) {
	t.Helper()
	partnerKind := config.KindCouncil
	switch r.To {
	case config.RecipientRequester:
		partnerKind = config.KindNHS
	case config.RecipientCouncil:
	default:
		p, ok := cfg.PartnerByID(r.To)
		if !ok {
			t.Fatalf("route to unknown partner %q", r.To)
		}
		partnerKind = p.Kind
	}
	var err error
	switch {
	case partnerKind == config.KindNHS && !fhirmap.UpdatesTask(d.Kind):
		var c fhirmap.Communication
		c, err = fhirmap.CommunicationFor(d, fhirmap.EmitOptions{Provider: "provider"})
		body, fields = c, fhirmap.CommunicationFields(d, c)
	case partnerKind == config.KindNHS:
		var task fhirmap.Task
		task, err = fhirmap.TaskFor(d, fhirmap.EmitOptions{Provider: "provider"})
		body, fields = task, fhirmap.TaskFields(d, task)
	case partnerKind == config.KindCouncil:
		var req crmmap.Request
		req, err = crmmap.Outbound(d)
		body, fields = req.Body, req.Fields
	case partnerKind == config.KindProvider:
		var req providermap.Request
		req, err = providermap.Outbound(d)
		body, fields = req.Body, req.Fields
	default:
		t.Fatalf("no outbound mapping known to this test for %s messages to a %s", d.Kind, partnerKind)
	}
	if err != nil {
		t.Fatalf("%s -> %s: %v", d.Kind, r.To, err)
	}
	return body, fields
}

// cutFor is the copy route r sends for a message of its kind about m, with
// the references a copy carries when it is sent.
func cutFor(t *testing.T, m markedReferral, route config.Route, now time.Time) model.Delivery {
	t.Helper()
	kind := model.Kind(route.Message)
	full := m.ref
	if kind == model.KindReferral {
		full.Event = nil
	} else {
		ev := *m.ref.Event
		ev.Kind = kind
		full.Event = &ev
	}
	cut, err := minimise.Apply(&full, route.Rules(), minimise.Options{Now: now, PseudonymKey: route.PseudonymKey()})
	if err != nil {
		t.Fatal(err)
	}
	recipient := route.To
	if recipient == config.RecipientCouncil {
		recipient = "council-a" // the generated complaint's council
	}
	return model.Delivery{Kind: kind, Recipient: recipient, IdempotencyKey: "key", Fields: route.Disclosed(),
		Purpose: route.Purpose, LawfulBasis: route.LawfulBasis, Referral: cut,
		Refs: model.References{OrderReference: "ORD-1", CaseReference: "CASE-1", ServiceRequestID: "sr-1",
			RequesterODS: m.ref.Requester.OrganisationODS}}
}

// testConfigs returns the default configuration and everyTransform, and
// checks that the latter uses every transform.
func testConfigs(t *testing.T) []*config.Config {
	t.Helper()
	t.Setenv("ICESHUB_TEST_PSEUDONYM_KEY", testPseudonymKey)
	def, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	every, err := config.Parse([]byte(everyTransform), "every-transform.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := every.CheckSecrets(); err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, r := range every.Routes {
		for _, rule := range r.Rules() {
			used[rule.As] = true
		}
	}
	for _, tr := range minimise.Transforms() {
		if !used[tr] {
			t.Fatalf("the test configuration does not exercise transform %q", tr)
		}
	}
	return []*config.Config{def, every}
}

// encodeRoute cuts m's copy for route and encodes it as its recipient gets
// it: the transform the route names for each field, the bytes sent, and
// the fields the outbound mapping records as disclosed.
func encodeRoute(t *testing.T, cfg *config.Config, route config.Route, m markedReferral, now time.Time) (as map[string]string, out string, recorded []string) {
	t.Helper()
	as = map[string]string{}
	for _, rule := range route.Rules() {
		as[rule.Field] = rule.As
	}
	body, recorded := encodeFor(t, cfg, route, cutFor(t, m, route, now))
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return as, string(b), recorded
}

// TestRecipientPayloadHoldsOnlyWhatItsPolicyAllows generates referrals with
// a unique marker in every field and checks, for every route of the default
// configuration and of one using every transform, that the encoded payload
// the recipient gets holds a marker only when its policy sends that field as
// is (or under a transform that keeps that part), and never the original
// value of a transformed field.
func TestRecipientPayloadHoldsOnlyWhatItsPolicyAllows(t *testing.T) {
	configs := testConfigs(t)
	rng := rand.New(rand.NewPCG(2026, 11))
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for n := range 200 {
		m := genReferral(rng, n)
		for _, cfg := range configs {
			for _, route := range cfg.Routes {
				as, out, _ := encodeRoute(t, cfg, route, m, now)
				for _, g := range m.groups {
					allowed := false
					for _, owner := range g.owners {
						if tr, ok := as[owner]; ok && g.shows(tr) {
							allowed = true
						}
					}
					if allowed {
						continue
					}
					for _, v := range g.values {
						if strings.Contains(out, v) {
							t.Fatalf("%s: route %s -> %s discloses a value of %v it may not (fields %v):\n%s", cfg.Source, route.Message, route.To, g.owners, route.Disclosed(), out)
						}
					}
				}
				if as["person.nhsNumber"] == minimise.Pseudonymise && !m.empty["person.nhsNumber"] &&
					(strings.Contains(out, `"nhsNumber"`) || !strings.Contains(out, model.PseudonymSystem)) {
					t.Fatalf("%s -> %s: a pseudonym must travel under its own system, never as an NHS number:\n%s", cfg.Source, route.To, out)
				}
			}
		}
	}
}

// TestDisclosureRecordIsTheWire generates referrals and events with a
// unique marker in every field and a random subset of fields left empty,
// encodes the copy of every route of the default configuration and of one
// using every transform (so every message kind the routes carry, to every
// kind of partner), and checks that the disclosure record the outbound
// mapping gives the payload (what the sender returns in its receipt and the
// hub records) lists exactly the fields whose markers are in the bytes sent,
// each under the transform its route names: a field the route allows but
// the payload does not hold is not recorded (over-stating), and one the
// payload holds is (under-stating).
func TestDisclosureRecordIsTheWire(t *testing.T) {
	configs := testConfigs(t)
	rng := rand.New(rand.NewPCG(2026, 16))
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	// Both ways, for every field of every route: absent from some
	// payloads, present in others.
	absent, present := map[string]int{}, map[string]int{}
	for n := range 300 {
		m := genReferral(rng, n)
		for _, cfg := range configs {
			for _, route := range cfg.Routes {
				as, out, recorded := encodeRoute(t, cfg, route, m, now)
				// The fields the bytes show: a named field under its
				// transform; any other as it is, when no named field
				// accounts for what shows (the postcode is the
				// address's as much as the postcode's).
				var want []string
				for _, f := range model.FieldNames() {
					tr, named := as[f]
					if !named {
						tr = minimise.Keep
					}
					key := fmt.Sprintf("%s: %s -> %s: %s", cfg.Source, route.Message, route.To, model.FieldLabel(f, tr))
					if !shown(m.groups, f, tr, as, named, out) {
						if named {
							absent[key]++
						}
						continue
					}
					present[key]++
					want = append(want, model.FieldLabel(f, tr))
				}
				got := slices.Sorted(slices.Values(recorded))
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("%s: route %s -> %s (fields %v), referral without %v:\nrecorded %v\nsent     %v\npayload %s",
						cfg.Source, route.Message, route.To, route.Disclosed(), slices.Sorted(maps.Keys(m.empty)), got, want, out)
				}
			}
		}
	}
	routes := 0
	for _, cfg := range configs {
		for _, route := range cfg.Routes {
			routes++
			for _, label := range route.Disclosed() {
				key := fmt.Sprintf("%s: %s -> %s: %s", cfg.Source, route.Message, route.To, label)
				if absent[key] == 0 || present[key] == 0 {
					t.Errorf("%s: absent from %d payloads, present in %d: both must be exercised", key, absent[key], present[key])
				}
			}
		}
	}
	t.Logf("%d routes, %d named fields: each absent from %d to %d payloads, present in %d to %d",
		routes, len(absent), minOf(absent), maxOf(absent), minOf(present), maxOf(present))
}

func minOf(m map[string]int) int { return slices.Min(slices.Collect(maps.Values(m))) }
func maxOf(m map[string]int) int { return slices.Max(slices.Collect(maps.Values(m))) }

// shown reports whether out holds a value of a group that field f owns and
// that a copy sending f under transform tr may show; for a field the route
// does not name (named false), only of a group no named field (in as)
// accounts for.
func shown(groups []markerGroup, f, tr string, as map[string]string, named bool, out string) bool {
groups:
	for _, g := range groups {
		if !contains(g.owners, f) || !g.shows(tr) {
			continue
		}
		for _, o := range g.owners {
			if otr, ok := as[o]; ok && !named && g.shows(otr) {
				continue groups
			}
		}
		for _, v := range g.values {
			if strings.Contains(out, v) {
				return true
			}
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
