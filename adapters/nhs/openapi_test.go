package nhs_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/adapters/internal/openapitest"
	"github.com/iceshub/iceshub/adapters/nhs"
	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// TestOpenAPIDescribesWhatTheHubSends checks every golden resource of
// mappings/fhir against the document, and that together they write every
// element the document defines (but meta, which only servers write): the
// document and the code name the same elements.
func TestOpenAPIDescribesWhatTheHubSends(t *testing.T) {
	d := openapitest.Load(t, "openapi.yaml")
	if !strings.HasPrefix(d.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q", d.OpenAPI)
	}
	if d.Paths.Len() != 2 || d.Paths.Find("/Task/{id}").GetOperation(http.MethodPut) == nil ||
		d.Paths.Find("/Communication").GetOperation(http.MethodPost) == nil {
		t.Fatalf("paths = %v, want exactly PUT /Task/{id} and POST /Communication", d.Paths.InMatchingOrder())
	}
	var params []string
	for _, p := range d.Components.Parameters {
		params = append(params, p.Value.Name)
	}
	for _, h := range []string{"Idempotency-Key", "X-Request-ID", "X-Correlation-ID"} {
		if !slices.Contains(params, h) {
			t.Errorf("header %s not documented", h)
		}
	}

	files, err := filepath.Glob("../../testdata/nhs/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no goldens (%v)", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		rt, _ := v["resourceType"].(string)
		d.Conform(t, rt, v, filepath.Base(f))
		d.Written(t, rt, v, seen)
	}
	for _, name := range []string{"Task", "Communication", "Identifier", "Coding", "CodeableConcept", "Reference", "Annotation"} {
		for _, prop := range d.Properties(t, name) {
			if prop == "meta" || name == "Communication" && prop == "id" {
				continue // only servers write them
			}
			if !seen[name+"."+prop] {
				t.Errorf("%s.%s is documented but no golden writes it", name, prop)
			}
		}
	}
}

func TestOpenAPIDescribesTheSimulatorsAnswers(t *testing.T) {
	d := openapitest.Load(t, "openapi.yaml")
	seen := map[string]bool{}
	for _, c := range []struct {
		req    simRequest
		schema string
	}{
		{simRequest{method: http.MethodPut, path: "/Task/" + simTaskID, body: validTask}, "Task"},
		{simRequest{method: http.MethodPost, path: "/Communication", body: validCommunication, header: map[string]string{"Idempotency-Key": "k2"}}, "Communication"},
		{simRequest{method: http.MethodPut, path: "/Task/" + simTaskID, body: `{}`}, "OperationOutcome"},
	} {
		sim := nhs.NewSimulator()
		w, body := c.req.do(t, sim)
		d.Answer(t, c.req.method, c.req.path, w.Code, w.Header(), w.Body.Bytes())
		d.Conform(t, c.schema, body, c.schema)
		d.Written(t, c.schema, body, seen)
	}
	if !seen["Task.meta"] || !seen["Communication.meta"] || !seen["Communication.id"] {
		t.Errorf("the simulator's answers carry no meta: %v", seen)
	}
}

// TestOpenAPITaskTableIsWhatTheHubWrites reads the table of order status
// to Task.status in the contract's description and maps an order status
// message of each order status with fhirmap.TaskFor: the contract
// documents exactly the status written, for every order status.
func TestOpenAPITaskTableIsWhatTheHubWrites(t *testing.T) {
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[model.OrderStatus]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(strings.TrimSpace(line), "|")
		if len(cells) != 5 {
			continue
		}
		first := strings.Fields(strings.TrimSpace(cells[1]))
		if len(first) == 0 {
			continue
		}
		s := model.OrderStatus(strings.Trim(first[0], "`"))
		if s.Valid() {
			documented[s] = strings.Trim(strings.TrimSpace(cells[2]), "`")
		}
	}
	for _, s := range append([]model.OrderStatus{model.StatusOrdered}, model.OrderStatuses()...) {
		d := copyFor(model.KindOrderStatus, s)
		if s == model.StatusOrdered {
			d = copyFor(model.KindReferral, "")
		}
		task, err := fhirmap.TaskFor(d, fhirmap.EmitOptions{Provider: "provider"})
		if err != nil {
			t.Fatal(err)
		}
		if documented[s] != task.Status {
			t.Errorf("openapi.yaml: %s gives Task.status %q; the hub writes %q", s, documented[s], task.Status)
		}
	}
}
