package crm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/mappings/crm"
)

// withEvent is the sentinel referral with an event of kind k whose every
// disclosable member holds a distinctive value.
func withEvent(k model.Kind) (model.Referral, map[string][]string) {
	full, sentinels := sentinelReferral()
	full.Event = &model.Event{
		ID: "ev-1", Kind: k, ReferralID: full.ID, From: "provider", FromEventID: "fe-1",
		OccurredAt: time.Date(2025, 3, 10, 14, 30, 0, 0, time.UTC), Status: model.StatusFailedDelivery,
		ScheduledDate: "2031-12-24", Reason: model.Coded{Code: "whycodemarker", Display: "Whytextmarker"},
		Description: "Descriptionmarker",
		Complaint: &model.Complaint{Reference: "COMP-1", Council: "council-a", Category: "Categorymarker", Summary: "Summarymarker",
			ContactAllowed: true, Contact: []model.ContactPoint{{System: "phone", Value: "01632 960999"}}, Reply: "Replymarker"},
	}
	sentinels["event.scheduledDate"] = []string{"2031-12-24"}
	sentinels["event.reason"] = []string{"whycodemarker", "Whytextmarker"}
	sentinels["event.description"] = []string{"Descriptionmarker"}
	sentinels["complaint.category"] = []string{"Categorymarker"}
	sentinels["complaint.summary"] = []string{"Summarymarker"}
	sentinels["complaint.contact"] = []string{"01632 960999"}
	sentinels["complaint.reply"] = []string{"Replymarker"}
	return full, sentinels
}

// TestOutboundGolden maps every copy in testdata/crm/outbound and compares
// the request (path and body) with testdata/crm/golden/<name>.json. Run
// with -update to rewrite them.
func TestOutboundGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(dir, "outbound", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in %s/outbound (%v)", dir, err)
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			d := readDelivery(t, in)
			req, err := crm.Outbound(d)
			if err != nil {
				t.Fatalf("Outbound: %v", err)
			}
			got, err := json.MarshalIndent(struct {
				Method string `json:"method"`
				Path   string `json:"path"`
				Body   any    `json:"body"`
			}{"POST", req.Path, req.Body}, "", "  ")
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
				t.Errorf("request differs from %s (run go test -update and review the diff):\n%s", golden, got)
			}
		})
	}
}

// TestOutboundCarriesExactlyTheCopy proves, for every kind a council
// receives and field by field, that a request holds every value of the
// fields its copy was cut to and none of any other (clinical fields never),
// and that a copy naming a field the kind's contract cannot carry is
// refused.
func TestOutboundCarriesExactlyTheCopy(t *testing.T) {
	for _, k := range crm.Kinds() {
		if k == model.KindReferral {
			continue // TestCaseCarriesExactlyTheCopy
		}
		full, sentinels := withEvent(k)
		carried := crm.FieldsFor(k)
		subsets := [][]string{nil, carried}
		for _, f := range model.FieldNames() {
			subsets = append(subsets, []string{f})
		}
		for _, allowed := range subsets {
			t.Run(string(k)+"/"+strings.Join(allowed, "+"), func(t *testing.T) {
				cut, err := minimise.Referral(&full, allowed)
				if err != nil {
					t.Fatal(err)
				}
				d := model.Delivery{Kind: k, Recipient: "council-a", IdempotencyKey: "key", Fields: allowed, Referral: cut,
					Refs: model.References{CaseReference: "CASE-000009", OrderReference: "ORD-000009"}}
				req, err := crm.Outbound(d)
				for _, f := range allowed {
					if !slices.Contains(carried, f) {
						if !errors.Is(err, crm.ErrFieldNotCarried) {
							t.Fatalf("Outbound err = %v, want ErrFieldNotCarried", err)
						}
						// Even when Fields is silent, the field does not get
						// through: refused, or left out.
						d.Fields = nil
						req, err := crm.Outbound(d)
						if err != nil {
							if !errors.Is(err, crm.ErrFieldNotCarried) {
								t.Fatalf("Outbound without Fields err = %v, want ErrFieldNotCarried", err)
							}
							return
						}
						out, _ := json.Marshal(req.Body)
						for _, v := range sentinels[f] {
							if strings.Contains(string(out), v) {
								t.Errorf("without Fields, %s's %q is in the request: %s", f, v, out)
							}
						}
						return
					}
				}
				if err != nil {
					t.Fatalf("Outbound: %v", err)
				}
				out, _ := json.Marshal(req.Body)
				s := string(out)
				present := map[string]bool{}
				for _, f := range allowed {
					for _, v := range sentinels[f] {
						present[v] = true
						if !strings.Contains(s, v) {
							t.Errorf("field %s allowed but %q missing: %s", f, v, s)
						}
					}
				}
				for f, vs := range sentinels {
					for _, v := range vs {
						if !present[v] && strings.Contains(s, v) {
							t.Errorf("field %s not in the copy but %q is in the request: %s", f, v, s)
						}
					}
				}
			})
		}
	}
}

