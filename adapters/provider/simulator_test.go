package provider_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
)

const validOrder = `{"hubReference":"ref-1","idempotencyKey":"key-1","priority":"urgent",
	"person":{"nhsNumber":"9990000018"},"items":[{"code":"BED-1","quantity":1}]}`

func post(t *testing.T, h http.Handler, path, body string, header map[string]string) (*http.Response, partnersim.ErrorBody, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "key-1")
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	resp := w.Result()
	raw, _ := io.ReadAll(resp.Body)
	var eb partnersim.ErrorBody
	_ = json.Unmarshal(raw, &eb)
	return resp, eb, string(raw)
}

func TestSimulatorContract(t *testing.T) {
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"valid", "/orders", validOrder, nil, 201, ""},
		{"other path", "/cases", validOrder, nil, 404, "not-found"},
		{"no idempotency key", "/orders", validOrder, map[string]string{"Idempotency-Key": ""}, 400, "idempotency-key-required"},
		{"not JSON content type", "/orders", validOrder, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported-media-type"},
		{"JSON with charset", "/orders", validOrder, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 201, ""},
		{"basic auth", "/orders", validOrder, map[string]string{"Authorization": "Basic dTpw"}, 401, "unauthorised"},
		{"broken JSON", "/orders", `{"hubReference":`, nil, 400, "invalid-json"},
		{"two JSON values", "/orders", validOrder + validOrder, nil, 400, "invalid-json"},
		{"unknown member", "/orders", `{"hubReference":"r","idempotencyKey":"key-1","items":[{"code":"a","quantity":1}],"religion":"x"}`, nil, 400, "invalid-json"},
		{"no items", "/orders", `{"hubReference":"r","idempotencyKey":"key-1"}`, nil, 422, "invalid-order"},
		{"key differs from header", "/orders", `{"hubReference":"r","idempotencyKey":"other","items":[{"code":"a","quantity":1}]}`, nil, 422, "invalid-order"},
		{"zero quantity", "/orders", `{"hubReference":"r","idempotencyKey":"key-1","items":[{"code":"a","quantity":0}]}`, nil, 422, "invalid-order"},
		{"bad NHS number", "/orders", `{"hubReference":"r","idempotencyKey":"key-1","person":{"nhsNumber":"9990000019"},"items":[{"code":"a","quantity":1}]}`, nil, 422, "invalid-order"},
		{"unknown priority", "/orders", `{"hubReference":"r","idempotencyKey":"key-1","priority":"soonish","items":[{"code":"a","quantity":1}]}`, nil, 422, "invalid-order"},
		{"too large", "/orders", `{"hubReference":"` + strings.Repeat("x", partnersim.MaxBodyBytes) + `"}`, nil, 413, "too-large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := provider.NewSimulator()
			resp, eb, raw := post(t, sim, tc.path, tc.body, tc.header)
			if resp.StatusCode != tc.status || eb.Code != tc.code {
				t.Fatalf("answer = %d %s, want %d %q", resp.StatusCode, raw, tc.status, tc.code)
			}
			if strings.Contains(raw, "9990000019") || strings.Contains(raw, "religion\":\"x") {
				t.Errorf("the answer echoes a request value: %s", raw)
			}
			if got := sim.Received(); len(got) != 1 || got[0].Status != tc.status {
				t.Errorf("received = %+v", got)
			}
		})
	}
}

func TestSimulatorMethodNotAllowed(t *testing.T) {
	sim := provider.NewSimulator()
	w := httptest.NewRecorder()
	sim.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/orders", nil))
	if w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET /orders = %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestSimulatorIdempotency(t *testing.T) {
	sim := provider.NewSimulator()
	first, _, raw1 := post(t, sim, "/orders", validOrder, nil)
	again, _, raw2 := post(t, sim, "/orders", validOrder, map[string]string{"X-Correlation-ID": "corr-9"})
	if first.StatusCode != 201 || again.StatusCode != 200 || raw1 != raw2 {
		t.Fatalf("first %d %s, again %d %s", first.StatusCode, raw1, again.StatusCode, raw2)
	}
	if again.Header.Get("X-Correlation-ID") != "corr-9" {
		t.Error("X-Correlation-ID not echoed")
	}
	changed := strings.Replace(validOrder, `"urgent"`, `"routine"`, 1)
	conflict, eb, _ := post(t, sim, "/orders", changed, nil)
	if conflict.StatusCode != 409 || eb.Code != "idempotency-key-reused" {
		t.Errorf("reused key with another body = %d %q", conflict.StatusCode, eb.Code)
	}
	if s := sim.Stats(); s != (partnersim.Stats{Requests: 3, Created: 1, Repeats: 1, Refused: 1}) {
		t.Errorf("stats = %+v", s)
	}
	if n := len(sim.Orders()); n != 1 {
		t.Errorf("orders = %d", n)
	}
}

func TestSimulatorFailures(t *testing.T) {
	sim := provider.NewSimulator()
	sim.FailNext(2, 429, "7")
	for range 2 {
		resp, eb, _ := post(t, sim, "/orders", validOrder, nil)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" || eb.Code != "simulated-failure" {
			t.Fatalf("answer = %d %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), eb.Code)
		}
	}
	if resp, _, _ := post(t, sim, "/orders", validOrder, nil); resp.StatusCode != 201 {
		t.Fatalf("after FailNext ran out: %d", resp.StatusCode)
	}
	sim.SetFailure(500)
	sim.FailNext(5, 503, "")
	sim.ClearFailure()
	if resp, _, _ := post(t, sim, "/orders", validOrder, nil); resp.StatusCode != 200 {
		t.Fatalf("after ClearFailure: %d", resp.StatusCode)
	}
	sim.SetFailure(500)
	if resp, _, _ := post(t, sim, "/orders", validOrder, nil); resp.StatusCode != 500 {
		t.Fatalf("SetFailure: %d", resp.StatusCode)
	}
	if s := sim.Stats(); s != (partnersim.Stats{Requests: 5, Created: 1, Repeats: 1, Failed: 3}) {
		t.Errorf("stats = %+v", s)
	}
	// Failed requests are recorded with what they carried.
	if r := sim.Received()[0]; !r.Decoded || r.Body.HubReference != "ref-1" || r.Status != 429 {
		t.Errorf("failed request record = %+v", r)
	}
}

func TestSimulatorToken(t *testing.T) {
	sim := provider.NewSimulator()
	sim.RequireToken("t0k")
	for auth, want := range map[string]int{"": 401, "Bearer wrong": 401, "Bearer t0k": 201} {
		resp, _, _ := post(t, sim, "/orders", validOrder, map[string]string{"Authorization": auth})
		if resp.StatusCode != want {
			t.Errorf("Authorization %q: %d, want %d", auth, resp.StatusCode, want)
		}
		if want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	}
}
