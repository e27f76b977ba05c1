package provider_test

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

	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/model"
	mapping "github.com/iceshub/iceshub/mappings/provider"
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
var personalData = []string{"9990000018", "9990000026", "9990000034", "Testperson", "Examplename", "CH2 1ZZ", "CW1 9ZZ", "CH64 9ZZ",
	"07700 900123", "01632 960001", "Fictional Way", "Key safe", "112.5", "Profiling bed", "Jamie Placeholder", "@example.org"}

type env struct {
	sim    *provider.Simulator
	srv    *httptest.Server
	client *provider.Client
	logs   *syncBuffer
}

func newEnv(t *testing.T, tune func(*delivery.Config)) *env {
	t.Helper()
	sim := provider.NewSimulator()
	sim.RequireToken("provider-token")
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := delivery.Config{
		BaseURL: srv.URL, Token: "provider-token",
		RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, OpenTimeout: time.Hour,
	}
	if tune != nil {
		tune(&cfg)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c, err := provider.New(provider.Config{ID: "provider", Delivery: cfg}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		out := logs.String()
		for _, v := range personalData {
			if strings.Contains(out, v) {
				t.Errorf("logs hold personal data %q:\n%s", v, out)
			}
		}
	})
	return &env{sim: sim, srv: srv, client: c, logs: logs}
}

func fixture(t *testing.T, name string) model.Delivery {
	t.Helper()
	b, err := os.ReadFile("../../testdata/provider/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var d model.Delivery
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSendPlacesTheOrder(t *testing.T) {
	e := newEnv(t, nil)
	d := fixture(t, "order-home-urgent.json")

	receipt, err := e.client.Send(context.Background(), d)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	// The fixture holds every field its route names: all are recorded.
	if receipt.PartnerReference != "ORD-000001" || receipt.StatusCode != 201 || !slices.Equal(receipt.Fields, d.Fields) {
		t.Errorf("receipt = %+v", receipt)
	}
	got := e.sim.Received()
	if len(got) != 1 {
		t.Fatalf("received %d requests, want 1", len(got))
	}
	h := got[0].Header
	if h.IdempotencyKey != d.IdempotencyKey || h.CorrelationID != d.Referral.Source.CorrelationID ||
		h.Authorization != "Bearer provider-token" || h.ContentType != "application/json" || got[0].Path != "/orders" || got[0].Method != "POST" {
		t.Errorf("request = %+v", got[0])
	}
	want, err := mapping.Order(d)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[0].Body, want) {
		t.Errorf("order received =\n%+v\nwant\n%+v", got[0].Body, want)
	}
}

func TestSend503ThenSuccessPlacesExactlyOneOrder(t *testing.T) {
	e := newEnv(t, nil)
	e.sim.FailNext(1, http.StatusServiceUnavailable, "1")
	d := fixture(t, "order-care-home-asap.json")

	receipt, err := e.client.Send(context.Background(), d)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if receipt.PartnerReference != "ORD-000001" || receipt.StatusCode != 201 {
		t.Errorf("receipt = %+v", receipt)
	}
	stats := e.sim.Stats()
	if stats != (partnersim.Stats{Requests: 2, Created: 1, Failed: 1}) {
		t.Errorf("stats = %+v, want 2 requests, 1 order, 1 failure", stats)
	}
	if n := len(e.sim.Orders()); n != 1 {
		t.Errorf("orders = %d, want 1", n)
	}
	for _, r := range e.sim.Received() {
		if r.Header.IdempotencyKey != d.IdempotencyKey {
			t.Errorf("attempt sent key %q, want %q", r.Header.IdempotencyKey, d.IdempotencyKey)
		}
	}
}

func TestResendingTheSameCopyCreatesNoSecondOrder(t *testing.T) {
	e := newEnv(t, nil)
	d := fixture(t, "order-home-urgent.json")
	first, err := e.client.Send(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.client.Send(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if again.PartnerReference != first.PartnerReference || again.StatusCode != http.StatusOK {
		t.Errorf("resend receipt = %+v, want %s with 200", again, first.PartnerReference)
	}
	if s := e.sim.Stats(); s.Created != 1 || s.Repeats != 1 || s.Requests != 2 {
		t.Errorf("stats = %+v", s)
	}
	if r := e.sim.Received(); len(r) != 2 || !r[1].Repeat || r[0].Repeat {
		t.Errorf("received = %+v", r)
	}
}

func TestConcurrentSendsOfOneCopyCreateOneOrder(t *testing.T) {
	e := newEnv(t, nil)
	d := fixture(t, "order-home-urgent.json")
	other := fixture(t, "order-care-home-asap.json")
	var wg sync.WaitGroup
	refs := make([]string, 20)
	for i := range refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cp := d
			if i%2 == 1 {
				cp = other
			}
			r, err := e.client.Send(context.Background(), cp)
			if err != nil {
				t.Errorf("Send: %v", err)
			}
			refs[i] = r.PartnerReference
		}()
	}
	wg.Wait()
	if s := e.sim.Stats(); s.Created != 2 || s.Repeats != 18 {
		t.Errorf("stats = %+v, want 2 orders and 18 repeats", s)
	}
	for i := 2; i < len(refs); i++ {
		if refs[i] != refs[i%2] {
			t.Errorf("send %d got %s, send %d got %s", i, refs[i], i%2, refs[i%2])
		}
	}
}

func TestInvalidOrderIsPermanentAndNotRetried(t *testing.T) {
	e := newEnv(t, nil)
	// A copy with no equipment breaks the contract: 422.
	d := fixture(t, "order-nhs-number-and-postcode-only.json")
	_, err := e.client.Send(context.Background(), d)
	if !delivery.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent", err)
	}
	var de *delivery.Error
	if !errors.As(err, &de) || de.StatusCode != 422 || !strings.Contains(de.Body, "invalid-order") || !strings.Contains(de.Body, "items") {
		t.Errorf("error = %+v", de)
	}
	if strings.Contains(de.Body, "9990000034") || strings.Contains(de.Body, "CH64") {
		t.Errorf("the simulator echoed personal data: %s", de.Body)
	}
	if s := e.sim.Stats(); s.Requests != 1 || s.Refused != 1 || s.Created != 0 {
		t.Errorf("stats = %+v", s)
	}
	if got := e.client.BreakerState(); got != "closed" {
		t.Errorf("breaker = %s after a refusal", got)
	}
}