func TestNotesCarryNoReferralFieldsEvenWhenFieldsAreSilent(t *testing.T) {
	full, _ := withEvent(model.KindOrderStatus)
	cut, _ := minimise.Referral(&full, []string{"person.name"})
	_, err := crm.Outbound(model.Delivery{Kind: model.KindOrderStatus, Recipient: "council-a", IdempotencyKey: "k", Referral: cut,
		Refs: model.References{CaseReference: "CASE-1"}})
	if !errors.Is(err, crm.ErrFieldNotCarried) {
		t.Errorf("err = %v, want ErrFieldNotCarried", err)
	}
}

func TestEveryCatalogueFieldIsCarriedOrLeftOutOnPurpose(t *testing.T) {
	leftOut := []string{
		"clinical.conditions", "clinical.notes", "clinical.observations", "clinical.reasons", "clinical.weight", // never on a council case
		"complaint.category", "complaint.contact", "complaint.summary", // the council wrote the complaint
	}
	got := slices.Clone(leftOut)
	for _, k := range crm.Kinds() {
		for _, f := range crm.FieldsFor(k) {
			if !slices.Contains(got, f) {
				got = append(got, f)
			}
		}
	}
	slices.Sort(got)
	if want := model.FieldNames(); !slices.Equal(got, want) {
		t.Errorf("carried or left out = %v\ncatalogue           = %v", got, want)
	}
	if !slices.Equal(crm.Fields(), crm.FieldsFor(model.KindReferral)) {
		t.Error("Fields() differs from FieldsFor(referral)")
	}
	for _, k := range []model.Kind{model.KindComplaint, model.KindAmendment} {
		if crm.FieldsFor(k) != nil {
			t.Errorf("councils receive no %s", k)
		}
	}
}

func TestNoteTexts(t *testing.T) {
	at := time.Date(2025, 3, 10, 14, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		kind model.Kind
		ev   model.Event
		want string
	}{
		{model.KindOrderStatus, model.Event{Status: model.StatusFailedDelivery, Reason: model.Coded{Code: "no-access", Display: "no answer at the door"}},
			"Delivery failed: no access (no answer at the door)"},
		{model.KindOrderStatus, model.Event{Status: model.StatusFailedDelivery}, "Delivery failed"},
		{model.KindOrderStatus, model.Event{Status: model.StatusScheduled, ScheduledDate: "2025-03-14"}, "Delivery scheduled for Friday 14 March 2025"},
		{model.KindOrderStatus, model.Event{Status: model.StatusDelivered}, "Equipment delivered"},
		{model.KindOrderStatus, model.Event{Status: model.StatusCollectionRequested, Reason: model.Coded{Code: "died"}}, "Collection of the equipment requested: the person has died"},
		{model.KindEquipmentIssue, model.Event{Reason: model.Coded{Code: "failed-installation"}, Description: "The hoist does not fit the ceiling track."},
			"Equipment issue reported by the provider: failed installation. The hoist does not fit the ceiling track."},
		{model.KindCollection, model.Event{Status: model.StatusCollectionRequested, Reason: model.Coded{Code: "no-longer-needed"}, Description: "Back to full mobility"},
			"Collection of the equipment requested: no longer needed. Back to full mobility"},
		{model.KindCancellation, model.Event{Status: model.StatusCancelled, Reason: model.Coded{Display: "Duplicate referral"}}, "Order cancelled: Duplicate referral"},
		{model.KindComplaintReply, model.Event{Complaint: &model.Complaint{Reference: "COMP-7", Reply: "We apologise for the late delivery."}},
			"The provider replied to complaint COMP-7: We apologise for the late delivery."},
	} {
		ev := tc.ev
		ev.Kind, ev.OccurredAt, ev.From = tc.kind, at, "provider"
		req, err := crm.Outbound(model.Delivery{Kind: tc.kind, Recipient: "council-a", IdempotencyKey: "k",
			Referral: model.Referral{ID: "ref-1", Event: &ev}, Refs: model.References{CaseReference: "CASE-1"}})
		if err != nil {
			t.Errorf("%s %s: %v", tc.kind, ev.Status, err)
			continue
		}
		if got := req.Body.(crm.AddNoteRequest).Text; got != tc.want {
			t.Errorf("%s: text %q, want %q", tc.kind, got, tc.want)
		}
	}
}

