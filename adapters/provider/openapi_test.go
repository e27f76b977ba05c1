package provider_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/mappings/inbound"
	mapping "github.com/iceshub/iceshub/mappings/provider"
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
		Kind: model.KindReferral, Recipient: "provider", IdempotencyKey: "key-1", Fields: mapping.Fields(),
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
			Equipment:       []model.EquipmentItem{{LineID: "dr-1", Code: "BED-1", System: "https://cat.example", Description: "Bed", Quantity: 1, Notes: "n"}},
			Clinical: model.Clinical{
				Reasons:      []model.Coded{{System: "s", Code: "c", Display: "d"}},
				Conditions:   []model.Coded{{System: "s", Code: "c", Display: "d"}},
				Weight:       &model.Observation{Code: model.Coded{System: "http://loinc.org", Code: "29463-7", Display: "Body weight"}, Value: "80", Unit: "kg"},
				Observations: []model.Observation{{Code: model.Coded{System: "s", Code: "c", Display: "Height"}, Value: "170", Unit: "cm"}},
				Notes:        []string{"note"},
			},
		},
	}
}

func TestOpenAPIDescribesTheOrderTheHubSends(t *testing.T) {
	d := loadDoc(t)
	if !strings.HasPrefix(d.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", d.OpenAPI)
	}
	paths := []string{mapping.OrdersPath, mapping.CancellationPath, mapping.AmendmentsPath, mapping.CollectionsPath, mapping.ComplaintsPath}
	if len(d.Paths) != len(paths) {
		t.Errorf("paths = %v, want %v", d.Paths, paths)
	}
	for _, p := range paths {
		if d.Paths[p]["post"] == nil {
			t.Errorf("POST %s is not documented", p)
		}
	}
	if w := d.Webhooks["providerEvent"]["post"]; w["x-status"] != "implemented" || w["x-path"] != provider.EventsPath {
		t.Errorf("the webhook is not documented as implemented at %s: %v", provider.EventsPath, w)
	}
	order, err := mapping.Order(fullDelivery())
	if err != nil {
		t.Fatal(err)
	}
	d.conform(t, &schema{Ref: "#/components/schemas/OrderRequest"}, toJSON(t, order), "OrderRequest", true)
	d.conform(t, &schema{Ref: "#/components/schemas/OrderAccepted"},
		toJSON(t, mapping.OrderAccepted{OrderReference: "ORD-1", Status: "received"}), "OrderAccepted", true)
}

func TestOpenAPIDescribesTheSimulatorsAnswers(t *testing.T) {
	d := loadDoc(t)
	sim := provider.NewSimulator()
	_, _, created := post(t, sim, "/orders", validOrder, nil)
	var v any
	if err := json.Unmarshal([]byte(created), &v); err != nil {
		t.Fatal(err)
	}
	d.conform(t, &schema{Ref: "#/components/schemas/OrderAccepted"}, v, "answer", true)
	_, _, refused := post(t, sim, "/orders", `{"hubReference":"r","idempotencyKey":"key-1"}`, nil)
	if err := json.Unmarshal([]byte(refused), &v); err != nil {
		t.Fatal(err)
	}
	d.conform(t, &schema{Ref: "#/components/schemas/Error"}, v, "error", false)
}

