package provider_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/model"
	mapping "github.com/iceshub/iceshub/mappings/provider"
)

func outboundFixture(t *testing.T, name string) model.Delivery {
	t.Helper()
	b, err := os.ReadFile("../../testdata/provider/outbound/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var d model.Delivery
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// placeOrder sends the order fixture and returns the provider's reference.
func placeOrder(t *testing.T, e *env) string {
	t.Helper()
	r, err := e.client.Send(context.Background(), fixture(t, "order-home-urgent.json"))
	if err != nil {
		t.Fatal(err)
	}
	return r.PartnerReference
}

func TestSendChangesToAnOrder(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		path    string
		ref     string
		got     func(*env) any
	}{
		{"cancellation-with-reason.json", "/orders/ORD-000001/cancellation", "CAN-000001", func(e *env) any { return e.sim.Cancellations()[0] }},
		{"amendment-more-items.json", "/orders/ORD-000001/amendments", "AMD-000001", func(e *env) any { return e.sim.Amendments()[0] }},
		{"collection-council-died.json", "/orders/ORD-000001/collections", "COL-000001", func(e *env) any { return e.sim.Collections()[0] }},
		{"complaint-with-contact.json", "/complaints", "CMP-000001", func(e *env) any { return e.sim.Complaints()[0] }},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			e := newEnv(t, nil)
			d := outboundFixture(t, tc.fixture)
			d.Refs.OrderReference = placeOrder(t, e)
			receipt, err := e.client.Send(context.Background(), d)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if receipt.PartnerReference != tc.ref || receipt.StatusCode != 201 || !slices.Equal(receipt.Fields, sentFields(t, d)) {
				t.Errorf("receipt = %+v", receipt)
			}
			j := e.sim.Journal()
			if len(j) != 2 || j[0].Path != "/orders" || j[1].Path != tc.path || j[1].Seq != 2 {
				t.Fatalf("journal = %+v", j)
			}
			h := j[1].Header
			if h.IdempotencyKey != d.IdempotencyKey || h.CorrelationID != d.Referral.Source.CorrelationID ||
				h.Authorization != "Bearer provider-token" || h.ContentType != "application/json" {
				t.Errorf("headers = %+v", h)
			}
			req, err := mapping.Outbound(d)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.got(e); !reflect.DeepEqual(got, req.Body) {
				t.Errorf("received =\n%+v\nwant\n%+v", got, req.Body)
			}
			want, _ := json.Marshal(req.Body)
			if !bytes.Equal(j[1].Body, want) {
				t.Errorf("journal body = %s", j[1].Body)
			}
			// Resent (a redelivery): recognised, nothing recorded twice.
			again, err := e.client.Send(context.Background(), d)
			if err != nil || again.StatusCode != 200 || again.PartnerReference != tc.ref {
				t.Errorf("resent: %+v, %v", again, err)
			}
		})
	}
}

func TestChangesBeforeTheOrderReachedTheProviderArePermanent(t *testing.T) {
	e := newEnv(t, nil)
	for _, name := range []string{"cancellation-with-reason.json", "amendment-more-items.json", "collection-council-died.json", "complaint-with-contact.json"} {
		d := outboundFixture(t, name)
		d.Refs.OrderReference = ""
		_, err := e.client.Send(context.Background(), d)
		if !delivery.IsPermanent(err) || !errors.Is(err, mapping.ErrNoOrderReference) {
			t.Errorf("%s: err = %v, want permanent ErrNoOrderReference", name, err)
		}
	}
	if n := len(e.sim.Journal()); n != 0 {
		t.Errorf("%d requests reached the provider", n)
	}
	// An order reference the provider does not know: refused by it, 404.
	d := outboundFixture(t, "cancellation-with-reason.json")
	d.Refs.OrderReference = "ORD-999999"
	_, err := e.client.Send(context.Background(), d)
	var de *delivery.Error
	if !errors.As(err, &de) || !de.Permanent || de.StatusCode != http.StatusNotFound {
		t.Errorf("unknown order: %v", err)
	}
}

func TestSimulatorFailsOneReferralSelectively(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.FailWhen(func(path, key string, body []byte) (int, string, bool) {
		return http.StatusServiceUnavailable, "1", bytes.Contains(body, []byte(`"hubReference":"ref-fail"`))
	})
	failing := fixture(t, "order-home-urgent.json")
	failing.Referral.ID, failing.IdempotencyKey = "ref-fail", "key-fail"
	if _, err := e.client.Send(context.Background(), failing); err == nil || delivery.IsPermanent(err) {
		t.Fatalf("failing order: %v, want transient", err)
	}
	other := fixture(t, "order-care-home-asap.json")
	if r, err := e.client.Send(context.Background(), other); err != nil || r.StatusCode != 201 {
		t.Fatalf("other order: %+v, %v", r, err)
	}
	e.sim.ClearFailure()
	r, err := e.client.Send(context.Background(), failing)
	if err != nil || r.PartnerReference != "ORD-000002" {
		t.Fatalf("after ClearFailure: %+v, %v", r, err)
	}
	// The journal shows every attempt, in order.
	var order []string
	for _, en := range e.sim.Journal() {
		var o mapping.OrderRequest
		_ = json.Unmarshal(en.Body, &o)
		order = append(order, o.HubReference+":"+http.StatusText(en.Status))
	}
	if got := strings.Join(order, ","); !strings.HasPrefix(got, "ref-fail:Service Unavailable") || !strings.HasSuffix(got, "ref-fail:Created") ||
		!strings.Contains(got, other.Referral.ID+":Created") {
		t.Errorf("journal = %s", got)
	}
}

