package provider_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	"github.com/iceshub/iceshub/mappings/provider"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/provider/golden")

const dir = "../../testdata/provider"

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

// TestOrderGolden maps every copy in testdata/provider and compares the
// order with testdata/provider/golden/<name>.json. Run with -update to
// rewrite the golden files, then review the diff.
func TestOrderGolden(t *testing.T) {
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
			order, err := provider.Order(d)
			if err != nil {
				t.Fatalf("Order: %v", err)
			}
			got, err := json.MarshalIndent(order, "", "  ")
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
				t.Errorf("order differs from %s (run go test -update and review the diff):\n%s", golden, got)
			}
		})
	}
}

func TestOrderOfNHSNumberAndPostcodeHoldsNothingElse(t *testing.T) {
	d := readDelivery(t, filepath.Join(dir, "order-nhs-number-and-postcode-only.json"))
	order, err := provider.Order(d)
	if err != nil {
		t.Fatal(err)
	}
	want := provider.OrderRequest{
		HubReference:   d.Referral.ID,
		IdempotencyKey: d.IdempotencyKey,
		CorrelationID:  d.Referral.Source.CorrelationID,
		ReceivedAt:     "2025-03-06T08:00:00Z",
		Person:         &provider.Person{NHSNumber: "9990000034"},
		Delivery:       &provider.DeliveryDetails{Address: &provider.Address{Postcode: "CH64 9ZZ"}},
	}
	gotJSON, _ := json.Marshal(order)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("order =\n%s\nwant\n%s", gotJSON, wantJSON)
	}
	for _, absent := range []string{"name", "contacts", "birthDate", "items", "safeWorkingLoad", "clinical", "requester", "setting", "accessNotes", "priority"} {
		if bytes.Contains(gotJSON, []byte(`"`+absent+`"`)) {
			t.Errorf("order holds %q though the copy did not", absent)
		}
	}
}