// TestOpenAPIDescribesTheChangesTheHubSends checks every new request body,
// fully populated, against its schema, both ways.
func TestOpenAPIDescribesTheChangesTheHubSends(t *testing.T) {
	d := loadDoc(t)
	at := time.Date(2025, 3, 10, 14, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		schema string
		kind   model.Kind
		event  *model.Event
	}{
		{"OrderRequest", model.KindAmendment, &model.Event{Kind: model.KindAmendment, OccurredAt: at}},
		{"CancellationRequest", model.KindCancellation, &model.Event{Kind: model.KindCancellation, From: "nhs", OccurredAt: at,
			Reason: model.Coded{Code: "entered-in-error", Display: "Sent in error"}}},
		{"CollectionRequest", model.KindCollection, &model.Event{Kind: model.KindCollection, From: "council-cwac", OccurredAt: at,
			Reason: model.Coded{Code: "died", Display: "Died"}, Description: "After the funeral"}},
		{"ComplaintRequest", model.KindComplaint, &model.Event{Kind: model.KindComplaint, From: "council-cwac", OccurredAt: at,
			Complaint: &model.Complaint{Reference: "COMP-1", Council: "council-cwac", Category: "late-delivery", Summary: "Late",
				ContactAllowed: true, Contact: []model.ContactPoint{{System: "phone", Value: "01632 960123", Use: "home"}}}}},
	} {
		del := fullDelivery()
		del.Kind, del.Fields, del.Referral.Event = tc.kind, mapping.FieldsFor(tc.kind), tc.event
		del.Refs.OrderReference = "ORD-000001"
		req, err := mapping.Outbound(del)
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		d.conform(t, &schema{Ref: "#/components/schemas/" + tc.schema}, toJSON(t, req.Body), tc.schema, true)
	}
	d.conform(t, &schema{Ref: "#/components/schemas/Acknowledgement"},
		toJSON(t, mapping.Acknowledgement{Reference: "CAN-000001", Status: "received"}), "Acknowledgement", true)
}

// TestOpenAPIDescribesTheEventsTheHubReceives checks the webhook's body and
// answer against the Go types, both ways, and that every event type the
// hub parses is documented.
func TestOpenAPIDescribesTheEventsTheHubReceives(t *testing.T) {
	d := loadDoc(t)
	full := mapping.Event{EventID: "e", Type: mapping.EventOrderFailedDelivery, OrderReference: "ORD-1", OccurredAt: "2025-03-10T14:30:00Z",
		ScheduledDate: "2025-03-11", Reason: &mapping.Reason{Code: "no-access", Text: "t"}, IssueType: "unsafe", Description: "d",
		Category: "neglect", ComplaintReference: "COMP-1", Reply: "r"}
	d.conform(t, &schema{Ref: "#/components/schemas/ProviderEvent"}, toJSON(t, full), "ProviderEvent", true)
	if got, want := d.Components.Schemas["ProviderEvent"].Properties["type"].Enum, mapping.EventTypes(); !slices.Equal(got, want) {
		t.Errorf("documented event types %v, parsed %v", got, want)
	}
	d.conform(t, &schema{Ref: "#/components/schemas/EventAccepted"},
		toJSON(t, inbound.Accepted{EventID: "e", ReferralID: "r", Status: "accepted"}), "EventAccepted", true)
}

// TestOpenAPIStatusTableIsWhatTheHubEnforces reads the table of order
// status moves in ProviderEvent's description and compares each row with
// model.OrderStatus.Next, which intake enforces: the contract documents
// exactly the moves accepted.
func TestOpenAPIStatusTableIsWhatTheHubEnforces(t *testing.T) {
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	codes := func(cell string) []model.OrderStatus {
		var out []model.OrderStatus
		for _, part := range strings.Split(cell, ",") {
			if c := strings.Trim(strings.TrimSpace(part), "`"); model.OrderStatus(c).Valid() {
				out = append(out, model.OrderStatus(c))
			}
		}
		return out
	}
	seen := map[model.OrderStatus]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != 4 || !strings.Contains(cells[2], "`") && !strings.Contains(cells[2], "final") {
			continue
		}
		from := codes(cells[1])
		if len(from) == 0 || strings.Contains(cells[1], "order.") {
			continue
		}
		to := codes(cells[2])
		for _, f := range from {
			seen[f] = true
			if want := f.Next(); !slices.Equal(to, want) {
				t.Errorf("openapi.yaml: %s may move to %v; the hub allows %v", f, to, want)
			}
		}
	}
	for _, s := range append([]model.OrderStatus{model.StatusOrdered}, model.OrderStatuses()...) {
		if !seen[s] {
			t.Errorf("openapi.yaml: no row for %s", s)
		}
	}
}
