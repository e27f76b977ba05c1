package fhir_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
)

func TestJSONBombsAreRefusedBeforeParsing(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	deep := strings.Repeat(`{"a":`, fhiradapter.MaxJSONDepth+1) + "1" + strings.Repeat("}", fhiradapter.MaxJSONDepth+1)
	w := e.do(http.MethodPost, "/fhir/$process-message", []byte(deep))
	wantOutcome(t, w, http.StatusBadRequest, "structure", "Bundle")
	if !strings.Contains(w.Body.String(), "nested more than") {
		t.Errorf("diagnostics do not say why: %s", w.Body)
	}

	wide := []byte(`{"resourceType":"Bundle","x":[` + strings.TrimSuffix(strings.Repeat("0,", fhiradapter.MaxJSONValues+1), ",") + `]}`)
	w = e.do(http.MethodPost, "/fhir/$process-message", wide)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("wide JSON: status %d, want 413: %s", w.Code, w.Body)
	}

	// Braces inside strings are text, not nesting.
	quoted := []byte(`{"resourceType":"Bundle","type":"message","id":"` + strings.Repeat("{[", 200) + `","entry":[]}`)
	w = e.do(http.MethodPost, "/fhir/$process-message", quoted)
	if bytes.Contains(w.Body.Bytes(), []byte("nested more than")) {
		t.Errorf("brackets inside a string counted as nesting: %s", w.Body)
	}
	if len(e.acc.calls()) != 0 {
		t.Error("a refused body reached the acceptor")
	}
}
