// Package openapitest checks an adapter's openapi.yaml and the payloads of
// its tests against it with kin-openapi. It is for tests only: nothing but
// _test.go files imports it, so kin-openapi never enters the hub.
//
// A document is stricter here than as published in one way: an object
// schema that names its properties and says nothing of additionalProperties
// is closed (additionalProperties: false). A partner may add members to an
// answer ("the hub ignores them"), but the hub's Go types and its
// simulators must write nothing the document does not name.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

const schemaRef = "#/components/schemas/"

// Doc is a loaded, validated OpenAPI document.
type Doc struct {
	*openapi3.T
	router routers.Router
}

// Load reads the document at path and fails t unless it loads, resolves and
// passes kin-openapi's validation of the document itself.
func Load(t testing.TB, path string) *Doc {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("%s is not a valid OpenAPI document: %v", path, err)
	}
	closed := map[*openapi3.Schema]bool{}
	for _, s := range doc.Components.Schemas {
		closeObjects(s, closed)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &Doc{T: doc, router: router}
}

// closeObjects makes every object schema under s that names its properties
// and leaves additionalProperties unsaid refuse other members.
func closeObjects(s *openapi3.SchemaRef, done map[*openapi3.Schema]bool) {
	if s == nil || s.Value == nil || done[s.Value] {
		return
	}
	v := s.Value
	done[v] = true
	if len(v.Properties) > 0 && v.AdditionalProperties.Has == nil && v.AdditionalProperties.Schema == nil {
		v.AdditionalProperties.Has = new(bool)
	}
	for _, p := range v.Properties {
		closeObjects(p, done)
	}
	closeObjects(v.Items, done)
}

// Schema is the component schema called name; t fails when there is none.
func (d *Doc) Schema(t testing.TB, name string) *openapi3.Schema {
	t.Helper()
	s := d.Components.Schemas[name]
	if s == nil || s.Value == nil {
		t.Fatalf("no schema %s in the document", name)
	}
	return s.Value
}

// Properties are the names of the properties of the component schema
// called name, sorted.
func (d *Doc) Properties(t testing.TB, name string) []string {
	t.Helper()
	var out []string
	for k := range d.Schema(t, name).Properties {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Enum is the enum of property prop of the component schema called name.
func (d *Doc) Enum(t testing.TB, name, prop string) []string {
	t.Helper()
	p := d.Schema(t, name).Properties[prop]
	if p == nil || p.Value == nil {
		t.Fatalf("no property %s.%s in the document", name, prop)
	}
	var out []string
	for _, e := range p.Value.Enum {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// Webhook is the operation under x-webhooks: name: method, as decoded YAML
// (nil when absent).
func (d *Doc) Webhook(name, method string) map[string]any {
	hooks, _ := d.Extensions["x-webhooks"].(map[string]any)
	hook, _ := hooks[name].(map[string]any)
	op, _ := hook[method].(map[string]any)
	return op
}

// JSON is v as encoding/json writes and reads it back: what goes on the
// wire, in the form the validators take.
func JSON(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// Conform reports, as errors of t at, every way the JSON of v breaks the
// component schema called name: types, required members, members the
// schema does not name, enums, patterns, lengths and formats.
func (d *Doc) Conform(t testing.TB, name string, v any, at string) {
	t.Helper()
	s := d.Schema(t, name)
	err := s.VisitJSON(JSON(t, v), openapi3.MultiErrors(), openapi3.EnableFormatValidation())
	report(t, at, err)
}

// ConformAll is Conform, and besides that every object in v holds every
// property its schema defines: a fully populated Go value then proves that
// the schema and the Go type name the same members.
func (d *Doc) ConformAll(t testing.TB, name string, v any, at string) {
	t.Helper()
	d.Conform(t, name, v, at)
	d.Walk(t, name, v, func(_ string, s *openapi3.Schema, obj map[string]any, path string) {
		t.Helper()
		for k := range s.Properties {
			if _, ok := obj[k]; !ok {
				t.Errorf("%s%s: schema property %q never written by the Go type", at, path, k)
			}
		}
	})
}

// Written records in seen, as "Schema.property", every property of a named
// component schema that the JSON of v writes.
func (d *Doc) Written(t testing.TB, name string, v any, seen map[string]bool) {
	t.Helper()
	d.Walk(t, name, v, func(schema string, _ *openapi3.Schema, obj map[string]any, _ string) {
		if schema == "" {
			return
		}
		for k := range obj {
			seen[schema+"."+k] = true
		}
	})
}

// Walk calls f for every JSON object in v with the schema it is checked
// against, that schema's component name ("" when inline) and its path in v.
func (d *Doc) Walk(t testing.TB, name string, v any, f func(schema string, s *openapi3.Schema, obj map[string]any, path string)) {
	t.Helper()
	d.Schema(t, name)
	walk(d.Components.Schemas[name], name, JSON(t, v), "", f)
}

func walk(ref *openapi3.SchemaRef, name string, v any, path string, f func(string, *openapi3.Schema, map[string]any, string)) {
	if ref == nil || ref.Value == nil {
		return
	}
	if ref.Ref != "" {
		name = strings.TrimPrefix(ref.Ref, schemaRef)
	}
	switch x := v.(type) {
	case map[string]any:
		f(name, ref.Value, x, path)
		for k, sub := range x {
			walk(ref.Value.Properties[k], "", sub, path+"."+k, f)
		}
	case []any:
		for _, e := range x {
			walk(ref.Value.Items, "", e, path+"[]", f)
		}
	}
}

// Answer checks an answer of a partner's simulator to method path against
// the operation the document gives that path: its status must be one the
// operation documents, and its headers, media type and body what the
// document says for that status.
func (d *Doc) Answer(t testing.TB, method, path string, status int, header http.Header, body []byte) {
	t.Helper()
	// The router matches the document's first server: the path is taken
	// as under it, as the hub's configured base URL is.
	base, err := url.Parse(d.Servers[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + path
	req, err := http.NewRequest(method, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in the document: %v", method, path, err)
	}
	opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts},
		Status:                 status,
		Header:                 header,
		Options:                opts,
	}
	in.SetBodyBytes(body)
	report(t, method+" "+path+" answer", openapi3filter.ValidateResponse(context.Background(), in))
}

// Request checks a request the hub sends, method path with header and
// body, against the operation the document gives that path: its
// parameters (headers), media type and body. Security is not checked.
func (d *Doc) Request(t testing.TB, method, path string, header http.Header, body []byte) {
	t.Helper()
	base, err := url.Parse(d.Servers[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	u := *base
	u.Path = strings.TrimSuffix(base.Path, "/") + path
	req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header.Clone()
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in the document: %v", method, path, err)
	}
	opts := &openapi3filter.Options{MultiError: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	report(t, method+" "+path+" request", openapi3filter.ValidateRequest(context.Background(),
		&openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}))
}

// report writes each error err holds as an error of t.
func report(t testing.TB, at string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var multi openapi3.MultiError
	if errors.As(err, &multi) {
		for _, e := range multi {
			report(t, at, e)
		}
		return
	}
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		// Its Error() prints the whole schema; the place and reason say it.
		t.Errorf("%s: at /%s: %s", at, strings.Join(se.JSONPointer(), "/"), se.Reason)
		return
	}
	t.Errorf("%s: %v", at, err)
}
