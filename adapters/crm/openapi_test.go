package crm_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/iceshub/iceshub/adapters/crm"
	"github.com/iceshub/iceshub/internal/model"
	mapping "github.com/iceshub/iceshub/mappings/crm"
)

// doc is the part of an OpenAPI document the contract test reads.
type doc struct {
	OpenAPI    string                               `yaml:"openapi"`
	Paths      map[string]map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]*schema `yaml:"schemas"`
	} `yaml:"components"`
	Webhooks map[string]map[string]map[string]any `yaml:"x-webhooks"`
}

type schema struct {
	Ref                  string             `yaml:"$ref"`
	Type                 string             `yaml:"type"`
	Required             []string           `yaml:"required"`
	Properties           map[string]*schema `yaml:"properties"`
	Items                *schema            `yaml:"items"`
	Enum                 []string           `yaml:"enum"`
	AdditionalProperties *bool              `yaml:"additionalProperties"`
}

func loadDoc(t *testing.T) *doc {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return &d
}

func (d *doc) resolve(t *testing.T, s *schema) *schema {
	t.Helper()
	for s != nil && s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
		next, ok := d.Components.Schemas[name]
		if !ok {
			t.Fatalf("unresolved $ref %s", s.Ref)
		}
		s = next
	}
	return s
}

// conform checks that v (decoded JSON) fits s, and, when exhaustive, that v
// holds every property s defines: a fully populated value then proves the
// schema and the Go type name the same members.
func (d *doc) conform(t *testing.T, s *schema, v any, at string, exhaustive bool) {
	t.Helper()
	s = d.resolve(t, s)
	switch x := v.(type) {
	case map[string]any:
		if s.Type != "object" {
			t.Errorf("%s: JSON object, schema type %q", at, s.Type)
			return
		}
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				t.Errorf("%s: required member %q missing", at, r)
			}
		}
		for k, sub := range x {
			ps, ok := s.Properties[k]
			if !ok {
				if s.AdditionalProperties != nil && !*s.AdditionalProperties || len(s.Properties) > 0 {
					t.Errorf("%s: member %q not in the schema", at, k)
				}
				continue
			}
			d.conform(t, ps, sub, at+"."+k, exhaustive)
		}
		if exhaustive {
			for k := range s.Properties {
				if _, ok := x[k]; !ok {
					t.Errorf("%s: schema property %q never written by the Go type", at, k)
				}
			}
		}
	case []any:
		if s.Type != "array" {
			t.Errorf("%s: JSON array, schema type %q", at, s.Type)
			return
		}
		for _, e := range x {
			d.conform(t, s.Items, e, at+"[]", exhaustive)
		}
	case string:
		if s.Type != "string" {
			t.Errorf("%s: JSON string, schema type %q", at, s.Type)
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, x) {
			t.Errorf("%s: %q not in enum %v", at, x, s.Enum)
		}
	case float64:
		if s.Type != "number" && s.Type != "integer" {
			t.Errorf("%s: JSON number, schema type %q", at, s.Type)
		}
	default:
		t.Errorf("%s: unexpected JSON %T", at, v)
	}
}

func toJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func fullDelivery() model.Delivery {
	return model.Delivery{
		Kind: model.KindReferral, Recipient: "council-cwac", IdempotencyKey: "key-1", Fields: mapping.Fields(),
		Referral: model.Referral{
			ID: "ref-1", Source: model.Source{CorrelationID: "corr-1"}, ReceivedAt: time.Date(2025, 3, 4, 9, 15, 0, 0, time.UTC),
			Person: model.Person{
				NHSNumber: "9990000018", BirthDate: "1948-07-21", Gender: "female",
				// A real copy holds a pseudonym or an NHS number, an age band or a
				// date of birth; this one holds all, so every property is written.
				Pseudonym: strings.Repeat("ab", 32), PseudonymSystem: model.PseudonymSystem, AgeBand: "75-84",
				Name:    model.HumanName{Text: "Ms Alex Testperson", Prefix: []string{"Ms"}, Given: []string{"Alex"}, Family: "Testperson"},
				Address: model.Address{Lines: []string{"12 Fictional Way"}, City: "Chester", District: "Cheshire", Postcode: "CH2 1ZZ"},
				Telecom: []model.ContactPoint{{System: "phone", Value: "07700 900123", Use: "mobile"}},
			},
			Requester: model.Requester{PractitionerName: "Jamie Placeholder", OrganisationODS: "XX001", OrganisationName: "Example OT",
				Contact: []model.ContactPoint{{System: "email", Value: "ot@example.org", Use: "work"}}},
			Priority:        model.PriorityUrgent,
			DeliverySetting: model.DeliverySetting{Kind: model.SettingCareHome, Name: "Example House"},
			AccessNotes:     "Key safe",
			Equipment:       []model.EquipmentItem{{Code: "BED-1", Description: "Bed", Quantity: 1}},
		},
	}
}

func TestOpenAPIDescribesTheCaseTheHubSends(t *testing.T) {
	d := loadDoc(t)
	if !strings.HasPrefix(d.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", d.OpenAPI)
	}
	if len(d.Paths) != 1 || d.Paths[crm.CasesPath]["post"] == nil {
		t.Fatalf("paths = %v, want exactly POST %s", d.Paths, crm.CasesPath)
	}
	if d.Webhooks["caseEvent"]["post"]["x-status"] != "planned" {
		t.Errorf("the webhook is not marked planned")
	}
	c, err := mapping.CaseUpdate(fullDelivery())
	if err != nil {
		t.Fatal(err)
	}
	d.conform(t, &schema{Ref: "#/components/schemas/CreateCaseRequest"}, toJSON(t, c), "CreateCaseRequest", true)
	d.conform(t, &schema{Ref: "#/components/schemas/CaseCreated"},
		toJSON(t, mapping.CaseCreated{CaseReference: "CASE-1", Status: "open"}), "CaseCreated", true)
	fields := d.Components.Schemas["CaseFields"]
	var names []string
	for k := range fields.Properties {
		names = append(names, k)
	}
	slices.Sort(names)
	if !slices.Equal(names, mapping.CaseFieldNames()) {
		t.Errorf("CaseFields in openapi.yaml = %v\nmapping names          %v", names, mapping.CaseFieldNames())
	}
}

func TestOpenAPIDescribesTheSimulatorsAnswers(t *testing.T) {
	d := loadDoc(t)
	sim := crm.NewSimulator()
	_, _, created := post(t, sim, "/cases", validCase, nil)
	var v any
	if err := json.Unmarshal([]byte(created), &v); err != nil {
		t.Fatal(err)
	}
	d.conform(t, &schema{Ref: "#/components/schemas/CaseCreated"}, v, "answer", true)
	_, _, refused := post(t, sim, "/cases", `{"caseType":"pothole"}`, nil)
	if err := json.Unmarshal([]byte(refused), &v); err != nil {
		t.Fatal(err)
	}
	d.conform(t, &schema{Ref: "#/components/schemas/Error"}, v, "error", false)
}
