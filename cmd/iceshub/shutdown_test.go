package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
	"github.com/iceshub/iceshub/routes"
)

// TestShutdownDrains stops the hub (as SIGTERM does) while a delivery to
// the provider is in flight, held by the provider: intake answers 503 with
// Retry-After and an OperationOutcome from the moment the stop begins, the
// partners' listener closes without waiting for that delivery (a hung
// partner kept it answering 503 for as long as its request stayed open),
// the operator's listener stays up with readiness failing and health
// holding, and the in-flight delivery finishes, receipt and disclosure
// recorded, before the hub exits.
//
// Longer than 100 lines: a shutdown under load and what every partner and sender saw of it, in
// order.
func TestShutdownDrains(t *testing.T) {
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	hold := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			entered <- struct{}{}
			<-release
			next.ServeHTTP(w, r)
		})
	}
	o := startOpsHub(t, opsHubConfig{wrap: map[string]func(http.Handler) http.Handler{"provider": hold}, opsAddr: true})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	template := referralTemplate(t)
	id := o.send(t, template)
	<-entered // the provider has the request; the hub waits for its answer

	stopped := make(chan error, 1)
	go func() { stopped <- o.stop() }()

	// The partners' listener closes while the delivery is still held.
	eventually(t, "the partners' listener to close", func() bool {
		resp, err := http.Post(o.base+"/fhir/$process-message", "application/fhir+json", strings.NewReader(string(template)))
		if err != nil {
			return true
		}
		defer resp.Body.Close()
		// Before the drain begins an unsigned request is 401; once it
		// has, 503; never accepted.
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("intake answered %d after the stop began, want 503 (or 401 just before) or no connection", resp.StatusCode)
		}
		return false
	})
	// A request that still reached the hub's handler gets a 503 it can act on.
	w := httptest.NewRecorder()
	o.hub.PartnerHandler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/fhir/$process-message", strings.NewReader(string(template))))
	refusal, body := w.Result(), w.Body.Bytes()
	if refusal.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("intake while draining answered %d, want 503", refusal.StatusCode)
	}
	if ra := refusal.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("503 while draining has Retry-After %q", ra)
	}
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct{ Severity, Code string }
	}
	if err := json.Unmarshal(body, &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) != 1 || oo.Issue[0].Code != "transient" {
		t.Errorf("503 body = %s (%v), want an OperationOutcome with a transient issue", body, err)
	}
	if got := refusal.Header.Get("Content-Type"); got != "application/fhir+json" {
		t.Errorf("503 Content-Type = %q", got)
	}
	for path, want := range map[string]int{"/readyz": http.StatusServiceUnavailable, "/healthz": http.StatusOK} {
		resp, err := http.Get(o.opsBase + path)
		if err != nil {
			t.Fatalf("%s on the operator's listener while draining: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s while draining = %d, want %d", path, resp.StatusCode, want)
		}
	}
	select {
	case err := <-stopped:
		t.Fatalf("the hub stopped (%v) with a delivery in flight", err)
	default:
	}

	close(release) // the provider answers
	if err := <-stopped; err != nil {
		t.Fatalf("hub stopped with error: %v", err)
	}
	if got := o.sims.Provider.Stats().Created; got != 1 {
		t.Fatalf("provider created %d orders, want the in-flight one", got)
	}
	st, err := sqlite.Open(sqlite.Options{DataDir: o.dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := routes.IdempotencyKey(id, "provider", model.KindReferral)
	if ok, err := st.WasDelivered(context.Background(), id, key); err != nil || !ok {
		t.Errorf("the in-flight delivery's receipt was not recorded before exit (%v, %v)", ok, err)
	}
	ds, err := st.Disclosures(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, d := range ds {
		if d.Recipient == "provider" && d.Outcome == store.OutcomeSent {
			sent++
		}
	}
	if sent != 1 {
		t.Errorf("provider disclosures recorded sent: %d, want 1: %+v", sent, ds)
	}
}

// TestReadinessNeedsAWritableStore: /readyz names its checks when ready, and
// fails, while /healthz holds, once the store cannot take a write (seen at
// the next probe, a second after the last).
func TestReadinessNeedsAWritableStore(t *testing.T) {
	clock := newTestClock()
	o := startOpsHub(t, opsHubConfig{now: clock.now})
	get := func(path string) (int, string) {
		resp, err := http.Get(o.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != http.StatusOK || !strings.Contains(body, "store writable") {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	if err := o.hub.Store().Close(); err != nil { // the store fails under the running hub
		t.Fatal(err)
	}
	clock.advance(hub.ReadyProbeEvery)
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store not writable") {
		t.Errorf("/readyz with the store gone = %d %q, want 503 naming the store", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d, want 200: the process is up", code)
	}
}
