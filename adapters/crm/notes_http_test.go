package crm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"slices"
	"testing"

	"github.com/iceshub/iceshub/adapters/crm"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/model"
	mapping "github.com/iceshub/iceshub/mappings/crm"
)

func outboundFixture(t *testing.T, name string) model.Delivery {
	t.Helper()
	b, err := os.ReadFile("../../testdata/crm/outbound/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var d model.Delivery
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSendNotesAndSafeguardingCases(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		path    string
		ref     string
	}{
		{"note-delivered.json", "/cases/CASE-000001/notes", "NOTE-000001"},
		{"note-failed-delivery.json", "/cases/CASE-000001/notes", "NOTE-000001"},
		{"note-scheduled.json", "/cases/CASE-000001/notes", "NOTE-000001"},
		{"note-equipment-issue.json", "/cases/CASE-000001/notes", "NOTE-000001"},
		{"note-collection.json", "/cases/CASE-000001/notes", "NOTE-000001"},
		{"note-cancellation.json", "/cases/CASE-000001/notes", "NOTE-000001"},
		{"note-complaint-reply.json", "/cases/COMP-000017/notes", "NOTE-000001"},
		{"safeguarding-case.json", "/cases", "CASE-000002"},
		{"safeguarding-no-order-case.json", "/cases", "CASE-000002"},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			logs := &syncBuffer{}
			defer checkLogs(t, logs)
			cw := newCouncil(t, "council-cwac", logs, nil)
			order, err := cw.client.Send(context.Background(), fixture(t, "case-default-route.json"))
			if err != nil {
				t.Fatal(err)
			}
			cw.sim.KnowCase("COMP-000017") // the council's own complaint case
			d := outboundFixture(t, tc.fixture)
			if d.Refs.CaseReference != "" {
				d.Refs.CaseReference = order.PartnerReference
			}
			receipt, err := cw.client.Send(context.Background(), d)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if receipt.PartnerReference != tc.ref || receipt.StatusCode != 201 || !slices.Equal(receipt.Fields, sentFields(t, d)) {
				t.Errorf("receipt = %+v", receipt)
			}
			j := cw.sim.Journal()
			if len(j) != 2 || j[1].Path != tc.path || j[1].Status != 201 {
				t.Fatalf("journal = %+v", j)
			}
			h := j[1].Header
			if h.IdempotencyKey != d.IdempotencyKey || h.CorrelationID != d.Referral.Source.CorrelationID ||
				h.Authorization != "Bearer council-cwac-token" || h.ContentType != "application/json" {
				t.Errorf("headers = %+v", h)
			}
			req, err := mapping.Outbound(d)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(req.Body)
			if !bytes.Equal(j[1].Body, want) {
				t.Errorf("received %s\nwant     %s", j[1].Body, want)
			}
			if req.CreatesCase {
				if got := cw.sim.Cases()[1]; !reflect.DeepEqual(got, req.Body) {
					t.Errorf("case = %+v", got)
				}
			} else if got := cw.sim.Notes(req.Path[len("/cases/") : len(req.Path)-len("/notes")]); len(got) != 1 || !reflect.DeepEqual(got[0], req.Body) {
				t.Errorf("notes = %+v", got)
			}
		})
	}
}

func TestNotesOnCasesThatDoNotExist(t *testing.T) {
	cw := newCouncil(t, "council-cwac", &syncBuffer{}, nil)
	d := outboundFixture(t, "note-failed-delivery.json")
	d.Refs.CaseReference = ""
	if _, err := cw.client.Send(context.Background(), d); !delivery.IsPermanent(err) || !errors.Is(err, mapping.ErrNoCaseReference) {
		t.Errorf("no case reference: %v", err)
	}
	if n := len(cw.sim.Journal()); n != 0 {
		t.Errorf("%d requests reached the council", n)
	}
	d.Refs.CaseReference = "CASE-000404"
	_, err := cw.client.Send(context.Background(), d)
	var de *delivery.Error
	if !errors.As(err, &de) || !de.Permanent || de.StatusCode != http.StatusNotFound {
		t.Errorf("unknown case: %v", err)
	}
	// A reply to another council's complaint never leaves the hub.
	r := outboundFixture(t, "note-complaint-reply.json")
	r.Referral.Event.Complaint.Council = "council-ceast"
	if _, err := cw.client.Send(context.Background(), r); !delivery.IsPermanent(err) {
		t.Errorf("reply to another council's complaint: %v", err)
	}
}

func TestNoteSimulatorContract(t *testing.T) {
	sim := crm.NewSimulator()
	_, _, _ = post(t, sim, "/cases", validCase, nil)
	const note = `{"type":"order-status","externalReference":"ref-1","text":"Equipment delivered","occurredAt":"2025-03-12T11:05:00Z","status":"delivered"}`
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		key    string
		status int
		code   string
	}{
		{"note", "/cases/CASE-000001/notes", note, "n1", 201, ""},
		{"repeated", "/cases/CASE-000001/notes", note, "n1", 200, ""},
		{"unknown case", "/cases/CASE-000404/notes", note, "n2", 404, "unknown-case"},
		{"unknown type", "/cases/CASE-000001/notes", `{"type":"gossip","externalReference":"ref-1","text":"t","occurredAt":"2025-03-12T11:05:00Z"}`, "n3", 422, "invalid-note"},
		{"unknown field", "/cases/CASE-000001/notes", `{"type":"order-status","externalReference":"ref-1","text":"t","occurredAt":"2025-03-12T11:05:00Z","fields":{"shoeSize":"9"}}`, "n4", 422, "invalid-note"},
		{"no text", "/cases/CASE-000001/notes", `{"type":"order-status","externalReference":"ref-1","occurredAt":"2025-03-12T11:05:00Z"}`, "n5", 422, "invalid-note"},
		{"safeguarding case", "/cases", `{"caseType":"ices-safeguarding","externalReference":"ref-1","status":"concern-raised","title":"ICES safeguarding concern","priority":"urgent"}`, "n6", 201, ""},
		{"routine safeguarding case", "/cases", `{"caseType":"ices-safeguarding","externalReference":"ref-1","status":"concern-raised","title":"ICES safeguarding concern"}`, "n7", 422, "invalid-case"},
	} {
		resp, eb, raw := post(t, sim, tc.path, tc.body, map[string]string{"Idempotency-Key": tc.key})
		if resp.StatusCode != tc.status || eb.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %q", tc.name, resp.StatusCode, raw, tc.status, tc.code)
		}
	}
	if s := sim.Note.Stats(); s != (partnersim.Stats{Requests: 6, Created: 1, Repeats: 1, Refused: 4}) {
		t.Errorf("note stats = %+v", s)
	}
	if got := sim.Notes("CASE-000001"); len(got) != 1 || got[0].Text != "Equipment delivered" {
		t.Errorf("notes = %+v", got)
	}
	sim.SetFailure(503)
	if resp, _, _ := post(t, sim, "/cases/CASE-000001/notes", note, map[string]string{"Idempotency-Key": "n9"}); resp.StatusCode != 503 {
		t.Errorf("SetFailure on notes: %d", resp.StatusCode)
	}
}

// sentFields is the disclosure record the mapping gives d, which Send must
// return with its receipt.
func sentFields(t *testing.T, d model.Delivery) []string {
	t.Helper()
	req, err := mapping.Outbound(d)
	if err != nil {
		t.Fatalf("Outbound: %v", err)
	}
	return req.Fields
}
