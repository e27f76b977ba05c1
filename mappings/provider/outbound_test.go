package provider_test

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
	"github.com/iceshub/iceshub/mappings/provider"
)

// TestOutboundGolden maps every copy in testdata/provider/outbound and
// compares the request (path and body) with
// testdata/provider/golden/<name>.json. Run with -update to rewrite them.
func TestOutboundGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join(dir, "outbound", "*.json"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in %s/outbound (%v)", dir, err)
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			d := readDelivery(t, in)
			req, err := provider.Outbound(d)
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

// eventSentinels is a referral with an event of kind k whose every
// disclosable member holds a distinctive value.
func eventSentinels(k model.Kind) (model.Referral, map[string][]string) {
	full, sentinels := sentinelReferral()
	full.Event = &model.Event{
		ID: "ev-1", Kind: k, ReferralID: full.ID, From: "council-a", FromEventID: "fe-1",
		OccurredAt: time.Date(2025, 3, 10, 14, 30, 0, 0, time.UTC), Status: model.StatusCollectionRequested,
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

// TestOutboundCarriesExactlyTheCopy proves, for every kind the provider
// receives and field by field, that a request holds every value of the
// fields its copy was cut to and none of any other; and that a copy naming
// a field the kind's contract cannot carry is refused.
func TestOutboundCarriesExactlyTheCopy(t *testing.T) {
	for _, k := range provider.Kinds() {
		full, sentinels := eventSentinels(k)
		if got := slices.Sorted(func(yield func(string) bool) {
			for f := range sentinels {
				if !yield(f) {
					return
				}
			}
		}); !slices.Equal(got, model.FieldNames()) {
			t.Fatalf("sentinels cover %v, catalogue is %v", got, model.FieldNames())
		}
		carried := provider.FieldsFor(k)
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
				d := model.Delivery{Kind: k, Recipient: "provider", IdempotencyKey: "key", Fields: allowed, Referral: cut,
					Refs: model.References{OrderReference: "ORD-000009"}}
				req, err := provider.Outbound(d)
				for _, f := range allowed {
					if !slices.Contains(carried, f) {
						if !errors.Is(err, provider.ErrFieldNotCarried) {
							t.Fatalf("Outbound err = %v, want ErrFieldNotCarried", err)
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

func TestOutboundPaths(t *testing.T) {
	for k, want := range map[model.Kind]string{
		model.KindReferral:     "/orders",
		model.KindAmendment:    "/orders/ORD%2F7%20A/amendments",
		model.KindCancellation: "/orders/ORD%2F7%20A/cancellation",
		model.KindCollection:   "/orders/ORD%2F7%20A/collections",
		model.KindComplaint:    "/complaints",
	} {
		full, _ := eventSentinels(k)
		cut, _ := minimise.Referral(&full, nil)
		// A reference with a slash stays one path segment.
		ref := "ORD/7 A"
		if k != model.KindReferral {
			ref = "ORD/7"
			want = strings.ReplaceAll(want, "%20A", "")
		}
		req, err := provider.Outbound(model.Delivery{Kind: k, Recipient: "provider", IdempotencyKey: "key", Referral: cut,
			Refs: model.References{OrderReference: ref}})
		if err != nil || req.Path != want {
			t.Errorf("%s: path %q, %v; want %q", k, req.Path, err, want)
		}
	}
}

func TestOutboundErrors(t *testing.T) {
	base := func(k model.Kind) model.Delivery {
		full, _ := eventSentinels(k)
		cut, _ := minimise.Referral(&full, nil)
		return model.Delivery{Kind: k, Recipient: "provider", IdempotencyKey: "key", Referral: cut,
			Refs: model.References{OrderReference: "ORD-000009"}}
	}
	for _, tc := range []struct {
		name   string
		kind   model.Kind
		mutate func(*model.Delivery)
		want   error
	}{
		{"order status", model.KindOrderStatus, func(*model.Delivery) {}, provider.ErrUnsupportedKind},
		{"safeguarding", model.KindSafeguarding, func(*model.Delivery) {}, provider.ErrUnsupportedKind},
		{"cancellation before the order reached the provider", model.KindCancellation, func(d *model.Delivery) { d.Refs.OrderReference = "" }, provider.ErrNoOrderReference},
		{"amendment before the order reached the provider", model.KindAmendment, func(d *model.Delivery) { d.Refs.OrderReference = "" }, provider.ErrNoOrderReference},
		{"collection before the order reached the provider", model.KindCollection, func(d *model.Delivery) { d.Refs.OrderReference = "" }, provider.ErrNoOrderReference},
		{"complaint before the order reached the provider", model.KindComplaint, func(d *model.Delivery) { d.Refs.OrderReference = "" }, provider.ErrNoOrderReference},
		{"order reference of free text", model.KindCancellation, func(d *model.Delivery) { d.Refs.OrderReference = "the bed order" }, provider.ErrInvalidCopy},
		{"no event", model.KindCancellation, func(d *model.Delivery) { d.Referral.Event = nil }, provider.ErrInvalidCopy},
		{"event of another kind", model.KindCancellation, func(d *model.Delivery) { d.Referral.Event.Kind = model.KindCollection }, provider.ErrInvalidCopy},
		{"event without time", model.KindCollection, func(d *model.Delivery) { d.Referral.Event.OccurredAt = time.Time{} }, provider.ErrInvalidCopy},
		{"collection by nobody", model.KindCollection, func(d *model.Delivery) { d.Referral.Event.From = "" }, provider.ErrInvalidCopy},
		{"complaint without council", model.KindComplaint, func(d *model.Delivery) { d.Referral.Event.Complaint.Council = "" }, provider.ErrInvalidCopy},
		{"no referral id", model.KindCancellation, func(d *model.Delivery) { d.Referral.ID = "" }, provider.ErrInvalidCopy},
		{"amendment field not carried", model.KindAmendment, func(d *model.Delivery) { d.Fields = []string{"complaint.summary"} }, provider.ErrFieldNotCarried},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base(tc.kind)
			tc.mutate(&d)
			if _, err := provider.Outbound(d); !errors.Is(err, tc.want) {
				t.Errorf("Outbound err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestComplaintContactOnlyWhenAllowed(t *testing.T) {
	full, _ := eventSentinels(model.KindComplaint)
	full.Event.Complaint.ContactAllowed = false
	// A copy that holds a contact the council did not allow (cut by
	// hand, not by the catalogue) still does not pass it on.
	cut, _ := minimise.Referral(&full, nil)
	cut.Event.Complaint.Contact = full.Event.Complaint.Contact
	req, err := provider.Outbound(model.Delivery{Kind: model.KindComplaint, Recipient: "provider", IdempotencyKey: "k",
		Fields: []string{"complaint.contact"}, Referral: cut, Refs: model.References{OrderReference: "ORD-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := req.Body.(provider.ComplaintRequest); c.Contact != nil {
		t.Errorf("contact sent though not allowed: %+v", c.Contact)
	}
}

func TestDecodeAcknowledgement(t *testing.T) {
	if a := provider.DecodeAcknowledgement([]byte(`{"reference":"CAN-000001","status":"received","extra":1}`)); a.Reference != "CAN-000001" {
		t.Errorf("acknowledgement = %+v", a)
	}
	for _, bad := range []string{``, `[]`, `{"reference":"two words"}`, `{"reference":7}`} {
		if a := provider.DecodeAcknowledgement([]byte(bad)); a.Reference != "" {
			t.Errorf("%s: reference %q, want none", bad, a.Reference)
		}
	}
}
