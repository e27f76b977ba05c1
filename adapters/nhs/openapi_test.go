package nhs_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/iceshub/iceshub/adapters/nhs"
	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// doc is the part of an OpenAPI document the contract test reads.
type doc struct {
	OpenAPI    string                               `yaml:"openapi"`
	Paths      map[string]map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas    map[string]*schema `yaml:"schemas"`
		Parameters map[string]struct {
			Name string `yaml:"name"`
		} `yaml:"parameters"`
	} `yaml:"components"`
}

type schema struct {
	Ref                  string             `yaml:"$ref"`
	Type                 string             `yaml:"type"`
	Required             []string           `yaml:"required"`
	Properties           map[string]*schema `yaml:"properties"`
	Items                *schema            `yaml:"items"`
	Enum                 []string           `yaml:"enum"`
	AdditionalProperties *bool              `yaml:"additionalProperties"`
}

func loadDoc(t *testing.T) *doc {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	if err := yaml.Unmarshal(b, &d); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	return &d
}

func (d *doc) resolve(t *testing.T, s *schema) *schema {
	t.Helper()
	for s != nil && s.Ref != "" {
		next, ok := d.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
		if !ok {
			t.Fatalf("unresolved $ref %s", s.Ref)
		}
		s = next
	}
	return s
}

// conform checks that v (decoded JSON) fits s, and records in seen every
// property of a named schema that v writes ("Reference.display").
func (d *doc) conform(t *testing.T, s *schema, v any, at string, seen map[string]bool) {
	t.Helper()
	name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
	s = d.resolve(t, s)
	switch x := v.(type) {
	case map[string]any:
		if s.Type != "object" {
			t.Errorf("%s: JSON object, schema type %q", at, s.Type)
			return
		}
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				t.Errorf("%s: required member %q missing", at, r)
			}
		}
		for k, sub := range x {
			ps, ok := s.Properties[k]
			if !ok {
				t.Errorf("%s: member %q not in the schema", at, k)
				continue
			}
			if name != "" {
				seen[name+"."+k] = true
			}
			d.conform(t, ps, sub, at+"."+k, seen)
		}
	case []any:
		if s.Type != "array" {
			t.Errorf("%s: JSON array, schema type %q", at, s.Type)
			return
		}
		for _, e := range x {
			d.conform(t, s.Items, e, at, seen)
		}
	case string:
		if s.Type != "string" {
			t.Errorf("%s: JSON string, schema type %q", at, s.Type)
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, x) {
			t.Errorf("%s: %q not in enum %v", at, x, s.Enum)
		}
	default:
		t.Errorf("%s: unexpected JSON %T", at, v)
	}
}

// TestOpenAPIDescribesWhatTheHubSends checks every golden resource of
// mappings/fhir against the document, and that together they write every
// element the document defines (but meta, which only servers write): the
// document and the code name the same elements.
func TestOpenAPIDescribesWhatTheHubSends(t *testing.T) {
	d := loadDoc(t)
	if !strings.HasPrefix(d.OpenAPI, "3.0.") {
		t.Errorf("openapi = %q", d.OpenAPI)
	}
	if len(d.Paths) != 2 || d.Paths["/Task/{id}"]["put"] == nil || d.Paths["/Communication"]["post"] == nil {
		t.Fatalf("paths = %v, want exactly PUT /Task/{id} and POST /Communication", d.Paths)
	}
	var params []string
	for _, p := range d.Components.Parameters {
		params = append(params, p.Name)
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
		d.conform(t, &schema{Ref: "#/components/schemas/" + rt}, v, rt, seen)
	}
	for _, name := range []string{"Task", "Communication", "Identifier", "Coding", "CodeableConcept", "Reference", "Annotation"} {
		for prop := range d.Components.Schemas[name].Properties {
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
	d := loadDoc(t)
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
		_, body := c.req.do(t, sim)
		d.conform(t, &schema{Ref: "#/components/schemas/" + c.schema}, body, c.schema, seen)
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
