package routes_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/nhsnumber"
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
// keeps its town and district when cut to its postcode district).
type markerGroup struct {
	owners   []string
	survives []string
	values   []string
}

type markedReferral struct {
	ref    model.Referral
	groups []markerGroup
}

// genReferral returns a canonical referral with a unique marker value in
// every field that can hold one, and which fields own each marker.
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
	var nhs string
	for {
		nhs = fmt.Sprintf("999%07d", rng.IntN(10_000_000))
		if nhsnumber.Check(nhs) == nil {
			break
		}
	}
	birth := fmt.Sprintf("%04d-%02d-%02d", 1920+rng.IntN(90), 1+rng.IntN(12), 1+rng.IntN(28))
	letters := "ABDEFGHJLNPQRSTUWXYZ"
	pc := fmt.Sprintf("CH%d %d%c%c", 1+rng.IntN(66), rng.IntN(10), letters[rng.IntN(len(letters))], letters[rng.IntN(len(letters))])
	weight := fmt.Sprintf("%d.%d", 40+rng.IntN(900), 1+rng.IntN(9))

	m := markedReferral{}
	group := func(owner string, survives []string, values ...string) {
		m.groups = append(m.groups, markerGroup{owners: []string{owner}, survives: survives, values: values})
	}
	r := model.Referral{ID: "ref-" + fmt.Sprint(n), Source: model.Source{CorrelationID: "corr"}, ReceivedAt: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	r.Person = model.Person{
		NHSNumber: nhs, BirthDate: birth, Gender: mk(),
		Name:    model.HumanName{Text: mk(), Prefix: []string{mk()}, Given: []string{mk(), mk()}, Family: mk()},
		Address: model.Address{Lines: []string{mk(), mk()}, City: mk(), District: mk(), Postcode: pc},
		Telecom: []model.ContactPoint{{System: "phone", Value: mk(), Use: "home"}},
	}
	group("person.nhsNumber", nil, nhs)
	group("person.birthDate", nil, birth)
	group("person.gender", nil, r.Person.Gender)
	group("person.name", nil, r.Person.Name.Text, r.Person.Name.Prefix[0], r.Person.Name.Given[0], r.Person.Name.Given[1], r.Person.Name.Family)
	group("person.address", nil, r.Person.Address.Lines...)
	group("person.address", []string{minimise.District}, r.Person.Address.City, r.Person.Address.District)
	m.groups = append(m.groups, markerGroup{owners: []string{"person.address", "person.postcode"}, values: []string{pc}})
	group("person.telecom", nil, r.Person.Telecom[0].Value)
	r.Requester = model.Requester{PractitionerName: mk(), OrganisationODS: mk(), OrganisationName: mk(),
		Contact: []model.ContactPoint{{System: "email", Value: mk(), Use: "work"}}}
	group("requester.practitioner", nil, r.Requester.PractitionerName)
	group("requester.organisation", nil, r.Requester.OrganisationODS, r.Requester.OrganisationName)
	group("requester.contact", nil, r.Requester.Contact[0].Value)
	r.Priority = model.PriorityUrgent
	r.DeliverySetting = model.DeliverySetting{Kind: model.SettingCareHome, Name: mk()}
	group("deliverySetting", nil, r.DeliverySetting.Name)
	r.AccessNotes = mk()
	group("accessNotes", nil, r.AccessNotes)
	r.Equipment = []model.EquipmentItem{{LineID: mk(), Code: mk(), Description: mk(), Quantity: 1 + rng.IntN(5), Notes: mk()}}
	e := r.Equipment[0]
	group("equipment", nil, e.LineID, e.Code, e.Description, e.Notes)
	r.Clinical = model.Clinical{
		Reasons:      []model.Coded{{Code: mk(), Display: mk()}},
		Conditions:   []model.Coded{{Code: mk(), Display: mk()}},
		Weight:       &model.Observation{Code: model.Coded{Display: mk()}, Value: weight, Unit: "kg"},
		Observations: []model.Observation{{Code: model.Coded{Display: mk()}, Value: mk(), Unit: "cm"}},
		Notes:        []string{mk(), mk()},
	}
	c := r.Clinical
	group("clinical.reasons", nil, c.Reasons[0].Code, c.Reasons[0].Display)
	group("clinical.conditions", nil, c.Conditions[0].Code, c.Conditions[0].Display)
	group("clinical.weight", nil, c.Weight.Code.Display, `"bodyWeight":{"value":`+weight)
	group("clinical.observations", nil, c.Observations[0].Code.Display, c.Observations[0].Value)
	group("clinical.notes", nil, c.Notes...)
	r.Event = &model.Event{ID: "evt-" + fmt.Sprint(n), ReferralID: r.ID, From: "someone", OccurredAt: r.ReceivedAt, Status: model.StatusFailedDelivery,
		ScheduledDate: mk(), Reason: model.Coded{Code: mk(), Display: mk()}, Description: mk(),
		Complaint: &model.Complaint{Reference: "CMP-" + fmt.Sprint(n), Council: "council-a", Category: mk(), Summary: mk(), ContactAllowed: true,
			Contact: []model.ContactPoint{{System: "phone", Value: mk()}}, Reply: mk()}}
	ev := r.Event
	group("event.scheduledDate", nil, ev.ScheduledDate)
	group("event.reason", nil, ev.Reason.Code, ev.Reason.Display)
	group("event.description", nil, ev.Description)
	group("complaint.category", nil, ev.Complaint.Category)
	group("complaint.summary", nil, ev.Complaint.Summary)
	group("complaint.contact", nil, ev.Complaint.Contact[0].Value)
	group("complaint.reply", nil, ev.Complaint.Reply)
	m.ref = r
	return m
}