// sentinels gives every catalogue field a full referral's distinctive
// values, so that a test can tell which fields an output carries.
func sentinelReferral() (model.Referral, map[string][]string) {
	r := model.Referral{
		ID:         "ref-sentinel",
		Source:     model.Source{CorrelationID: "corr-sentinel"},
		ReceivedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Person: model.Person{
			NHSNumber: "9990000034",
			Name:      model.HumanName{Text: "Prefixmarker Givenmarker Familymarker", Prefix: []string{"Prefixmarker"}, Given: []string{"Givenmarker"}, Family: "Familymarker"},
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
		Equipment:       []model.EquipmentItem{{LineID: "lineidmark", Code: "EQMARK-1", System: "https://eqsystem.example", Description: "Equipmentmarker", Quantity: 7, Notes: "Linenotemarker"}},
		Clinical: model.Clinical{
			Reasons:      []model.Coded{{Code: "reasoncode", Display: "Reasonmarker"}},
			Conditions:   []model.Coded{{Code: "conditioncode", Display: "Conditionmarker"}},
			Weight:       &model.Observation{Code: model.Coded{Display: "Weightmarker"}, Value: "87.25", Unit: "kg"},
			Observations: []model.Observation{{Code: model.Coded{Display: "Observationmarker"}, Value: "obsvaluemarker"}},
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
		"equipment":              {"EQMARK-1", "Equipmentmarker", "Linenotemarker", "lineidmark", "eqsystem"},
		"clinical.reasons":       {"Reasonmarker", "reasoncode"},
		"clinical.conditions":    {"Conditionmarker", "conditioncode"},
		"clinical.weight":        {"87.25", "Weightmarker", "safeWorkingLoad"},
		"clinical.observations":  {"Observationmarker", "obsvaluemarker"},
		"clinical.notes":         {"Clinicalnotemarker"},
	}
}

// TestOrderCarriesExactlyTheCopy proves, field by field, that an order holds
// every value of the fields its copy was cut to and none of any other.
func TestOrderCarriesExactlyTheCopy(t *testing.T) {
	full, sentinels := sentinelReferral()
	if got, want := slices.Sorted(maps.Keys(sentinels)), provider.Fields(); !slices.Equal(got, want) {
		t.Fatalf("sentinels cover %v, the order contract carries %v: give the new field sentinels", got, want)
	}
	subsets := [][]string{nil, provider.Fields()}
	for _, f := range provider.Fields() {
		subsets = append(subsets, []string{f})
	}
	subsets = append(subsets, []string{"person.nhsNumber", "person.postcode"})
	for _, allowed := range subsets {
		t.Run(strings.Join(allowed, "+"), func(t *testing.T) {
			cut, err := minimise.Referral(&full, allowed)
			if err != nil {
				t.Fatal(err)
			}
			d := model.Delivery{Kind: model.KindReferral, Recipient: "provider", IdempotencyKey: "key", Fields: allowed, Referral: cut}
			order, err := provider.Order(d)
			if err != nil {
				t.Fatalf("Order: %v", err)
			}
			out, _ := json.Marshal(order)
			s := string(out)
			present := map[string]bool{}
			for _, f := range allowed {
				for _, v := range sentinels[f] {
					present[v] = true
					if !strings.Contains(s, v) {
						t.Errorf("field %s allowed but %q missing from the order: %s", f, v, s)
					}
				}
			}
			for f, vs := range sentinels {
				for _, v := range vs {
					if !present[v] && strings.Contains(s, v) {
						t.Errorf("field %s not in the copy but %q is in the order: %s", f, v, s)
					}
				}
			}
		})
	}
}

func TestEveryCatalogueFieldIsCarriedOrLeftOutOnPurpose(t *testing.T) {
	// When the catalogue grows, decide whether the provider contract carries
	// the new field: add it to a request or leave it out on purpose here.
	leftOut := []string{
		"complaint.reply",     // the provider writes the reply; it never receives one
		"event.scheduledDate", // the provider sets the dates itself
	}
	got := slices.Clone(leftOut)
	for _, k := range provider.Kinds() {
		for _, f := range provider.FieldsFor(k) {
			if !slices.Contains(got, f) {
				got = append(got, f)
			}
		}
	}
	slices.Sort(got)
	if want := model.FieldNames(); !slices.Equal(got, want) {
		t.Errorf("carried or left out = %v\ncatalogue           = %v", got, want)
	}
	if !slices.Equal(provider.Fields(), provider.FieldsFor(model.KindReferral)) {
		t.Error("Fields() differs from FieldsFor(referral)")
	}
	if provider.FieldsFor(model.KindSafeguarding) != nil || provider.FieldsFor(model.KindOrderStatus) != nil {
		t.Error("the provider receives no safeguarding concerns or order statuses")
	}
}

func TestOrderErrors(t *testing.T) {
	base := func() model.Delivery {
		return model.Delivery{Kind: model.KindReferral, Recipient: "provider", IdempotencyKey: "key", Referral: model.Referral{ID: "ref"}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*model.Delivery)
		want   error
	}{
		{"unknown kind", func(d *model.Delivery) { d.Kind = "complaint" }, provider.ErrUnsupportedKind},
		{"field not in the contract", func(d *model.Delivery) { d.Fields = []string{"person.nhsNumber", "person.shoeSize"} }, provider.ErrFieldNotCarried},
		{"no referral id", func(d *model.Delivery) { d.Referral.ID = " " }, provider.ErrInvalidCopy},
		{"no idempotency key", func(d *model.Delivery) { d.IdempotencyKey = "" }, provider.ErrInvalidCopy},
		{"weight not a number", func(d *model.Delivery) { d.Referral.Clinical.Weight = &model.Observation{Value: "heavy"} }, provider.ErrInvalidCopy},
		{"weight NaN", func(d *model.Delivery) { d.Referral.Clinical.Weight = &model.Observation{Value: "NaN"} }, provider.ErrInvalidCopy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base()
			tc.mutate(&d)
			if _, err := provider.Order(d); !errors.Is(err, tc.want) {
				t.Errorf("Order err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := provider.Order(base()); err != nil {
		t.Errorf("Order(minimal) = %v", err)
	}
}

func TestOrderDoesNotChangeItsInput(t *testing.T) {
	d := readDelivery(t, filepath.Join(dir, "order-home-urgent.json"))
	before, _ := json.Marshal(d)
	order, err := provider.Order(d)
	if err != nil {
		t.Fatal(err)
	}
	order.Person.Name.Given[0] = "changed"
	order.Delivery.Address.Lines[0] = "changed"
	after, _ := json.Marshal(d)
	if !bytes.Equal(before, after) {
		t.Error("the order shares slices with the copy")
	}
}

func TestDecodeOrderAccepted(t *testing.T) {
	got, err := provider.DecodeOrderAccepted([]byte(`{"orderReference":"ORD-000123","status":"received","eta":"2025-03-05"}`))
	if err != nil || got != (provider.OrderAccepted{OrderReference: "ORD-000123", Status: "received"}) {
		t.Fatalf("DecodeOrderAccepted = %+v, %v", got, err)
	}
	for _, bad := range []string{
		``, `   `, `null`, `[]`, `"ORD-1"`, `{"status":"received"}`, `{"orderReference":""}`,
		`{"orderReference":123}`, `{"orderReference":"Alex Testperson, 12 Fictional Way"}`, `{"orderReference":"ORD-1"`,
		`{"orderReference":"` + strings.Repeat("A", 129) + `"}`,
	} {
		_, err := provider.DecodeOrderAccepted([]byte(bad))
		if !errors.Is(err, provider.ErrBadAnswer) {
			t.Errorf("DecodeOrderAccepted(%q) err = %v, want ErrBadAnswer", bad, err)
			continue
		}
		if strings.Contains(err.Error(), "Testperson") {
			t.Errorf("error quotes the answer: %v", err)
		}
	}
}
