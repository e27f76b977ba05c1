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
	"github.com/iceshub/iceshub/mappings/inbound"
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
	case bool:
		if s.Type != "boolean" {
			t.Errorf("%s: JSON boolean, schema type %q", at, s.Type)
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
	if len(d.Paths) != 2 || d.Paths[crm.CasesPath]["post"] == nil || d.Paths[mapping.NotesPath]["post"] == nil {
		t.Fatalf("paths = %v, want exactly POST %s and %s", d.Paths, crm.CasesPath, mapping.NotesPath)
	}
	if w := d.Webhooks["councilEvent"]["post"]; w["x-status"] != "implemented" || w["x-path"] != "/crm/{council}/events" {
		t.Errorf("the webhook is not documented as implemented: %v", w)
	}
	c, err := mapping.CaseUpdate(fullDelivery())
	if err != nil {
		t.Fatal(err)
	}
	// Exhaustive in TestOpenAPIDescribesTheNotesAndSafeguardingCases: only a
	// safeguarding case writes every member.
	d.conform(t, &schema{Ref: "#/components/schemas/CreateCaseRequest"}, toJSON(t, c), "CreateCaseRequest", false)
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

// TestOpenAPIDescribesTheNotesAndSafeguardingCases checks a fully populated
// note and safeguarding case against their schemas, both ways.
func TestOpenAPIDescribesTheNotesAndSafeguardingCases(t *testing.T) {
	d := loadDoc(t)
	at := time.Date(2025, 3, 12, 11, 5, 0, 0, time.UTC)
	del := fullDelivery()
	del.Kind, del.Fields = model.KindSafeguarding, mapping.FieldsFor(model.KindSafeguarding)
	del.Referral.Event = &model.Event{Kind: model.KindSafeguarding, From: "provider", OccurredAt: at,
		Reason: model.Coded{Code: "neglect", Display: "Neglect"}, Description: "Concern"}
	del.Refs = model.References{OrderReference: "ORD-1", CaseReference: "CASE-1"}
	req, err := mapping.Outbound(del)
	if err != nil {
		t.Fatal(err)
	}
	d.conform(t, &schema{Ref: "#/components/schemas/CreateCaseRequest"}, toJSON(t, req.Body), "safeguarding", true)
	c := req.Body.(mapping.CreateCaseRequest)
	if c.Priority == "" || c.RelatedReference == "" {
		t.Errorf("safeguarding case lacks priority or relatedReference: %+v", c)
	}

	// A note with every field: all event fields, and a reply.
	ev := &model.Event{Kind: model.KindOrderStatus, From: "provider", OccurredAt: at, Status: model.StatusScheduled,
		ScheduledDate: "2025-03-14", Reason: model.Coded{Code: "c", Display: "t"}, Description: "d",
		Complaint: &model.Complaint{Reference: "COMP-1", Reply: "r"}}
	note := model.Delivery{Kind: model.KindOrderStatus, Recipient: "council-cwac", IdempotencyKey: "k",
		Referral: model.Referral{ID: "ref-1", Source: model.Source{CorrelationID: "c"}, Event: ev}, Refs: model.References{CaseReference: "CASE-1", OrderReference: "ORD-1"}}
	fields := map[string]bool{}
	for _, k := range []model.Kind{model.KindOrderStatus, model.KindEquipmentIssue, model.KindComplaintReply} {
		note.Kind, ev.Kind = k, k
		req, err := mapping.Outbound(note)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		v := toJSON(t, req.Body)
		d.conform(t, &schema{Ref: "#/components/schemas/AddNoteRequest"}, v, string(k), false)
		for f := range req.Body.(mapping.AddNoteRequest).Fields {
			fields[f] = true
		}
	}
	var names []string
	for k := range d.Components.Schemas["NoteFields"].Properties {
		names = append(names, k)
	}
	slices.Sort(names)
	if !slices.Equal(names, mapping.NoteFieldNames()) {
		t.Errorf("NoteFields in openapi.yaml = %v\nmapping names          %v", names, mapping.NoteFieldNames())
	}
	for _, n := range mapping.NoteFieldNames() {
		if !fields[n] {
			t.Errorf("note field %s is never written", n)
		}
	}
	if got := d.Components.Schemas["AddNoteRequest"].Properties["type"].Enum; !slices.Equal(got, mapping.NoteTypes()) {
		t.Errorf("documented note types %v, mapping %v", got, mapping.NoteTypes())
	}
	d.conform(t, &schema{Ref: "#/components/schemas/NoteAdded"}, toJSON(t, mapping.NoteAdded{NoteID: "NOTE-1"}), "NoteAdded", true)
}

// TestOpenAPIDescribesTheEventsTheHubReceives checks the webhook's body and
// answer against the Go types, both ways.
func TestOpenAPIDescribesTheEventsTheHubReceives(t *testing.T) {
	d := loadDoc(t)
	complaint := mapping.ComplaintCreated{EventID: "e", ComplaintReference: "COMP-1", OrderReference: "ORD-1", CaseReference: "CASE-1",
		Category: "c", Summary: "s", ContactAllowed: true, Contact: &mapping.ComplainantContact{Phone: "01632 960123", Email: "a@example.org"}}
	collection := mapping.CollectionRequested{EventID: "e", OrderReference: "ORD-1", CaseReference: "CASE-1", Reason: "moved", Note: "n"}
	members := map[string]bool{}
	for name, data := range map[string]any{mapping.EventComplaintCreated: complaint, mapping.EventCollectionRequested: collection} {
		raw, _ := json.Marshal(data)
		env := mapping.CouncilEvent{Event: name, Timestamp: "2025-03-12T11:05:00Z", Data: raw}
		v := toJSON(t, env)
		d.conform(t, &schema{Ref: "#/components/schemas/CouncilEvent"}, v, name, false)
		for k := range v.(map[string]any)["data"].(map[string]any) {
			members[k] = true
		}
	}
	for k := range d.Components.Schemas["CouncilEventData"].Properties {
		if !members[k] {
			t.Errorf("CouncilEventData.%s is not in any Go event type", k)
		}
	}
	if got := d.Components.Schemas["CouncilEvent"].Properties["event"].Enum; !slices.Equal(got, mapping.EventNames()) {
		t.Errorf("documented events %v, parsed %v", got, mapping.EventNames())
	}
	d.conform(t, &schema{Ref: "#/components/schemas/EventAccepted"},
		toJSON(t, inbound.Accepted{EventID: "e", ReferralID: "r", Status: "accepted"}), "EventAccepted", true)
}
