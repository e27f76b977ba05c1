package crm_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/adapters/crm"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
)

const validCase = `{"caseType":"ices-equipment-order","externalReference":"ref-1","status":"order-placed",
	"title":"ICES equipment order placed","fields":{"nhsNumber":"9990000018","postcode":"CH2 1ZZ"},
	"notes":[{"text":"Equipment order placed with the provider"}]}`

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
	replace := func(old, new string) string { return strings.Replace(validCase, old, new, 1) }
	for _, tc := range []struct {
		name   string
		path   string
		body   string
		header map[string]string
		status int
		code   string
	}{
		{"valid", "/cases", validCase, nil, 201, ""},
		{"other path", "/orders", validCase, nil, 404, "not-found"},
		{"no idempotency key", "/cases", validCase, map[string]string{"Idempotency-Key": ""}, 400, "idempotency-key-required"},
		{"form body", "/cases", validCase, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported-media-type"},
		{"broken JSON", "/cases", `{`, nil, 400, "invalid-json"},
		{"unknown member", "/cases", replace(`"title"`, `"owner":"x","title"`), nil, 400, "invalid-json"},
		{"unknown case type", "/cases", replace("ices-equipment-order", "pothole"), nil, 422, "invalid-case"},
		{"status not allowed", "/cases", replace("order-placed", "closed"), nil, 422, "invalid-case"},
		{"no external reference", "/cases", replace(`"ref-1"`, `""`), nil, 422, "invalid-case"},
		{"no title", "/cases", replace(`"ICES equipment order placed"`, `""`), nil, 422, "invalid-case"},
		{"unknown field", "/cases", replace(`"postcode"`, `"religion"`), nil, 422, "invalid-case"},
		{"empty field", "/cases", replace(`"CH2 1ZZ"`, `""`), nil, 422, "invalid-case"},
		{"bad NHS number", "/cases", replace("9990000018", "9990000019"), nil, 422, "invalid-case"},
		{"empty note", "/cases", replace(`"Equipment order placed with the provider"`, `""`), nil, 422, "invalid-case"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := crm.NewSimulator()
			resp, eb, raw := post(t, sim, tc.path, tc.body, tc.header)
			if resp.StatusCode != tc.status || eb.Code != tc.code {
				t.Fatalf("answer = %d %s, want %d %q", resp.StatusCode, raw, tc.status, tc.code)
			}
			if strings.Contains(raw, "9990000019") || strings.Contains(raw, "CH2 1ZZ") {
				t.Errorf("the answer echoes a request value: %s", raw)
			}
		})
	}
}

func TestSimulatorIdempotencyAndFailures(t *testing.T) {
	sim := crm.NewSimulator()
	sim.FailNext(1, 504, "")
	if resp, _, _ := post(t, sim, "/cases", validCase, nil); resp.StatusCode != 504 {
		t.Fatalf("FailNext: %d", resp.StatusCode)
	}
	first, _, raw1 := post(t, sim, "/cases", validCase, nil)
	again, _, raw2 := post(t, sim, "/cases", validCase, nil)
	if first.StatusCode != 201 || again.StatusCode != 200 || raw1 != raw2 || !strings.Contains(raw1, `"caseReference":"CASE-000001"`) || !strings.Contains(raw1, `"status":"open"`) {
		t.Fatalf("first %d %s, again %d %s", first.StatusCode, raw1, again.StatusCode, raw2)
	}
	other, _, raw3 := post(t, sim, "/cases", strings.Replace(validCase, "ref-1", "ref-2", 1), map[string]string{"Idempotency-Key": "key-2"})
	if other.StatusCode != 201 || !strings.Contains(raw3, "CASE-000002") {
		t.Fatalf("second case: %d %s", other.StatusCode, raw3)
	}
	conflict, eb, _ := post(t, sim, "/cases", strings.Replace(validCase, "ref-1", "ref-3", 1), nil)
	if conflict.StatusCode != 409 || eb.Code != "idempotency-key-reused" {
		t.Errorf("reused key = %d %q", conflict.StatusCode, eb.Code)
	}
	if s := sim.Stats(); s != (partnersim.Stats{Requests: 5, Created: 2, Repeats: 1, Refused: 1, Failed: 1}) {
		t.Errorf("stats = %+v", s)
	}
	if cs := sim.Cases(); len(cs) != 2 || cs[0].ExternalReference != "ref-1" || cs[1].ExternalReference != "ref-2" {
		t.Errorf("cases = %+v", cs)
	}
	if r := sim.Received(); len(r) != 5 || r[0].Status != 504 || !r[2].Repeat {
		t.Errorf("received = %+v", r)
	}
}