// encodeFor returns what the recipient of route r would be sent for d: the
// partner's own wire payload, from the hub's outbound mappings.
func encodeFor(t *testing.T, cfg *config.Config, r config.Route, d model.Delivery) any {
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
	var (
		out any
		err error
	)
	switch {
	case partnerKind == config.KindNHS && !fhirmap.UpdatesTask(d.Kind):
		out, err = fhirmap.CommunicationFor(d, fhirmap.EmitOptions{Provider: "provider"})
	case partnerKind == config.KindNHS:
		out, err = fhirmap.TaskFor(d, fhirmap.EmitOptions{Provider: "provider"})
	case partnerKind == config.KindCouncil:
		out, err = crmmap.Outbound(d)
	case partnerKind == config.KindProvider:
		out, err = providermap.Outbound(d)
	default:
		t.Fatalf("no outbound mapping known to this test for %s messages to a %s", d.Kind, partnerKind)
	}
	if err != nil {
		t.Fatalf("%s -> %s: %v", d.Kind, r.To, err)
	}
	return out
}

// TestRecipientPayloadHoldsOnlyWhatItsPolicyAllows generates referrals with
// a unique marker in every field and checks, for every route of the default
// configuration and of one using every transform, that the encoded payload
// the recipient gets holds a marker only when its policy sends that field as
// is (or under a transform that keeps that part), and never the original
// value of a transformed field.
func TestRecipientPayloadHoldsOnlyWhatItsPolicyAllows(t *testing.T) {
	t.Setenv("ICESHUB_TEST_PSEUDONYM_KEY", "a-test-key-of-32-bytes-for-tests")
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

	rng := rand.New(rand.NewPCG(2026, 11))
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	for n := range 200 {
		m := genReferral(rng, n)
		for _, cfg := range []*config.Config{def, every} {
			for _, route := range cfg.Routes {
				as := map[string]string{}
				for _, rule := range route.Rules() {
					as[rule.Field] = rule.As
				}
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
				d := model.Delivery{Kind: kind, Recipient: recipient, IdempotencyKey: "key", Fields: route.Disclosed(),
					Purpose: route.Purpose, LawfulBasis: route.LawfulBasis, Referral: cut,
					Refs: model.References{OrderReference: "ORD-1", CaseReference: "CASE-1", ServiceRequestID: "sr-1"}}
				b, err := json.Marshal(encodeFor(t, cfg, route, d))
				if err != nil {
					t.Fatal(err)
				}
				out := string(b)
				for _, g := range m.groups {
					allowed := false
					for _, owner := range g.owners {
						if tr, ok := as[owner]; ok && (tr == minimise.Keep || contains(g.survives, tr)) {
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
				if as["person.nhsNumber"] == minimise.Pseudonymise &&
					(strings.Contains(out, `"nhsNumber"`) || !strings.Contains(out, model.PseudonymSystem)) {
					t.Fatalf("%s -> %s: a pseudonym must travel under its own system, never as an NHS number:\n%s", cfg.Source, route.To, out)
				}
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
