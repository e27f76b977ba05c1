package crm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	"github.com/iceshub/iceshub/mappings/crm"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/crm/golden")

const dir = "../../testdata/crm"

func readDelivery(t *testing.T, path string) model.Delivery {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d model.Delivery
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

// TestCaseUpdateGolden maps every copy in testdata/crm and compares the case
// with testdata/crm/golden/<name>.json. Run with -update to rewrite the
// golden files, then review the diff.
func TestCaseUpdateGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in %s (%v)", dir, err)
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			d := readDelivery(t, in)
			if n := d.Referral.Person.NHSNumber; n != "" && (!strings.HasPrefix(n, "999") || nhsnumber.Check(n) != nil) {
				t.Fatalf("fixture NHS number %s is not a valid number from the 999 test range", n)
			}
			c, err := crm.CaseUpdate(d)
			if err != nil {
				t.Fatalf("CaseUpdate: %v", err)
			}
			got, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join(dir, "golden", name)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("case differs from %s (run go test -update and review the diff):\n%s", golden, got)
			}
		})
	}
}

func TestCaseOfNHSNumberAndPostcodeHoldsNothingElse(t *testing.T) {
	d := readDelivery(t, filepath.Join(dir, "case-nhs-number-and-postcode-only.json"))
	c, err := crm.CaseUpdate(d)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		crm.FieldNHSNumber:          "9990000034",
		crm.FieldPostcode:           "CH64 9ZZ",
		crm.FieldReferralReceivedAt: "2025-03-06T08:00:00Z",
	}
	if !mapsEqual(c.Fields, want) {
		t.Errorf("fields = %v, want %v", c.Fields, want)
	}
	if c.CaseType != crm.CaseTypeEquipmentOrder || c.Status != crm.StatusOrderPlaced || c.ExternalReference != d.Referral.ID ||
		len(c.Notes) != 1 || c.Notes[0].Text != crm.NoteOrderPlaced || c.Title != crm.TitleEquipmentOrder {
		t.Errorf("case = %+v", c)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sentinelReferral() (model.Referral, map[string][]string) {
	r := model.Referral{
		ID:         "ref-sentinel",
		Source:     model.Source{CorrelationID: "corr-sentinel"},
		ReceivedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Person: model.Person{
			NHSNumber: "9990000034",
			Name:      model.HumanName{Prefix: []string{"Prefixmarker"}, Given: []string{"Givenmarker"}, Family: "Familymarker"},
			BirthDate: "1931-02-03",
			Gender:    "gendermarker",
			Address:   model.Address{Lines: []string{"1 Linemarker Road"}, City: "Citymarker", District: "Districtmarker", Postcode: "ZZ9 9ZZ"},
			Telecom:   []model.ContactPoint{{System: "phone", Value: "07700 900555", Use: "mobile"}, {System: "email", Value: "person@telecom.example"}},
		},
		Requester: model.Requester{
			PractitionerName: "Practitionermarker", OrganisationODS: "ODSMARK1", OrganisationName: "Orgnamemarker",
			Contact: []model.ContactPoint{{System: "phone", Value: "01632 960555", Use: "work"}},
		},
		Priority:        model.PriorityStat,
		DeliverySetting: model.DeliverySetting{Kind: model.SettingSupported, Name: "Settingnamemarker"},
		AccessNotes:     "Accessmarker",
		Equipment:       []model.EquipmentItem{{Code: "EQMARK-1", Description: "Equipmentmarker", Quantity: 7}},
		Clinical: model.Clinical{
			Reasons:      []model.Coded{{Display: "Reasonmarker"}},
			Conditions:   []model.Coded{{Display: "Conditionmarker"}},
			Weight:       &model.Observation{Value: "87.25", Unit: "kg"},
			Observations: []model.Observation{{Code: model.Coded{Display: "Observationmarker"}, Value: "1"}},
			Notes:        []string{"Clinicalnotemarker"},
		},
	}
	return r, map[string][]string{
		"person.nhsNumber":       {"9990000034"},
		"person.name":            {"Prefixmarker", "Givenmarker", "Familymarker"},
		"person.birthDate":       {"1931-02-03"},
		"person.gender":          {"gendermarker"},
		"person.address":         {"Linemarker", "Citymarker", "Districtmarker", "ZZ9 9ZZ"},
		"person.postcode":        {"ZZ9 9ZZ"},
		"person.telecom":         {"07700 900555", "person@telecom.example"},
		"requester.practitioner": {"Practitionermarker"},
		"requester.organisation": {"ODSMARK1", "Orgnamemarker"},
		"requester.contact":      {"01632 960555"},
		"priority":               {`"stat"`},
		"deliverySetting":        {"supported-living", "Settingnamemarker"},
		"accessNotes":            {"Accessmarker"},
		"equipment":              {"Equipmentmarker", crm.FieldEquipmentLineCount, crm.FieldEquipmentSummary},
		"clinical.reasons":       {"Reasonmarker"},
		"clinical.conditions":    {"Conditionmarker"},
		"clinical.weight":        {"87.25"},
		"clinical.observations":  {"Observationmarker"},
		"clinical.notes":         {"Clinicalnotemarker"},
	}
}

// TestCaseCarriesExactlyTheCopy proves, field by field, that a case holds
// every value of the fields its copy was cut to and none of any other, and
// that a copy with a field the case contract cannot carry is refused.
func TestCaseCarriesExactlyTheCopy(t *testing.T) {
	// The referral also has an event, whose content a case never carries.
	full, sentinels := withEvent(model.KindOrderStatus)
	subsets := [][]string{nil, crm.Fields(), {"person.nhsNumber", "person.postcode"}}
	for _, f := range model.FieldNames() {
		subsets = append(subsets, []string{f})
	}
	for _, allowed := range subsets {
		t.Run(strings.Join(allowed, "+"), func(t *testing.T) {
			cut, err := minimise.Referral(&full, allowed)
			if err != nil {
				t.Fatal(err)
			}
			d := model.Delivery{Kind: model.KindReferral, Recipient: "council-a", IdempotencyKey: "key", Fields: allowed, Referral: cut}
			c, err := crm.CaseUpdate(d)
			carried := true
			for _, f := range allowed {
				carried = carried && slices.Contains(crm.Fields(), f)
			}
			if !carried {
				if !errors.Is(err, crm.ErrFieldNotCarried) {
					t.Fatalf("CaseUpdate err = %v, want ErrFieldNotCarried", err)
				}
				// Even when Fields is silent, clinical content is refused.
				d.Fields = nil
				if _, err := crm.CaseUpdate(d); !errors.Is(err, crm.ErrFieldNotCarried) {
					t.Fatalf("CaseUpdate without Fields err = %v, want ErrFieldNotCarried", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("CaseUpdate: %v", err)
			}
			out, _ := json.Marshal(c)
			s := string(out)
			present := map[string]bool{}
			for _, f := range allowed {
				for _, v := range sentinels[f] {
					present[v] = true
					if !strings.Contains(s, v) {
						t.Errorf("field %s allowed but %q missing from the case: %s", f, v, s)
					}
				}
			}
			for f, vs := range sentinels {
				for _, v := range vs {
					if !present[v] && strings.Contains(s, v) {
						t.Errorf("field %s not in the copy but %q is in the case: %s", f, v, s)
					}
				}
			}
			if strings.Contains(c.Title, full.Person.NHSNumber) || strings.Contains(c.Title, "marker") {
				t.Errorf("title holds personal data: %q", c.Title)
			}
		})
	}
}

func TestCaseFieldsAreInTheCatalogueAndNeverClinical(t *testing.T) {
	for _, f := range crm.Fields() {
		if _, ok := model.LookupField(f); !ok {
			t.Errorf("crm.Fields() names %q, not in the catalogue", f)
		}
		if strings.HasPrefix(f, "clinical.") {
			t.Errorf("a council case must not carry %s", f)
		}
	}
}

func TestCaseNameWithoutText(t *testing.T) {
	d := model.Delivery{Kind: model.KindReferral, IdempotencyKey: "k", Referral: model.Referral{ID: "r",
		Person: model.Person{Name: model.HumanName{Prefix: []string{"Mx"}, Given: []string{"Robin", "Lee"}, Family: "Examplename"}}}}
	c, err := crm.CaseUpdate(d)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{crm.FieldPersonName: "Mx Robin Lee Examplename", crm.FieldPersonGivenNames: "Robin Lee", crm.FieldPersonFamilyName: "Examplename"}
	if !mapsEqual(c.Fields, want) {
		t.Errorf("fields = %v, want %v", c.Fields, want)
	}
}

func TestCaseUpdateErrors(t *testing.T) {
	base := func() model.Delivery {
		return model.Delivery{Kind: model.KindReferral, Recipient: "council-a", IdempotencyKey: "key", Referral: model.Referral{ID: "ref"}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*model.Delivery)
		want   error
	}{
		{"unknown kind", func(d *model.Delivery) { d.Kind = "complaint" }, crm.ErrUnsupportedKind},
		{"clinical field named", func(d *model.Delivery) { d.Fields = []string{"person.nhsNumber", "clinical.notes"} }, crm.ErrFieldNotCarried},
		{"no referral id", func(d *model.Delivery) { d.Referral.ID = "" }, crm.ErrInvalidCopy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base()
			tc.mutate(&d)
			if _, err := crm.CaseUpdate(d); !errors.Is(err, tc.want) {
				t.Errorf("CaseUpdate err = %v, want %v", err, tc.want)
			}
		})
	}
	c, err := crm.CaseUpdate(base())
	if err != nil || c.Fields != nil {
		t.Errorf("CaseUpdate(minimal) = %+v, %v; want a case without fields", c, err)
	}
}

func TestCaseFieldNamesListsEveryFieldTheMappingWrites(t *testing.T) {
	full, _ := sentinelReferral()
	full.Clinical = model.Clinical{}
	full.Person.Name.Text = "Prefixmarker Givenmarker Familymarker"
	full.Person.Pseudonym, full.Person.PseudonymSystem, full.Person.AgeBand = "pseudonymmarker", model.PseudonymSystem, "75-84"
	c, err := crm.CaseUpdate(model.Delivery{Kind: model.KindReferral, IdempotencyKey: "k", Fields: crm.Fields(), Referral: full})
	if err != nil {
		t.Fatal(err)
	}
	// A safeguarding case writes the others.
	full.Event = &model.Event{Kind: model.KindSafeguarding, From: "provider", OccurredAt: time.Now(), Reason: model.Coded{Code: "neglect", Display: "Neglect"}}
	sg, err := crm.Outbound(model.Delivery{Kind: model.KindSafeguarding, IdempotencyKey: "k", Referral: full,
		Refs: model.References{OrderReference: "ORD-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	for k := range c.Fields {
		written = append(written, k)
	}
	for k := range sg.Body.(crm.CreateCaseRequest).Fields {
		if !slices.Contains(written, k) {
			written = append(written, k)
		}
	}
	slices.Sort(written)
	if !slices.Equal(written, crm.CaseFieldNames()) {
		t.Errorf("written %v\nlisted  %v", written, crm.CaseFieldNames())
	}
}

func TestDecodeCaseCreated(t *testing.T) {
	got, err := crm.DecodeCaseCreated([]byte(`{"caseReference":"CASE-000042","status":"open","owner":"ices-team"}`))
	if err != nil || got != (crm.CaseCreated{CaseReference: "CASE-000042", Status: "open"}) {
		t.Fatalf("DecodeCaseCreated = %+v, %v", got, err)
	}
	for _, bad := range []string{
		``, `null`, `[]`, `{"status":"open"}`, `{"caseReference":42}`, `{"caseReference":"Case for Alex Testperson"}`, `{`,
	} {
		_, err := crm.DecodeCaseCreated([]byte(bad))
		if !errors.Is(err, crm.ErrBadAnswer) {
			t.Errorf("DecodeCaseCreated(%q) err = %v, want ErrBadAnswer", bad, err)
			continue
		}
		if strings.Contains(err.Error(), "Testperson") {
			t.Errorf("error quotes the answer: %v", err)
		}
	}
}
