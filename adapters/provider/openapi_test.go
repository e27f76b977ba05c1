package provider_test

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/adapters/internal/openapitest"
	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/mappings/inbound"
	mapping "github.com/iceshub/iceshub/mappings/provider"
)

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
	d := openapitest.Load(t, "openapi.yaml")
	if !strings.HasPrefix(d.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q, want 3.0.x", d.OpenAPI)
	}
	paths := []string{mapping.OrdersPath, mapping.CancellationPath, mapping.AmendmentsPath, mapping.CollectionsPath, mapping.ComplaintsPath}
	if d.Paths.Len() != len(paths) {
		t.Errorf("paths = %v, want %v", d.Paths.InMatchingOrder(), paths)
	}
	for _, p := range paths {
		if d.Paths.Find(p).GetOperation(http.MethodPost) == nil {
			t.Errorf("POST %s is not documented", p)
		}
	}
	if w := d.Webhook("providerEvent", "post"); w["x-status"] != "implemented" || w["x-path"] != provider.EventsPath {
		t.Errorf("the webhook is not documented as implemented at %s: %v", provider.EventsPath, w)
	}
	order, err := mapping.Order(fullDelivery())
	if err != nil {
		t.Fatal(err)
	}
	d.ConformAll(t, "OrderRequest", order, "OrderRequest")
	d.ConformAll(t, "OrderAccepted", mapping.OrderAccepted{OrderReference: "ORD-1", Status: "received"}, "OrderAccepted")
}

// TestOpenAPIDescribesTheSimulatorsAnswers checks the simulator's answers,
// status, headers and body, against the operation, and that the accepted
// order's answer writes every member of OrderAccepted.
func TestOpenAPIDescribesTheSimulatorsAnswers(t *testing.T) {
	d := openapitest.Load(t, "openapi.yaml")
	sim := provider.NewSimulator()
	resp, _, created := post(t, sim, "/orders", validOrder, nil)
	d.Answer(t, http.MethodPost, "/orders", resp.StatusCode, resp.Header, []byte(created))
	var v any
	if err := json.Unmarshal([]byte(created), &v); err != nil {
		t.Fatal(err)
	}
	d.ConformAll(t, "OrderAccepted", v, "answer")
	resp, _, refused := post(t, sim, "/orders", `{"hubReference":"r","idempotencyKey":"key-1"}`, nil)
	if resp.StatusCode < 400 {
		t.Fatalf("an order without a person was accepted: %d", resp.StatusCode)
	}
	d.Answer(t, http.MethodPost, "/orders", resp.StatusCode, resp.Header, []byte(refused))
}

// TestOpenAPIDescribesTheChangesTheHubSends checks every new request body,
// fully populated, against its schema, both ways.
func TestOpenAPIDescribesTheChangesTheHubSends(t *testing.T) {
	d := openapitest.Load(t, "openapi.yaml")
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
		d.ConformAll(t, tc.schema, req.Body, tc.schema)
	}
	d.ConformAll(t, "Acknowledgement", mapping.Acknowledgement{Reference: "CAN-000001", Status: "received"}, "Acknowledgement")
}

// TestOpenAPIDescribesTheEventsTheHubReceives checks the webhook's body and
// answer against the Go types, both ways, and that every event type the
// hub parses is documented.
func TestOpenAPIDescribesTheEventsTheHubReceives(t *testing.T) {
	d := openapitest.Load(t, "openapi.yaml")
	full := mapping.Event{EventID: "e", Type: mapping.EventOrderFailedDelivery, OrderReference: "ORD-1", OccurredAt: "2025-03-10T14:30:00Z",
		ScheduledDate: "2025-03-11", Reason: &mapping.Reason{Code: "no-access", Text: "t"}, IssueType: "unsafe", Description: "d",
		Category: "neglect", ComplaintReference: "COMP-1", Reply: "r"}
	d.ConformAll(t, "ProviderEvent", full, "ProviderEvent")
	if got, want := d.Enum(t, "ProviderEvent", "type"), mapping.EventTypes(); !slices.Equal(got, want) {
		t.Errorf("documented event types %v, parsed %v", got, want)
	}
	d.ConformAll(t, "EventAccepted", inbound.Accepted{EventID: "e", ReferralID: "r", Status: "accepted"}, "EventAccepted")
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