func TestOutboundErrors(t *testing.T) {
	base := func(k model.Kind) model.Delivery {
		full, _ := withEvent(k)
		cut, _ := minimise.Referral(&full, nil)
		return model.Delivery{Kind: k, Recipient: "council-a", IdempotencyKey: "key", Referral: cut,
			Refs: model.References{CaseReference: "CASE-000009"}}
	}
	for _, tc := range []struct {
		name   string
		kind   model.Kind
		mutate func(*model.Delivery)
		want   error
	}{
		{"complaint", model.KindComplaint, func(*model.Delivery) {}, crm.ErrUnsupportedKind},
		{"amendment", model.KindAmendment, func(*model.Delivery) {}, crm.ErrUnsupportedKind},
		{"note before the case existed", model.KindOrderStatus, func(d *model.Delivery) { d.Refs.CaseReference = "" }, crm.ErrNoCaseReference},
		{"case reference of free text", model.KindEquipmentIssue, func(d *model.Delivery) { d.Refs.CaseReference = "the case" }, crm.ErrInvalidCopy},
		{"no event", model.KindCancellation, func(d *model.Delivery) { d.Referral.Event = nil }, crm.ErrInvalidCopy},
		{"event of another kind", model.KindCollection, func(d *model.Delivery) { d.Referral.Event.Kind = model.KindCancellation }, crm.ErrInvalidCopy},
		{"event without time", model.KindSafeguarding, func(d *model.Delivery) { d.Referral.Event.OccurredAt = time.Time{} }, crm.ErrInvalidCopy},
		{"reply to another council's complaint", model.KindComplaintReply, func(d *model.Delivery) { d.Referral.Event.Complaint.Council = "council-b" }, crm.ErrInvalidCopy},
		{"reply without complaint", model.KindComplaintReply, func(d *model.Delivery) { d.Referral.Event.Complaint = nil }, crm.ErrInvalidCopy},
		{"clinical on a safeguarding case", model.KindSafeguarding, func(d *model.Delivery) { d.Referral.Clinical.Notes = []string{"x"} }, crm.ErrFieldNotCarried},
		{"clinical field named", model.KindSafeguarding, func(d *model.Delivery) { d.Fields = []string{"clinical.weight"} }, crm.ErrFieldNotCarried},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base(tc.kind)
			tc.mutate(&d)
			if _, err := crm.Outbound(d); !errors.Is(err, tc.want) {
				t.Errorf("Outbound err = %v, want %v", err, tc.want)
			}
		})
	}
	// A safeguarding concern does not wait for the order case.
	d := base(model.KindSafeguarding)
	d.Refs.CaseReference = ""
	req, err := crm.Outbound(d)
	if err != nil {
		t.Fatalf("safeguarding without an order case: %v", err)
	}
	if c := req.Body.(crm.CreateCaseRequest); c.RelatedReference != "" || c.Priority != crm.PriorityUrgent || c.CaseType != crm.CaseTypeSafeguarding {
		t.Errorf("safeguarding case = %+v", c)
	}
	// A reply goes on the complaint case, not the order case.
	d = base(model.KindComplaintReply)
	if req, err := crm.Outbound(d); err != nil || req.Path != "/cases/COMP-1/notes" {
		t.Errorf("reply path = %q, %v", req.Path, err)
	}
}

func TestDecodeNoteAdded(t *testing.T) {
	if n := crm.DecodeNoteAdded([]byte(`{"noteId":"NOTE-000001","x":1}`)); n.NoteID != "NOTE-000001" {
		t.Errorf("note = %+v", n)
	}
	for _, bad := range []string{``, `[]`, `{"noteId":"a b"}`} {
		if n := crm.DecodeNoteAdded([]byte(bad)); n.NoteID != "" {
			t.Errorf("%s: %+v", bad, n)
		}
	}
}
