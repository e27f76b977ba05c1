package nhs_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/adapters/nhs"
)

const simTaskID = "f79efdcd-a3d5-56bb-bbc9-882f533339ce"

const validTask = `{"resourceType":"Task","id":"` + simTaskID + `","status":"received","intent":"order",
 "for":{"type":"Patient","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990000018"}}}`

const validCommunication = `{"resourceType":"Communication","identifier":[{"system":"https://example.org/ices/Id/event","value":"e-1"}],
 "status":"completed","priority":"urgent","payload":[{"contentString":"concern"}]}`

type simRequest struct {
	method, path, body string
	header             map[string]string
}

func (r simRequest) do(t *testing.T, sim *nhs.Simulator) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	req.Header.Set("Content-Type", "application/fhir+json")
	req.Header.Set("X-Request-ID", "0b6c2a4e-0000-4000-8000-000000000001")
	req.Header.Set("Idempotency-Key", "key-1")
	for k, v := range r.header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	sim.ServeHTTP(w, req)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("answer Content-Type %q", ct)
	}
	return w, body
}

func TestSimulatorRefusesWhatBreaksTheContract(t *testing.T) {
	put := func(body string) simRequest {
		return simRequest{method: http.MethodPut, path: "/Task/" + simTaskID, body: body}
	}
	cases := []struct {
		name       string
		req        simRequest
		token      string
		status     int
		expression string
	}{
		{"unknown path", simRequest{method: http.MethodPost, path: "/Patient", body: `{}`}, "", 404, ""},
		{"POST to a Task", simRequest{method: http.MethodPost, path: "/Task/" + simTaskID, body: validTask}, "", 405, ""},
		{"PUT a Communication", simRequest{method: http.MethodPut, path: "/Communication", body: validCommunication}, "", 405, ""},
		{"no token", put(validTask), "t0k", 401, "http.Authorization"},
		{"wrong token", simRequest{method: http.MethodPut, path: "/Task/" + simTaskID, body: validTask,
			header: map[string]string{"Authorization": "Bearer nope"}}, "t0k", 401, "http.Authorization"},
		{"plain JSON", simRequest{method: http.MethodPut, path: "/Task/" + simTaskID, body: validTask,
			header: map[string]string{"Content-Type": "application/json"}}, "", 415, "http.Content-Type"},
		{"no request id", simRequest{method: http.MethodPut, path: "/Task/" + simTaskID, body: validTask,
			header: map[string]string{"X-Request-ID": ""}}, "", 400, "http.X-Request-ID"},
		{"POST without key", simRequest{method: http.MethodPost, path: "/Communication", body: validCommunication,
			header: map[string]string{"Idempotency-Key": ""}}, "", 400, "http.Idempotency-Key"},
		{"not JSON", put(`{"resourceType":`), "", 400, ""},
		{"wrong resource", put(`{"resourceType":"Patient","id":"` + simTaskID + `"}`), "", 400, "resourceType"},
		{"unknown element", put(strings.Replace(validTask, `"intent"`, `"input":[{"valueReference":{}}],"intent"`, 1)), "", 400, "Task"},
		{"id differs", put(strings.Replace(validTask, simTaskID, "other-id", 1)), "", 400, "Task.id"},
		{"no status", put(strings.Replace(validTask, `"status":"received",`, "", 1)), "", 422, "Task.status"},
		{"bad status", put(strings.Replace(validTask, `"received"`, `"shipped"`, 1)), "", 422, "Task.status"},
		{"no intent", put(strings.Replace(validTask, `,"intent":"order"`, "", 1)), "", 422, "Task.intent"},
		{"pseudonym as NHS number", put(strings.Replace(validTask, "9990000018", "3f9a0c6e1b", 1)), "", 422, "Task.for.identifier.value"},
		{"Communication with id", simRequest{method: http.MethodPost, path: "/Communication",
			body: strings.Replace(validCommunication, `"status"`, `"id":"x","status"`, 1)}, "", 400, "Communication.id"},
		{"Communication without status", simRequest{method: http.MethodPost, path: "/Communication",
			body: strings.Replace(validCommunication, `"status":"completed",`, "", 1)}, "", 422, "Communication.status"},
		{"empty payload", simRequest{method: http.MethodPost, path: "/Communication",
			body: strings.Replace(validCommunication, `"concern"`, `" "`, 1)}, "", 422, "Communication.payload[0].content[x]"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sim := nhs.NewSimulator()
			sim.RequireToken(c.token)
			w, body := c.req.do(t, sim)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if body["resourceType"] != "OperationOutcome" {
				t.Fatalf("answer is not an OperationOutcome: %s", w.Body)
			}
			if c.expression != "" && !strings.Contains(w.Body.String(), `"expression":["`+c.expression+`"]`) {
				t.Errorf("no issue at %s: %s", c.expression, w.Body)
			}
			if st := sim.Stats(); st.Refused != 1 || st.Created != 0 {
				t.Errorf("stats = %+v", st)
			}
			if got := sim.Received(); len(got) != 1 || got[0].Status != c.status || len(got[0].Problems) == 0 {
				t.Errorf("received = %+v", got)
			}
		})
	}
}

