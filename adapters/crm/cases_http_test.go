package crm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sony/gobreaker"

	"github.com/iceshub/iceshub/adapters/crm"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/model"
	mapping "github.com/iceshub/iceshub/mappings/crm"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// personalData are values from the fixtures that must never reach a log.
var personalData = []string{"9990000018", "9990000026", "9990000034", "Testperson", "Examplename", "Robin", "CH2 1ZZ", "CW1 9ZZ",
	"CH64 9ZZ", "1948-07-21", "01632 960777", "Fictional Way", "Imaginary Lane", "Sam Sampleton", "@example.org", "Riser recliner"}

type council struct {
	sim    *crm.Simulator
	srv    *httptest.Server
	client *crm.Client
}

func newCouncil(t *testing.T, id string, logs *syncBuffer, tune func(*delivery.Config)) *council {
	t.Helper()
	sim := crm.NewSimulator()
	sim.RequireToken(id + "-token")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := delivery.Config{
		BaseURL: srv.URL, Token: id + "-token",
		RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, OpenTimeout: time.Hour,
	}
	if tune != nil {
		tune(&cfg)
	}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := crm.New(crm.Config{ID: id, Delivery: cfg}, logger)
	if err != nil {
		t.Fatal(err)
	}
	return &council{sim: sim, srv: srv, client: c}
}

func checkLogs(t *testing.T, logs *syncBuffer) {
	t.Helper()
	out := logs.String()
	for _, v := range personalData {
		if strings.Contains(out, v) {
			t.Errorf("logs hold personal data %q:\n%s", v, out)
		}
	}
}

func fixture(t *testing.T, name string) model.Delivery {
	t.Helper()
	b, err := os.ReadFile("../../testdata/crm/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var d model.Delivery
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSendCreatesTheCase(t *testing.T) {
	logs := &syncBuffer{}
	defer checkLogs(t, logs)
	cw := newCouncil(t, "council-cwac", logs, nil)
	d := fixture(t, "case-default-route.json")

	receipt, err := cw.client.Send(context.Background(), d)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	// The fixture holds every field its route names: all are recorded.
	if receipt.PartnerReference != "CASE-000001" || receipt.StatusCode != 201 || !slices.Equal(receipt.Fields, d.Fields) {
		t.Errorf("receipt = %+v", receipt)
	}
	got := cw.sim.Received()
	if len(got) != 1 {
		t.Fatalf("received %d requests", len(got))
	}
	h := got[0].Header
	if h.IdempotencyKey != d.IdempotencyKey || h.CorrelationID != d.Referral.Source.CorrelationID ||
		h.Authorization != "Bearer council-cwac-token" || h.ContentType != "application/json" || got[0].Path != "/cases" {
		t.Errorf("request = %+v", got[0])
	}
	want, err := mapping.CaseUpdate(d)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0].Body, want) {
		t.Errorf("case received =\n%+v\nwant\n%+v", got[0].Body, want)
	}
}

func TestSend503ThenSuccessCreatesExactlyOneCase(t *testing.T) {
	logs := &syncBuffer{}
	defer checkLogs(t, logs)
	ce := newCouncil(t, "council-ceast", logs, nil)
	ce.sim.FailNext(2, http.StatusServiceUnavailable, "2")
	d := fixture(t, "case-with-equipment-and-contacts.json")

	receipt, err := ce.client.Send(context.Background(), d)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if receipt.PartnerReference != "CASE-000001" {
		t.Errorf("receipt = %+v", receipt)
	}
	if s := ce.sim.Stats(); s != (partnersim.Stats{Requests: 3, Created: 1, Failed: 2}) {
		t.Errorf("stats = %+v", s)
	}
	if n := len(ce.sim.Cases()); n != 1 {
		t.Errorf("cases = %d", n)
	}
	// Resending (a redelivery after a crash) creates nothing new.
	again, err := ce.client.Send(context.Background(), d)
	if err != nil || again.PartnerReference != receipt.PartnerReference || again.StatusCode != 200 {
		t.Errorf("resend = %+v, %v", again, err)
	}
	if s := ce.sim.Stats(); s.Created != 1 || s.Repeats != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestCouncilsAreIndependent(t *testing.T) {
	logs := &syncBuffer{}
	defer checkLogs(t, logs)
	tune := func(c *delivery.Config) { c.RetryMax = -1; c.ConsecutiveFailures = 1 }
	cw := newCouncil(t, "council-cwac", logs, tune)
	ce := newCouncil(t, "council-ceast", logs, tune)
	cw.sim.SetFailure(http.StatusInternalServerError)

	d := fixture(t, "case-default-route.json") // addressed to council-cwac
	if _, err := cw.client.Send(context.Background(), d); err == nil || delivery.IsPermanent(err) {
		t.Fatalf("err = %v, want transient", err)
	}
	if _, err := cw.client.Send(context.Background(), d); !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("err = %v, want the breaker open", err)
	}
	e := fixture(t, "case-with-equipment-and-contacts.json") // addressed to council-ceast
	if _, err := ce.client.Send(context.Background(), e); err != nil {
		t.Fatalf("the other council: %v", err)
	}
	// A copy for one council is never sent to another.
	if _, err := ce.client.Send(context.Background(), d); !delivery.IsPermanent(err) {
		t.Errorf("sending council-cwac's copy to council-ceast: err = %v, want permanent", err)
	}
	if s := ce.sim.Stats(); s.Requests != 1 {
		t.Errorf("council-ceast stats = %+v", s)
	}
}