func TestSimulatorEndpoints(t *testing.T) {
	sim := provider.NewSimulator()
	_, _, _ = post(t, sim, "/orders", validOrder, nil)
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		key    string
		status int
		code   string
	}{
		{"cancellation", "/orders/ORD-000001/cancellation", `{"referralId":"ref-1","cancelledAt":"2025-03-10T14:30:00Z"}`, "k1", 201, ""},
		{"cancellation repeated", "/orders/ORD-000001/cancellation", `{"referralId":"ref-1","cancelledAt":"2025-03-10T14:30:00Z"}`, "k1", 200, ""},
		{"cancellation of an unknown order", "/orders/ORD-000404/cancellation", `{"referralId":"ref-1","cancelledAt":"2025-03-10T14:30:00Z"}`, "k2", 404, "unknown-order"},
		{"cancellation without time", "/orders/ORD-000001/cancellation", `{"referralId":"ref-1"}`, "k3", 422, "invalid-cancellation"},
		{"cancellation with unknown member", "/orders/ORD-000001/cancellation", `{"referralId":"ref-1","cancelledAt":"2025-03-10T14:30:00Z","x":1}`, "k4", 400, "invalid-json"},
		{"amendment", "/orders/ORD-000001/amendments", strings.Replace(validOrder, "key-1", "k5", 1), "k5", 201, ""},
		{"amendment without items", "/orders/ORD-000001/amendments", `{"hubReference":"ref-1","idempotencyKey":"k6"}`, "k6", 422, "invalid-amendment"},
		{"collection", "/orders/ORD-000001/collections", `{"referralId":"ref-1","reason":{"code":"moved"},"requestedBy":"nhs","requestedAt":"2025-03-10T14:30:00Z"}`, "k7", 201, ""},
		{"collection for an unknown reason", "/orders/ORD-000001/collections", `{"referralId":"ref-1","reason":{"code":"bored"},"requestedBy":"nhs","requestedAt":"2025-03-10T14:30:00Z"}`, "k8", 422, "invalid-collection"},
		{"complaint", "/complaints", `{"complaintReference":"COMP-1","council":"council-cwac","orderReference":"ORD-000001","referralId":"ref-1","raisedAt":"2025-03-10T14:30:00Z"}`, "k9", 201, ""},
		{"complaint about an unknown order", "/complaints", `{"complaintReference":"COMP-1","council":"council-cwac","orderReference":"ORD-000404","referralId":"ref-1","raisedAt":"2025-03-10T14:30:00Z"}`, "k10", 404, "unknown-order"},
		{"complaint without council", "/complaints", `{"complaintReference":"COMP-1","orderReference":"ORD-000001","referralId":"ref-1","raisedAt":"2025-03-10T14:30:00Z"}`, "k11", 422, "invalid-complaint"},
		{"no such endpoint", "/orders/ORD-000001/refunds", `{}`, "k12", 404, "not-found"},
	} {
		resp, eb, raw := post(t, sim, tc.path, tc.body, map[string]string{"Idempotency-Key": tc.key})
		if resp.StatusCode != tc.status || eb.Code != tc.code {
			t.Errorf("%s: %d %s, want %d %q", tc.name, resp.StatusCode, raw, tc.status, tc.code)
		}
	}
	if n := len(sim.Cancellations()); n != 1 {
		t.Errorf("cancellations = %d", n)
	}
	if s := sim.Cancellation.Stats(); s != (partnersim.Stats{Requests: 5, Created: 1, Repeats: 1, Refused: 3}) {
		t.Errorf("cancellation stats = %+v", s)
	}
	// Injected failures apply to every endpoint of the provider.
	sim.FailNext(1, 500, "")
	if resp, _, _ := post(t, sim, "/complaints", `{}`, map[string]string{"Idempotency-Key": "k13"}); resp.StatusCode != 500 {
		t.Errorf("FailNext on /complaints: %d", resp.StatusCode)
	}
	for i, en := range sim.Journal() {
		if en.Seq != i+1 {
			t.Fatalf("journal out of order: %+v", sim.Journal())
		}
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