func TestSimulatorVersionsAndDeduplicates(t *testing.T) {
	sim := nhs.NewSimulator()
	put := simRequest{method: http.MethodPut, path: "/Task/" + simTaskID, body: validTask}
	w, body := put.do(t, sim)
	if w.Code != http.StatusCreated || w.Header().Get("ETag") != `W/"1"` ||
		!strings.HasSuffix(w.Header().Get("Location"), "/Task/"+simTaskID+"/_history/1") {
		t.Fatalf("first PUT: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if meta, _ := body["meta"].(map[string]any); meta["versionId"] != "1" {
		t.Errorf("answer meta = %v", body["meta"])
	}
	// The same key with another body is a conflict.
	changed := put
	changed.body = strings.Replace(validTask, `"received"`, `"accepted"`, 1)
	if w, _ := changed.do(t, sim); w.Code != http.StatusConflict {
		t.Errorf("key reused with another body: %d", w.Code)
	}
	// Under a new key it is version 2; the same again under a third key
	// changes nothing.
	changed.header = map[string]string{"Idempotency-Key": "key-2"}
	if w, _ := changed.do(t, sim); w.Code != http.StatusOK || w.Header().Get("ETag") != `W/"2"` {
		t.Errorf("update: %d %s", w.Code, w.Header().Get("ETag"))
	}
	changed.header = map[string]string{"Idempotency-Key": ""}
	if w, _ := changed.do(t, sim); w.Code != http.StatusOK || w.Header().Get("ETag") != `W/"2"` {
		t.Errorf("same Task again: %d %s", w.Code, w.Header().Get("ETag"))
	}
	// The first key still answers with version 1.
	if w, _ := put.do(t, sim); w.Code != http.StatusOK || w.Header().Get("ETag") != `W/"1"` {
		t.Errorf("first key again: %d %s", w.Code, w.Header().Get("ETag"))
	}
	if n := len(sim.TaskHistory(simTaskID)); n != 2 {
		t.Errorf("%d versions, want 2", n)
	}
	if st := sim.Stats(); st.Created != 1 || st.Updated != 1 || st.Repeats != 2 || st.Refused != 1 {
		t.Errorf("stats = %+v", st)
	}

	post := simRequest{method: http.MethodPost, path: "/Communication", body: validCommunication,
		header: map[string]string{"Idempotency-Key": "key-post", "If-None-Exist": "identifier=https%3A%2F%2Fexample.org%2Fices%2FId%2Fevent%7Ce-1"}}
	if w, body := post.do(t, sim); w.Code != http.StatusCreated || body["id"] != "comm-000001" {
		t.Errorf("create: %d %v", w.Code, body["id"])
	}
	post.header["Idempotency-Key"] = "key-3"
	if w, body := post.do(t, sim); w.Code != http.StatusOK || body["id"] != "comm-000001" {
		t.Errorf("conditional create that matches: %d %v", w.Code, body["id"])
	}
	if n := len(sim.Communications()); n != 1 {
		t.Errorf("%d Communications, want 1", n)
	}
}

func TestSimulatorFailsOnDemand(t *testing.T) {
	sim := nhs.NewSimulator()
	sim.FailNext(1, http.StatusServiceUnavailable, "2")
	put := simRequest{method: http.MethodPut, path: "/Task/" + simTaskID, body: validTask}
	w, body := put.do(t, sim)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "2" || body["resourceType"] != "OperationOutcome" {
		t.Errorf("injected failure: %d %v", w.Code, w.Header())
	}
	if w, _ := put.do(t, sim); w.Code != http.StatusCreated {
		t.Errorf("after the failure: %d", w.Code)
	}
	sim.SetFailure(http.StatusInternalServerError)
	if w, _ := put.do(t, sim); w.Code != http.StatusInternalServerError {
		t.Errorf("SetFailure: %d", w.Code)
	}
	sim.ClearFailure()
	if st := sim.Stats(); st.Failed != 2 || st.Created != 1 {
		t.Errorf("stats = %+v", st)
	}
}
