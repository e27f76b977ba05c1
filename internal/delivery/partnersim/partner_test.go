package partnersim_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/delivery/partnersim"
)

func TestParams(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          map[string]string
		ok            bool
	}{
		{"/orders", "/orders", map[string]string{}, true},
		{"/orders", "/orders/", nil, false},
		{"/orders/{ref}/cancellation", "/orders/ORD-1/cancellation", map[string]string{"ref": "ORD-1"}, true},
		{"/orders/{ref}/cancellation", "/orders/ORD%2F1/cancellation", map[string]string{"ref": "ORD/1"}, true},
		{"/orders/{ref}/cancellation", "/orders//cancellation", nil, false},
		{"/orders/{ref}/cancellation", "/orders/ORD-1/amendments", nil, false},
		{"/orders/{ref}/cancellation", "/orders/a/b/cancellation", nil, false},
	} {
		got, ok := partnersim.Params(tc.pattern, tc.path)
		if ok != tc.ok || (ok && !maps.Equal(got, tc.want)) {
			t.Errorf("Params(%q, %q) = %v, %v; want %v, %v", tc.pattern, tc.path, got, ok, tc.want, tc.ok)
		}
	}
}

type body struct {
	Name string `json:"name"`
}

func TestPartnerSharesFailuresAndReferences(t *testing.T) {
	p := partnersim.NewPartner()
	mk := func(path, prefix string) *partnersim.Sim[body] {
		return partnersim.NewOn(p, partnersim.Contract[body]{
			Path:      path,
			Validate:  func(string, *body) []partnersim.Problem { return nil },
			Reference: func(n int) string { return prefix + strings.Repeat("1", n) },
			Answer:    func(ref string) any { return map[string]string{"ref": ref} },
			Check: func(params map[string]string, _ *body) *partnersim.Refusal {
				if id, ok := params["id"]; ok && !p.Known(id) {
					return &partnersim.Refusal{Status: 404, Code: "unknown", Message: "unknown"}
				}
				return nil
			},
		})
	}
	things, subs := mk("/things", "T"), mk("/things/{id}/subs", "S")
	h := partnersim.Route(things, subs)
	send := func(path, key, b string) int {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	if got := send("/things/T1/subs", "k0", `{"name":"a"}`); got != 404 {
		t.Errorf("sub of an unknown thing: %d", got)
	}
	if got := send("/things", "k1", `{"name":"a"}`); got != 201 || !p.Known("T1") {
		t.Errorf("thing: %d, known %v", got, p.Known("T1"))
	}
	p.FailWhen(func(path, key string, b []byte) (int, string, bool) {
		return 502, "", strings.Contains(string(b), "bad")
	})
	if got := send("/things/T1/subs", "k2", `{"name":"bad"}`); got != 502 {
		t.Errorf("FailWhen matching: %d", got)
	}
	if got := send("/things/T1/subs", "k3", `{"name":"good"}`); got != 201 {
		t.Errorf("FailWhen not matching: %d", got)
	}
	things.FailNext(1, 429, "3") // through any Sim, for the whole partner
	if got := send("/things/T1/subs", "k4", `{"name":"good"}`); got != 429 {
		t.Errorf("FailNext via another endpoint: %d", got)
	}
	p.ClearFailure()
	if got := send("/things/T1/subs", "k5", `{"name":"bad"}`); got != 201 {
		t.Errorf("after ClearFailure: %d", got)
	}
	p.Remember("X9")
	if got := send("/things/X9/subs", "k6", `{}`); got != 201 {
		t.Errorf("remembered reference: %d", got)
	}
	if got := send("/elsewhere", "k7", `{}`); got != 404 {
		t.Errorf("unknown path: %d", got)
	}
	j := p.Journal()
	if len(j) != 8 {
		t.Fatalf("journal = %d entries", len(j))
	}
	for i, e := range j {
		if e.Seq != i+1 {
			t.Errorf("entry %d has Seq %d", i, e.Seq)
		}
	}
	if j[2].Status != 502 || string(j[2].Body) != `{"name":"bad"}` || j[2].Header.IdempotencyKey != "k2" {
		t.Errorf("journal entry = %+v", j[2])
	}
	if r := subs.Received(); len(r) != 6 || r[0].Seq != 1 || r[1].Seq != 3 {
		t.Errorf("sub records = %+v", r)
	}
}
