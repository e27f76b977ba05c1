package fhir_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
	"github.com/iceshub/iceshub/internal/model"
)

var update = flag.Bool("update", false, "rewrite testdata/fhir/emitted")

// TestEmittedResourcesGolden writes one example of every kind of FHIR resource
// the hub answers with to testdata/fhir/emitted and fails when the code
// emits something else. .ci/run validates those files with an independent
// R4 validator (the npm package fhir), so a change that makes the hub emit
// invalid FHIR fails CI twice: here, until the goldens are updated, and
// there, once they are.
func TestEmittedResourcesGolden(t *testing.T) {
	var mu sync.Mutex
	n := 0
	cfg := fhiradapter.Config{
		BaseURL: "https://iceshub.example.org/fhir",
		NewID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("00000000-0000-4000-8000-%012d", n)
		},
	}
	// stored returns a store holding referral-1-line.json at status st,
	// for the answers to events about it.
	stored := func(st model.OrderStatus) *memStore {
		m := newMemStore()
		m.put(t, "referral-1-line.json", referralID, st)
		return m
	}
	anotherPerson := bytes.Replace(read(t, "amendment-1-line.json"), []byte(`"value": "9990000018"`), []byte(`"value": "9990000026"`), 1)
	cases := []struct {
		name, method, path string
		body               []byte
		headers            []string
		status             int
		// events, when set, is the store the event answers come from;
		// without it the hub takes referrals only.
		events *memStore
	}{
		{"capability-statement", http.MethodGet, "/fhir/metadata", nil, nil, http.StatusOK, nil},
		{"process-message-response", http.MethodPost, "/fhir/$process-message", read(t, "referral-1-line.json"), nil, http.StatusOK, nil},
		{"transaction-response", http.MethodPost, "/fhir", read(t, "referral-transaction.json"), nil, http.StatusOK, nil},
		{"outcome-422-nhs-number", http.MethodPost, "/fhir/$process-message", read(t, "invalid/nhs-number-check-digit.json"), nil, http.StatusUnprocessableEntity, nil},
		{"outcome-400-not-json", http.MethodPost, "/fhir/$process-message", []byte("{not json"), nil, http.StatusBadRequest, nil},
		{"outcome-415-content-type", http.MethodPost, "/fhir/$process-message", read(t, "referral-1-line.json"), []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType, nil},
		{"outcome-413-too-large", http.MethodPost, "/fhir/$process-message", bytes.Repeat([]byte(" "), 2<<20), nil, http.StatusRequestEntityTooLarge, nil},
		{"process-message-response-cancellation", http.MethodPost, "/fhir/$process-message", read(t, "cancellation-revoked.json"), nil, http.StatusOK, stored(model.StatusScheduled)},
		{"transaction-response-cancellation", http.MethodPost, "/fhir", read(t, "cancellation-entered-in-error.json"), nil, http.StatusOK, stored(model.StatusOrdered)},
		{"process-message-response-collection", http.MethodPost, "/fhir/$process-message", read(t, "collection-1-line.json"), nil, http.StatusOK, stored(model.StatusDelivered)},
		{"transaction-response-collection", http.MethodPost, "/fhir", read(t, "collection-by-referral-id.json"), nil, http.StatusOK, stored(model.StatusInstalled)},
		{"process-message-response-amendment", http.MethodPost, "/fhir/$process-message", read(t, "amendment-1-line.json"), nil, http.StatusOK, stored(model.StatusAccepted)},
		{"outcome-403-unknown-service-request", http.MethodPost, "/fhir/$process-message", read(t, "cancellation-revoked.json"), nil, http.StatusForbidden, newMemStore()},
		{"outcome-409-transition", http.MethodPost, "/fhir/$process-message", read(t, "cancellation-revoked.json"), nil, http.StatusConflict, stored(model.StatusDelivered)},
		{"outcome-422-another-person", http.MethodPost, "/fhir/$process-message", anotherPerson, nil, http.StatusUnprocessableEntity, stored(model.StatusAccepted)},
		{"outcome-422-not-supported", http.MethodPost, "/fhir/$process-message", read(t, "collection-1-line.json"), nil, http.StatusUnprocessableEntity, nil},
	}
	dir := filepath.Join(testdata, "emitted")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, cfg)
			if c.events != nil {
				e = newEventEnv(t, cfg, c.events)
			}
			w := e.do(c.method, c.path, c.body, c.headers...)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, w.Body.Bytes(), "", "  "); err != nil {
				t.Fatalf("answer is not JSON: %v", err)
			}
			pretty.WriteByte('\n')
			path := filepath.Join(dir, c.name+".json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./adapters/fhir -run Emitted -update)", err)
			}
			if !bytes.Equal(want, pretty.Bytes()) {
				t.Errorf("%s differs from what the hub emits; review and run with -update:\n%s", path, pretty.String())
			}
		})
	}
}
