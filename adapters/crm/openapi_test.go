package crm_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/adapters/crm"
	"github.com/iceshub/iceshub/adapters/internal/openapitest"
	"github.com/iceshub/iceshub/internal/model"
	mapping "github.com/iceshub/iceshub/mappings/crm"
	"github.com/iceshub/iceshub/mappings/inbound"
)

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
	d := openapitest.Load(t, "openapi.yaml")
	if !strings.HasPrefix(d.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", d.OpenAPI)
	}
	if d.Paths.Len() != 2 || d.Paths.Find(crm.CasesPath).GetOperation(http.MethodPost) == nil ||
		d.Paths.Find(mapping.NotesPath).GetOperation(http.MethodPost) == nil {
		t.Fatalf("paths = %v, want exactly POST %s and %s", d.Paths.InMatchingOrder(), crm.CasesPath, mapping.NotesPath)
	}
	if w := d.Webhook("councilEvent", "post"); w["x-status"] != "implemented" || w["x-path"] != "/crm/{council}/events" {
		t.Errorf("the webhook is not documented as implemented: %v", w)
	}
	c, err := mapping.CaseUpdate(fullDelivery())
	if err != nil {
		t.Fatal(err)
	}
	// Exhaustive in TestOpenAPIDescribesTheNotesAndSafeguardingCases: only a
	// safeguarding case writes every member.
	d.Conform(t, "CreateCaseRequest", c, "CreateCaseRequest")
	d.ConformAll(t, "CaseCreated", mapping.CaseCreated{CaseReference: "CASE-1", Status: "open"}, "CaseCreated")
	if names := d.Properties(t, "CaseFields"); !slices.Equal(names, mapping.CaseFieldNames()) {
		t.Errorf("CaseFields in openapi.yaml = %v\nmapping names          %v", names, mapping.CaseFieldNames())
	}
}

// TestOpenAPIDescribesTheSimulatorsAnswers checks the simulator's answers,
// status, headers and body, against the operation, and that the created
// case's answer writes every member of CaseCreated.
func TestOpenAPIDescribesTheSimulatorsAnswers(t *testing.T) {
	d := openapitest.Load(t, "openapi.yaml")
	sim := crm.NewSimulator()
	resp, _, created := post(t, sim, "/cases", validCase, nil)
	d.Answer(t, http.MethodPost, "/cases", resp.StatusCode, resp.Header, []byte(created))
	var v any
	if err := json.Unmarshal([]byte(created), &v); err != nil {
		t.Fatal(err)
	}
	d.ConformAll(t, "CaseCreated", v, "answer")
	resp, _, refused := post(t, sim, "/cases", `{"caseType":"pothole"}`, nil)
	if resp.StatusCode < 400 {
		t.Fatalf("a pothole was accepted: %d", resp.StatusCode)
	}
	d.Answer(t, http.MethodPost, "/cases", resp.StatusCode, resp.Header, []byte(refused))
}

// TestOpenAPIDescribesTheNotesAndSafeguardingCases checks a fully populated
// note and safeguarding case against their schemas, both ways.
func TestOpenAPIDescribesTheNotesAndSafeguardingCases(t *testing.T) {
	d := openapitest.Load(t, "openapi.yaml")
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
	d.ConformAll(t, "CreateCaseRequest", req.Body, "safeguarding")
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
		v := openapitest.JSON(t, req.Body)
		d.Conform(t, "AddNoteRequest", v, string(k))
		for f := range req.Body.(mapping.AddNoteRequest).Fields {
			fields[f] = true
		}
	}
	if names := d.Properties(t, "NoteFields"); !slices.Equal(names, mapping.NoteFieldNames()) {
		t.Errorf("NoteFields in openapi.yaml = %v\nmapping names          %v", names, mapping.NoteFieldNames())
	}
	for _, n := range mapping.NoteFieldNames() {
		if !fields[n] {
			t.Errorf("note field %s is never written", n)
		}
	}
	if got := d.Enum(t, "AddNoteRequest", "type"); !slices.Equal(got, mapping.NoteTypes()) {
		t.Errorf("documented note types %v, mapping %v", got, mapping.NoteTypes())
	}
	d.ConformAll(t, "NoteAdded", mapping.NoteAdded{NoteID: "NOTE-1"}, "NoteAdded")
}

// TestOpenAPIDescribesTheEventsTheHubReceives checks the webhook's body and
// answer against the Go types, both ways.
func TestOpenAPIDescribesTheEventsTheHubReceives(t *testing.T) {
	d := openapitest.Load(t, "openapi.yaml")
	complaint := mapping.ComplaintCreated{EventID: "e", ComplaintReference: "COMP-1", OrderReference: "ORD-1", CaseReference: "CASE-1",
		Category: "c", Summary: "s", ContactAllowed: true, Contact: &mapping.ComplainantContact{Phone: "01632 960123", Email: "a@example.org"}}
	collection := mapping.CollectionRequested{EventID: "e", OrderReference: "ORD-1", CaseReference: "CASE-1", Reason: "moved", Note: "n"}
	members := map[string]bool{}
	for name, data := range map[string]any{mapping.EventComplaintCreated: complaint, mapping.EventCollectionRequested: collection} {
		raw, _ := json.Marshal(data)
		env := mapping.CouncilEvent{Event: name, Timestamp: "2025-03-12T11:05:00Z", Data: raw}
		v := openapitest.JSON(t, env)
		d.Conform(t, "CouncilEvent", v, name)
		for k := range v.(map[string]any)["data"].(map[string]any) {
			members[k] = true
		}
	}
	for _, k := range d.Properties(t, "CouncilEventData") {
		if !members[k] {
			t.Errorf("CouncilEventData.%s is not in any Go event type", k)
		}
	}
	if got := d.Enum(t, "CouncilEvent", "event"); !slices.Equal(got, mapping.EventNames()) {
		t.Errorf("documented events %v, parsed %v", got, mapping.EventNames())
	}
	d.ConformAll(t, "EventAccepted", inbound.Accepted{EventID: "e", ReferralID: "r", Status: "accepted"}, "EventAccepted")
}
