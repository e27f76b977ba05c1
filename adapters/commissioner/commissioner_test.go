package commissioner_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/iceshub/iceshub/adapters/commissioner"
	"github.com/iceshub/iceshub/adapters/internal/openapitest"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
)

const table = "# counts from 1 to 7 are shown as *\n" +
	"council,month,referrals,orders_placed\n" +
	"council-a,2026-11,*,10\n" +
	"Total,2026-11,15,10\n"

func statsDelivery() model.Delivery {
	return model.Delivery{Kind: model.KindStatistics, Recipient: "commissioner-icb", IdempotencyKey: "6f1d7a52-0000-4000-8000-000000000001",
		Fields: []string{model.StatisticsLabel}, Purpose: "Plan and pay for the service", LawfulBasis: "UK GDPR Art 6(1)(e) public task",
		Statistics: &model.Statistics{Month: "2026-11", ContentType: "text/csv; charset=utf-8", Body: table}}
}

func newClient(t *testing.T, url string) *commissioner.Client {
	t.Helper()
	c, err := commissioner.New(commissioner.Config{ID: "commissioner-icb", Delivery: delivery.Config{
		BaseURL: url, Token: "t0ken", Timeout: 2 * time.Second, RetryMax: 1}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientPostsTheTableToTheSimulator: the body is the table as
// published, with the month, the Idempotency-Key and the token; a resend
// records nothing new; the receipt lists only the statistics label.
func TestClientPostsTheTableToTheSimulator(t *testing.T) {
	sim := commissioner.NewSimulator()
	sim.RequireToken("t0ken")
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c := newClient(t, srv.URL)
	d := statsDelivery()
	for i, want := range []int{http.StatusCreated, http.StatusOK} {
		r, err := c.Send(context.Background(), d)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if r.StatusCode != want || r.PartnerReference != "STAT-000001" || len(r.Fields) != 1 || r.Fields[0] != model.StatisticsLabel {
			t.Errorf("send %d: receipt %+v", i, r)
		}
	}
	got := sim.Tables()
	if len(got) != 1 || got[0].Body != table || got[0].Month != "2026-11" || got[0].IdempotencyKey != d.IdempotencyKey ||
		!strings.HasPrefix(got[0].ContentType, "text/csv") {
		t.Fatalf("tables = %+v", got)
	}
}

// TestClientRefusesWhatIsNotStatistics: a referral's copy, or another
// partner's, never goes to a commissioner; permanent without a request.
func TestClientRefusesWhatIsNotStatistics(t *testing.T) {
	sim := commissioner.NewSimulator()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c := newClient(t, srv.URL)
	other := statsDelivery()
	other.Recipient = "provider"
	ref := statsDelivery()
	ref.Kind, ref.Statistics = model.KindReferral, nil
	ref.Referral = model.Referral{ID: "ref-1", Person: model.Person{NHSNumber: "9990000018"}}
	for _, d := range []model.Delivery{other, ref} {
		if _, err := c.Send(context.Background(), d); !delivery.IsPermanent(err) {
			t.Errorf("%s to %s: err = %v, want permanent", d.Kind, d.Recipient, err)
		}
	}
	if n := len(sim.Received()); n != 0 {
		t.Errorf("%d requests made", n)
	}
}

// TestClientDownIsTransient: a commissioner answering 503 is a transient
// failure (parked by the routes), a 400 a permanent one.
func TestClientDownIsTransient(t *testing.T) {
	sim := commissioner.NewSimulator()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c := newClient(t, srv.URL)
	sim.SetFailure(http.StatusServiceUnavailable)
	if _, err := c.Send(context.Background(), statsDelivery()); err == nil || delivery.IsPermanent(err) {
		t.Fatalf("down: err = %v, want transient", err)
	}
	sim.ClearFailure()
	bad := statsDelivery()
	bad.Statistics.Body = "\"unterminated\n"
	if _, err := c.Send(context.Background(), bad); !delivery.IsPermanent(err) {
		t.Fatalf("bad CSV: err = %v, want permanent", err)
	}
}

// TestOpenAPIDescribesWhatTheCommissionerReceives checks the request the
// Client sends, and the simulator's answers, against openapi.yaml.
func TestOpenAPIDescribesWhatTheCommissionerReceives(t *testing.T) {
	doc := openapitest.Load(t, "openapi.yaml")
	if doc.Paths.Len() != 1 || doc.Paths.Find(commissioner.StatisticsPath).GetOperation(http.MethodPost) == nil {
		t.Fatalf("paths = %v, want POST %s only", doc.Paths.InMatchingOrder(), commissioner.StatisticsPath)
	}
	sim := commissioner.NewSimulator()
	var mu sync.Mutex
	var sent []*http.Request
	var bodies [][]byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		sent, bodies = append(sent, r.Clone(context.Background())), append(bodies, body)
		mu.Unlock()
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, r)
		doc.Answer(t, r.Method, r.URL.Path, rec.Code, rec.Header(), rec.Body.Bytes())
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	c := newClient(t, srv.URL)
	if _, err := c.Send(context.Background(), statsDelivery()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(context.Background(), statsDelivery()); err != nil { // 200, the repeat
		t.Fatal(err)
	}
	sim.SetFailure(http.StatusServiceUnavailable)
	_, _ = c.Send(context.Background(), statsDelivery()) // 503
	sim.ClearFailure()
	mu.Lock()
	defer mu.Unlock()
	if len(sent) < 3 {
		t.Fatalf("%d requests", len(sent))
	}
	// kin-openapi reads text/csv with encoding/csv, which refuses the
	// table's rule lines ("# ...", one cell each): the body is checked
	// as the string the document says it is, and as a table by the
	// simulator (which answered 201 above).
	openapi3filter.RegisterBodyDecoder("text/csv", func(r io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(r)
		return string(b), err
	})
	defer openapi3filter.UnregisterBodyDecoder("text/csv")
	doc.Request(t, sent[0].Method, sent[0].URL.Path, sent[0].Header, bodies[0])
	doc.ConformAll(t, "StatisticsAccepted", commissioner.Accepted{Reference: "STAT-1", Month: "2026-11"}, "StatisticsAccepted")
}