func TestRefusedCaseIsPermanentAndDoesNotOpenTheBreaker(t *testing.T) {
	logs := &syncBuffer{}
	defer checkLogs(t, logs)
	cw := newCouncil(t, "council-cwac", logs, func(c *delivery.Config) { c.ConsecutiveFailures = 1 })
	cw.sim.FailNext(3, http.StatusUnprocessableEntity, "")
	d := fixture(t, "case-default-route.json")
	for range 3 {
		_, err := cw.client.Send(context.Background(), d)
		var de *delivery.Error
		if !errors.As(err, &de) || !de.Permanent || de.StatusCode != 422 || de.Attempts != 1 {
			t.Fatalf("err = %v, want a permanent 422 after one attempt", err)
		}
	}
	if got := cw.client.BreakerState(); got != "closed" {
		t.Errorf("breaker = %s", got)
	}
	if _, err := cw.client.Send(context.Background(), d); err != nil {
		t.Errorf("after the refusals: %v", err)
	}
}

func TestCopiesThatCannotBeSentAreRefusedLocally(t *testing.T) {
	logs := &syncBuffer{}
	defer checkLogs(t, logs)
	cw := newCouncil(t, "council-cwac", logs, nil)
	for name, mutate := range map[string]func(*model.Delivery){
		"another recipient": func(d *model.Delivery) { d.Recipient = "provider" },
		"unknown kind":      func(d *model.Delivery) { d.Kind = "complaint" },
		"clinical field":    func(d *model.Delivery) { d.Fields = append(d.Fields, "clinical.conditions") },
		"clinical content":  func(d *model.Delivery) { d.Referral.Clinical.Notes = []string{"n"} },
		"no idempotency":    func(d *model.Delivery) { d.IdempotencyKey = "" },
	} {
		d := fixture(t, "case-default-route.json")
		mutate(&d)
		if _, err := cw.client.Send(context.Background(), d); !delivery.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
	if n := cw.sim.Stats().Requests; n != 0 {
		t.Errorf("%d requests reached the council", n)
	}
}

func TestUnreadableAnswerAfter2xxIsTransient(t *testing.T) {
	for _, answer := range []string{``, `{"caseRef":"CASE-1"}`, `{"caseReference":"case for Alex Testperson"}`} {
		t.Run(answer, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				fmt.Fprint(w, answer)
			}))
			defer srv.Close()
			c, err := crm.New(crm.Config{ID: "council-cwac", Delivery: delivery.Config{BaseURL: srv.URL}}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Send(context.Background(), fixture(t, "case-default-route.json"))
			if delivery.IsPermanent(err) || !errors.Is(err, delivery.ErrUnreadableAnswer) || !errors.Is(err, mapping.ErrBadAnswer) {
				t.Fatalf("err = %v, want transient ErrUnreadableAnswer", err)
			}
			if strings.Contains(err.Error(), "Testperson") {
				t.Errorf("Error() quotes the answer: %v", err)
			}
		})
	}
}

func TestNewChecksItsConfig(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	ok := crm.Config{ID: "council-cwac", Delivery: delivery.Config{BaseURL: "http://127.0.0.1:9102"}}
	if c, err := crm.New(ok, logger); err != nil || c.ID() != "council-cwac" {
		t.Fatalf("New = %v, %v", c, err)
	}
	for name, cfg := range map[string]crm.Config{
		"empty id":         {Delivery: ok.Delivery},
		"partner mismatch": {ID: "council-cwac", Delivery: delivery.Config{Partner: "council-ceast", BaseURL: ok.Delivery.BaseURL}},
		"no base URL":      {ID: "council-cwac"},
	} {
		if _, err := crm.New(cfg, logger); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := crm.New(ok, nil); err == nil {
		t.Error("New accepted a nil logger")
	}
}