func TestWrongTokenIsPermanent(t *testing.T) {
	e := newEnv(t, func(c *delivery.Config) { c.Token = "wrong" })
	_, err := e.client.Send(context.Background(), fixture(t, "order-home-urgent.json"))
	var de *delivery.Error
	if !errors.As(err, &de) || !de.Permanent || de.StatusCode != 401 {
		t.Fatalf("err = %v, want a permanent 401", err)
	}
}

func TestCopiesThatCannotBeSentAreRefusedLocally(t *testing.T) {
	e := newEnv(t, nil)
	for name, mutate := range map[string]func(*model.Delivery){
		"another recipient": func(d *model.Delivery) { d.Recipient = "council-cwac" },
		"unknown kind":      func(d *model.Delivery) { d.Kind = model.KindSafeguarding },
		"unknown field":     func(d *model.Delivery) { d.Fields = append(d.Fields, "person.religion") },
		"no idempotency":    func(d *model.Delivery) { d.IdempotencyKey = "" },
	} {
		d := fixture(t, "order-home-urgent.json")
		mutate(&d)
		if _, err := e.client.Send(context.Background(), d); !delivery.IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", name, err)
		}
	}
	if n := e.sim.Stats().Requests; n != 0 {
		t.Errorf("%d requests reached the provider", n)
	}
	_, err := e.client.Send(context.Background(), model.Delivery{Kind: model.KindOrderStatus, Recipient: "provider"})
	if !errors.Is(err, mapping.ErrUnsupportedKind) {
		t.Errorf("err = %v, want ErrUnsupportedKind", err)
	}
}

func TestUnreadableAnswerAfter2xxIsTransient(t *testing.T) {
	for _, answer := range []string{``, `{"ok":true}`, `<html>thanks</html>`, `{"orderReference":"Alex Testperson"}`} {
		t.Run(answer, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				fmt.Fprint(w, answer)
			}))
			defer srv.Close()
			c, err := provider.New(provider.Config{ID: "provider", Delivery: delivery.Config{BaseURL: srv.URL}}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			receipt, err := c.Send(context.Background(), fixture(t, "order-home-urgent.json"))
			if err == nil || delivery.IsPermanent(err) || !errors.Is(err, delivery.ErrUnreadableAnswer) || !errors.Is(err, mapping.ErrBadAnswer) {
				t.Fatalf("err = %v, want transient ErrUnreadableAnswer", err)
			}
			if receipt.StatusCode != 201 {
				t.Errorf("receipt = %+v", receipt)
			}
			if strings.Contains(err.Error(), "Testperson") {
				t.Errorf("Error() quotes the answer: %v", err)
			}
		})
	}
}

func TestOutageOpensTheBreakerThenRecovers(t *testing.T) {
	e := newEnv(t, func(c *delivery.Config) { c.RetryMax = 1; c.ConsecutiveFailures = 2 })
	d := fixture(t, "order-home-urgent.json")
	e.sim.SetFailure(http.StatusBadGateway)
	for i := range 2 {
		if _, err := e.client.Send(context.Background(), d); err == nil || delivery.IsPermanent(err) {
			t.Fatalf("send %d: err = %v, want transient", i+1, err)
		}
	}
	before := e.sim.Stats().Requests
	_, err := e.client.Send(context.Background(), d)
	if !errors.Is(err, gobreaker.ErrOpenState) || delivery.IsPermanent(err) {
		t.Fatalf("err = %v, want transient ErrOpenState", err)
	}
	if after := e.sim.Stats().Requests; after != before {
		t.Errorf("the open breaker let %d requests through", after-before)
	}
	// The breaker counts HTTP attempts: the first send's two open it.
	if s := e.sim.Stats(); s.Failed != 2 || s.Created != 0 {
		t.Errorf("stats = %+v", s)
	}
	e.sim.ClearFailure()
	if _, err := fresh(t, e).Send(context.Background(), d); err != nil {
		t.Fatalf("after ClearFailure: %v", err)
	}
}

// fresh is a client with a closed breaker on e's simulator.
func fresh(t *testing.T, e *env) *provider.Client {
	c, err := provider.New(provider.Config{ID: "provider", Delivery: delivery.Config{BaseURL: e.srv.URL, Token: "provider-token"}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewChecksItsConfig(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	ok := provider.Config{ID: "provider", Delivery: delivery.Config{BaseURL: "http://127.0.0.1:9101"}}
	if c, err := provider.New(ok, logger); err != nil || c.ID() != "provider" {
		t.Fatalf("New = %v, %v", c, err)
	}
	for name, cfg := range map[string]provider.Config{
		"empty id":         {Delivery: ok.Delivery},
		"partner mismatch": {ID: "provider", Delivery: delivery.Config{Partner: "other", BaseURL: ok.Delivery.BaseURL}},
		"bad base URL":     {ID: "provider", Delivery: delivery.Config{BaseURL: "not a url"}},
	} {
		if _, err := provider.New(cfg, logger); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	if _, err := provider.New(ok, nil); err == nil {
		t.Error("New accepted a nil logger")
	}
}
