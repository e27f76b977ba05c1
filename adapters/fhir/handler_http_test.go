package fhir_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/intake"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

const testdata = "../../testdata/fhir"

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeAcceptor emulates intake: the first submission for a set of keys is
// stored; a later one sharing any key gets the stored answer back.
type fakeAcceptor struct {
	mu     sync.Mutex
	stored map[string]intake.Response
	subs   []intake.Submission
	err    error
	panic  bool
}

func (f *fakeAcceptor) AcceptReferral(_ context.Context, sub intake.Submission) (intake.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, sub)
	if f.panic {
		var m map[string]int
		//lint:ignore SA5000 the nil map write is the point: a runtime error, as a real bug would be
		m["boom"]++
	}
	if f.err != nil {
		return intake.Outcome{}, f.err
	}
	if f.stored == nil {
		f.stored = map[string]intake.Response{}
	}
	for _, k := range sub.Keys {
		if r, ok := f.stored[k]; ok {
			return intake.Outcome{Response: r, Duplicate: true}, nil
		}
	}
	for _, k := range sub.Keys {
		f.stored[k] = sub.Response
	}
	return intake.Outcome{Response: sub.Response}, nil
}

func (f *fakeAcceptor) calls() []intake.Submission {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]intake.Submission(nil), f.subs...)
}

var received = time.Date(2025, 6, 2, 9, 30, 0, 123e6, time.UTC)

type env struct {
	h    *fhiradapter.Handler
	acc  *fakeAcceptor
	logs *bytes.Buffer
	// partner is who the requests come from; trustA when unset.
	partner auth.Partner
}

func newEnv(t *testing.T, cfg fhiradapter.Config) *env {
	t.Helper()
	e := &env{acc: &fakeAcceptor{}, logs: &bytes.Buffer{}}
	if cfg.Clock == nil {
		cfg.Clock = func() time.Time { return received }
	}
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := fhiradapter.New(cfg, e.acc, logger)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	return e
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// do sends one request straight to the handler.
func (e *env) do(method, path string, body []byte, headers ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	if body != nil {
		r.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	partner := e.partner
	if partner.ID == "" {
		partner = trustA
	}
	r = r.WithContext(auth.WithPartner(r.Context(), partner))
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// trustA is the NHS partner the tests send as unless they say otherwise:
// it may send every kind and speaks for the fixtures' organisations.
var trustA = auth.NewPartner(auth.PartnerConfig{
	ID: "nhs-trust-a", Kind: "nhs", Mode: auth.ModeJWT,
	Messages: []string{"referral", "cancellation", "amendment", "collection"},
	ODSCodes: []string{"Y9Z01", "Y9Z02", "Y9Z03"},
})

// outcome is the part of an OperationOutcome the tests read.
type outcome struct {
	ResourceType string `json:"resourceType"`
	Issue        []struct {
		Severity    string   `json:"severity"`
		Code        string   `json:"code"`
		Diagnostics string   `json:"diagnostics"`
		Expression  []string `json:"expression"`
		Location    []string `json:"location"`
	} `json:"issue"`
}

// wantOutcome checks an error answer: status, content type, and an
// OperationOutcome whose every issue is complete and one of which has code
// at expr.
func wantOutcome(t *testing.T, w *httptest.ResponseRecorder, status int, code, expr string) outcome {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d; body %s", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/fhir+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var oo outcome
	if err := json.Unmarshal(w.Body.Bytes(), &oo); err != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		t.Fatalf("not an OperationOutcome: %v %s", err, w.Body)
	}
	found := false
	for _, i := range oo.Issue {
		if i.Severity == "" || i.Code == "" || i.Diagnostics == "" || len(i.Expression) != 1 || i.Expression[0] == "" {
			t.Errorf("incomplete issue %+v", i)
		}
		if i.Code == code && i.Expression[0] == expr {
			found = true
		}
	}
	if !found {
		t.Errorf("want an issue %s at %s, got %s", code, expr, w.Body)
	}
	assertValidFHIR(t, w.Body.Bytes())
	return oo
}

func TestNewChecksArguments(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	cases := map[string]func() (*fhiradapter.Handler, error){
		"nil acceptor": func() (*fhiradapter.Handler, error) { return fhiradapter.New(fhiradapter.Config{}, nil, logger) },
		"nil logger": func() (*fhiradapter.Handler, error) {
			return fhiradapter.New(fhiradapter.Config{}, &fakeAcceptor{}, nil)
		},
		"negative body limit": func() (*fhiradapter.Handler, error) {
			return fhiradapter.New(fhiradapter.Config{MaxBodyBytes: -1}, &fakeAcceptor{}, logger)
		},
		"negative retry": func() (*fhiradapter.Handler, error) {
			return fhiradapter.New(fhiradapter.Config{RetryAfter: -time.Second}, &fakeAcceptor{}, logger)
		},
	}
	for name, f := range cases {
		if h, err := f(); err == nil || h != nil {
			t.Errorf("%s: want an error, got %v %v", name, h, err)
		}
	}
	if h, err := fhiradapter.New(fhiradapter.Config{}, &fakeAcceptor{}, logger); err != nil || h == nil {
		t.Errorf("zero Config: %v", err)
	}
}

func TestContentType(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	body := read(t, "referral-1-line.json")
	refused := []string{"", "text/plain", "application/fhir+xml", "application/xml", "application/fhir+json; charset=iso-8859-1", "application/fhir+json; fhirVersion=3.0", "not a media type;;"}
	for _, ct := range refused {
		t.Run("refused "+ct, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/fhir/$process-message", bytes.NewReader(body))
			if ct != "" {
				r.Header.Set("Content-Type", ct)
			}
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			wantOutcome(t, w, http.StatusUnsupportedMediaType, "not-supported", "http.Content-Type")
		})
	}
	if n := len(e.acc.calls()); n != 0 {
		t.Errorf("acceptor called %d times for refused requests", n)
	}
	accepted := []string{"application/fhir+json", "application/json", "application/fhir+json; charset=utf-8", "application/fhir+json; fhirVersion=4.0", "Application/FHIR+JSON; charset=UTF-8; fhirVersion=4.0.1"}
	for _, ct := range accepted {
		t.Run("accepted "+ct, func(t *testing.T) {
			w := e.do("POST", "/fhir/$process-message", body, "Content-Type", ct)
			if w.Code != http.StatusOK {
				t.Errorf("status %d: %s", w.Code, w.Body)
			}
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{MaxBodyBytes: 2048})
	body := read(t, "referral-1-line.json") // about 9 KiB
	t.Run("Content-Length", func(t *testing.T) {
		wantOutcome(t, e.do("POST", "/fhir/$process-message", body), http.StatusRequestEntityTooLarge, "too-long", "Bundle")
	})
	t.Run("no Content-Length", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/fhir/$process-message", io.MultiReader(bytes.NewReader(body)))
		r.ContentLength = -1
		r.Header.Set("Content-Type", "application/fhir+json")
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		wantOutcome(t, w, http.StatusRequestEntityTooLarge, "too-long", "Bundle")
	})
	if n := len(e.acc.calls()); n != 0 {
		t.Errorf("acceptor called %d times", n)
	}
	t.Run("default limit is 1 MiB", func(t *testing.T) {
		e := newEnv(t, fhiradapter.Config{})
		big := append(bytes.Repeat([]byte(" "), 1<<20), body...)
		wantOutcome(t, e.do("POST", "/fhir/$process-message", big), http.StatusRequestEntityTooLarge, "too-long", "Bundle")
		if w := e.do("POST", "/fhir/$process-message", append(bytes.Repeat([]byte(" "), 1<<19), body...)); w.Code != http.StatusOK {
			t.Errorf("a body under the limit: %d %s", w.Code, w.Body)
		}
	})
}

func TestBadRequest(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	cases := map[string]struct {
		body    []byte
		headers []string
		code    string
		expr    string
	}{
		"not JSON":            {[]byte("<Bundle/>"), nil, "structure", "Bundle"},
		"truncated":           {read(t, "referral-1-line.json")[:500], nil, "structure", "Bundle"},
		"a Patient":           {[]byte(`{"resourceType":"Patient","id":"p"}`), nil, "structure", "Bundle.resourceType"},
		"empty":               {[]byte{}, nil, "structure", "Bundle"},
		"X-Request-ID":        {read(t, "referral-1-line.json"), []string{"X-Request-ID", "request-1"}, "value", "http.X-Request-ID"},
		"X-Request-ID braces": {read(t, "referral-1-line.json"), []string{"X-Request-ID", "{" + uuid.NewString() + "}"}, "value", "http.X-Request-ID"},
		"X-Correlation-ID":    {read(t, "referral-1-line.json"), []string{"X-Correlation-ID", strings.Repeat("x", 200)}, "value", "http.X-Correlation-ID"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			w := e.do("POST", "/fhir/$process-message", c.body, c.headers...)
			oo := wantOutcome(t, w, http.StatusBadRequest, c.code, c.expr)
			if strings.HasPrefix(c.expr, "http.") && (len(oo.Issue[0].Location) != 1 || oo.Issue[0].Location[0] != c.expr) {
				t.Errorf("a header issue must carry location %s: %s", c.expr, w.Body)
			}
		})
	}
	if n := len(e.acc.calls()); n != 0 {
		t.Errorf("acceptor called %d times", n)
	}
}

func TestUnprocessable(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	cases := map[string]struct {
		path, file string
		body       []byte
		code, expr string
	}{
		"NHS number":             {"/fhir/$process-message", "invalid/nhs-number-check-digit.json", nil, "value", "Bundle.entry[2].resource.identifier[0].value"},
		"focus is the Patient":   {"/fhir/$process-message", "invalid/focus-is-patient.json", nil, "invalid", "Bundle.entry[0].resource.focus[0].reference"},
		"missing status":         {"/fhir/$process-message", "invalid/missing-status.json", nil, "required", "Bundle.entry[1].resource.status"},
		"BaRS 999":               {"/fhir/$process-message", "bars/999-to-cas-service-request.json", nil, "value", "Bundle.entry[3].resource.identifier[0].value"},
		"message to the base":    {"/fhir", "referral-1-line.json", nil, "not-supported", "Bundle.type"},
		"transaction to message": {"/fhir/$process-message", "referral-transaction.json", nil, "not-supported", "Bundle.type"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			wantOutcome(t, e.do("POST", c.path, read(t, c.file)), http.StatusUnprocessableEntity, c.code, c.expr)
		})
	}
	if n := len(e.acc.calls()); n != 0 {
		t.Errorf("acceptor called %d times for refused bundles", n)
	}
}

// requestHeader is the request's MessageHeader id and eventCoding.
func requestHeader(t *testing.T, body []byte) (string, map[string]any) {
	var b struct {
		Entry []struct {
			Resource struct {
				ID          string         `json:"id"`
				EventCoding map[string]any `json:"eventCoding"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	return b.Entry[0].Resource.ID, b.Entry[0].Resource.EventCoding
}

// responseMessage is the part of a response message the tests read.
type responseMessage struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Timestamp    string `json:"timestamp"`
	Identifier   struct {
		System, Value string
	} `json:"identifier"`
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Response *struct {
			Status   string          `json:"status"`
			Location string          `json:"location"`
			Outcome  json.RawMessage `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
}

func TestProcessMessage(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{BaseURL: "https://iceshub.example.org/fhir/"})
	body := read(t, "referral-3-lines.json")
	reqID := uuid.NewString()
	w := e.do("POST", "/fhir/$process-message", body, "X-Request-ID", strings.ToUpper(reqID), "X-Correlation-ID", "corr-123")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/fhir+json" {
		t.Fatalf("status %d %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	assertValidFHIR(t, w.Body.Bytes())
	subs := e.acc.calls()
	if len(subs) != 1 {
		t.Fatalf("acceptor calls %d", len(subs))
	}
	sub := subs[0]
	ref := sub.Referral
	if _, err := uuid.Parse(ref.ID); err != nil || !ref.ReceivedAt.Equal(received) || ref.Source.CorrelationID != "corr-123" {
		t.Errorf("referral id %q receivedAt %v correlation %q", ref.ID, ref.ReceivedAt, ref.Source.CorrelationID)
	}
	if ref.Person.NHSNumber != "9990000026" || len(ref.Equipment) != 3 {
		t.Errorf("referral not mapped: %+v", ref.Person)
	}
	if sub.Response.Status != http.StatusOK || sub.Response.ContentType != "application/fhir+json" || !bytes.Equal(sub.Response.Body, w.Body.Bytes()) {
		t.Errorf("the answer written must be the one handed to the acceptor")
	}

	msgID, event := requestHeader(t, body)
	if len(sub.Keys) != 2 || !strings.HasPrefix(sub.Keys[0], "request:"+reqID+"#") || !strings.HasPrefix(sub.Keys[1], "message:"+msgID+"#") {
		t.Errorf("keys %q", sub.Keys)
	}

	var resp responseMessage
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.ResourceType != "Bundle" || resp.Type != "message" || len(resp.Entry) != 2 || resp.Timestamp != "2025-06-02T09:30:00.123Z" {
		t.Fatalf("response bundle %s", w.Body)
	}
	if resp.Identifier.System != fhiradapter.ReferralIDSystem || resp.Identifier.Value != ref.ID {
		t.Errorf("identifier %+v, want the referral id %s", resp.Identifier, ref.ID)
	}
	var mh struct {
		ResourceType string         `json:"resourceType"`
		EventCoding  map[string]any `json:"eventCoding"`
		Source       struct{ Endpoint string }
		Response     struct{ Identifier, Code string }
		Focus        []struct{ Reference string }
	}
	if err := json.Unmarshal(resp.Entry[0].Resource, &mh); err != nil {
		t.Fatal(err)
	}
	if mh.ResourceType != "MessageHeader" || mh.Response.Identifier != msgID || mh.Response.Code != "ok" {
		t.Errorf("MessageHeader %s", resp.Entry[0].Resource)
	}
	if fmt.Sprint(mh.EventCoding) != fmt.Sprint(event) {
		t.Errorf("eventCoding %v, want the request's %v", mh.EventCoding, event)
	}
	if mh.Source.Endpoint != "https://iceshub.example.org/fhir/$process-message" {
		t.Errorf("source endpoint %q", mh.Source.Endpoint)
	}
	if len(mh.Focus) != 1 || mh.Focus[0].Reference != resp.Entry[1].FullURL {
		t.Errorf("focus %+v must point at entry 1 (%s)", mh.Focus, resp.Entry[1].FullURL)
	}
	var oo outcome
	if err := json.Unmarshal(resp.Entry[1].Resource, &oo); err != nil || oo.ResourceType != "OperationOutcome" {
		t.Fatalf("focus is not an OperationOutcome: %s", resp.Entry[1].Resource)
	}
	if oo.Issue[0].Severity != "information" || !strings.Contains(oo.Issue[0].Diagnostics, ref.ID) {
		t.Errorf("outcome %+v must name the referral id", oo.Issue)
	}
}

func TestTransaction(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	body := read(t, "referral-transaction.json")
	w := e.do("POST", "/fhir", body)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	assertValidFHIR(t, w.Body.Bytes())
	var resp responseMessage
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	var req struct {
		ID    string `json:"id"`
		Entry []struct {
			Request struct{ Method, URL string } `json:"request"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	if resp.Type != "transaction-response" || len(resp.Entry) != len(req.Entry) {
		t.Fatalf("type %q entries %d, want %d", resp.Type, len(resp.Entry), len(req.Entry))
	}
	sub := e.acc.calls()[0]
	for i, en := range resp.Entry {
		if en.Response == nil || en.Response.Status != "201 Created" || en.Response.Location == "" || en.Resource != nil {
			t.Errorf("entry %d: %+v", i, en.Response)
			continue
		}
		switch rq := req.Entry[i].Request; {
		case i == 0:
			if en.Response.Location != "ServiceRequest/"+sub.Referral.ID || len(en.Response.Outcome) == 0 {
				t.Errorf("ServiceRequest entry: %+v", en.Response)
			}
		case rq.Method == "PUT":
			if en.Response.Location != rq.URL {
				t.Errorf("PUT entry location %q, want %q", en.Response.Location, rq.URL)
			}
		default:
			if !strings.HasPrefix(en.Response.Location, rq.URL+"/") {
				t.Errorf("POST entry location %q, want %s/<id>", en.Response.Location, rq.URL)
			}
		}
	}
	if len(sub.Keys) != 1 || !strings.HasPrefix(sub.Keys[0], "bundle:"+req.ID+"#") {
		t.Errorf("keys %q", sub.Keys)
	}

	t.Run("batch", func(t *testing.T) {
		b := bytes.Replace(body, []byte(`"type": "transaction"`), []byte(`"type": "batch"`), 1)
		b = bytes.Replace(b, []byte(req.ID), []byte(uuid.NewString()), 1) // else a duplicate of the transaction
		w := e.do("POST", "/fhir", b)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"type":"batch-response"`) {
			t.Errorf("status %d: %s", w.Code, w.Body)
		}
	})
	t.Run("no ids: no duplicate detection", func(t *testing.T) {
		b := bytes.Replace(body, []byte(`"id": "`+req.ID+`",`), nil, 1)
		w1, w2 := e.do("POST", "/fhir", b), e.do("POST", "/fhir", b)
		if w1.Code != 200 || w2.Code != 200 || bytes.Equal(w1.Body.Bytes(), w2.Body.Bytes()) {
			t.Errorf("two unidentifiable requests must be two referrals: %d %d", w1.Code, w2.Code)
		}
		subs := e.acc.calls()
		if k := subs[len(subs)-1].Keys; len(k) != 1 || !strings.HasPrefix(k[0], "referral:") {
			t.Errorf("keys %q", k)
		}
		if !strings.Contains(w1.Body.String(), "X-Request-ID") {
			t.Errorf("the answer should tell the sender to send X-Request-ID: %s", w1.Body)
		}
	})
}

func TestDuplicates(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	body := read(t, "referral-1-line.json")
	reqID := uuid.NewString()

	first := e.do("POST", "/fhir/$process-message", body, "X-Request-ID", reqID)
	again := e.do("POST", "/fhir/$process-message", body, "X-Request-ID", reqID)
	if first.Code != 200 || again.Code != 200 || !bytes.Equal(first.Body.Bytes(), again.Body.Bytes()) {
		t.Fatalf("a repeated request must get the same bytes: %d %d", first.Code, again.Code)
	}
	subs := e.acc.calls()
	if len(subs) != 2 {
		t.Fatalf("the acceptor decides what is a duplicate: called %d times", len(subs))
	}
	if fmt.Sprint(subs[0].Keys) != fmt.Sprint(subs[1].Keys) || subs[0].Referral.ID == subs[1].Referral.ID {
		t.Errorf("keys %q / %q, ids %s / %s", subs[0].Keys, subs[1].Keys, subs[0].Referral.ID, subs[1].Referral.ID)
	}

	t.Run("same message, new X-Request-ID, rebuilt bundle", func(t *testing.T) {
		// A retry of the same message from a sender that rebuilt the bundle
		// (new bundle id and timestamp) and sent a new X-Request-ID.
		b := bytes.Replace(body, []byte("2025-06-02T09:15:00+01:00"), []byte("2025-06-02T09:16:00+01:00"), -1)
		b = bytes.Replace(b, []byte(`"id": "23854247-d727-5601-a30b-80bc7dafc6e9"`), []byte(`"id": "`+uuid.NewString()+`"`), 1)
		w := e.do("POST", "/fhir/$process-message", b, "X-Request-ID", uuid.NewString())
		if !bytes.Equal(w.Body.Bytes(), first.Body.Bytes()) {
			t.Errorf("want the first answer again")
		}
	})
	t.Run("same ids, different referral", func(t *testing.T) {
		// A sender reusing the X-Request-ID and MessageHeader id for a
		// different order must not have it swallowed.
		b := bytes.Replace(body, []byte("TOILET-RAISED-01"), []byte("STOOL-PERCH-01"), 1)
		w := e.do("POST", "/fhir/$process-message", b, "X-Request-ID", reqID)
		if w.Code != 200 || bytes.Equal(w.Body.Bytes(), first.Body.Bytes()) {
			t.Errorf("a different referral under reused ids was taken as a duplicate")
		}
	})
}

func TestCorrelationID(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	cases := []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/fhir/$process-message", read(t, "referral-1-line.json")},
		{"POST", "/fhir/$process-message", read(t, "invalid/nhs-number-check-digit.json")},
		{"POST", "/fhir/$process-message", []byte("nonsense")},
		{"GET", "/fhir/metadata", nil},
		{"GET", "/fhir/Patient/1", nil},
		{"DELETE", "/fhir", nil},
	}
	for _, c := range cases {
		w := e.do(c.method, c.path, c.body, "X-Correlation-ID", "trace-77")
		if got := w.Header().Get("X-Correlation-ID"); got != "trace-77" {
			t.Errorf("%s %s: X-Correlation-ID %q", c.method, c.path, got)
		}
		w = e.do(c.method, c.path, c.body)
		if _, err := uuid.Parse(w.Header().Get("X-Correlation-ID")); err != nil {
			t.Errorf("%s %s: a generated X-Correlation-ID must be set, got %q", c.method, c.path, w.Header().Get("X-Correlation-ID"))
		}
	}
	w := e.do("POST", "/fhir/$process-message", read(t, "referral-20-lines.json"))
	subs := e.acc.calls()
	if got := subs[len(subs)-1].Referral.Source.CorrelationID; got == "" || got != w.Header().Get("X-Correlation-ID") {
		t.Errorf("the generated correlation id %q must travel with the referral (%q)", w.Header().Get("X-Correlation-ID"), got)
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	cases := []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/fhir/$process-message", http.StatusMethodNotAllowed, "POST"},
		{"PUT", "/fhir", http.StatusMethodNotAllowed, "POST"},
		{"POST", "/fhir/metadata", http.StatusMethodNotAllowed, "GET, HEAD"},
		{"GET", "/fhir/Patient/9990000018", http.StatusNotFound, ""},
		{"POST", "/fhir/ServiceRequest", http.StatusNotFound, ""},
		{"GET", "/", http.StatusNotFound, ""},
	}
	for _, c := range cases {
		w := e.do(c.method, c.path, nil)
		code, expr := "not-found", "http.url"
		if c.status == http.StatusMethodNotAllowed {
			code, expr = "not-supported", "http.method"
		}
		wantOutcome(t, w, c.status, code, expr)
		if w.Header().Get("Allow") != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, w.Header().Get("Allow"), c.allow)
		}
	}
	if w := e.do("POST", "/fhir/", read(t, "referral-transaction.json")); w.Code != http.StatusOK {
		t.Errorf("POST /fhir/: %d", w.Code)
	}
}

func TestMetadata(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	w := e.do("GET", "/fhir/metadata", nil)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/fhir+json" {
		t.Fatalf("status %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	assertValidFHIR(t, w.Body.Bytes())
	var cs struct {
		ResourceType, Status, Kind, FHIRVersion, Date string
		Format                                        []string
		Implementation                                struct{ Description string }
		Rest                                          []struct {
			Mode, Documentation string
			Resource            []struct{ Type string }
			Interaction         []struct{ Code string }
			Operation           []struct{ Name, Definition string }
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &cs); err != nil {
		t.Fatal(err)
	}
	if cs.ResourceType != "CapabilityStatement" || cs.Status != "active" || cs.Kind != "instance" || cs.FHIRVersion != "4.0.1" || cs.Date == "" || cs.Implementation.Description == "" {
		t.Errorf("capability statement %s", w.Body)
	}
	if fmt.Sprint(cs.Format) != "[application/fhir+json]" || len(cs.Rest) != 1 || cs.Rest[0].Mode != "server" {
		t.Fatalf("format %v rest %d", cs.Format, len(cs.Rest))
	}
	rest := cs.Rest[0]
	var interactions, types []string
	for _, i := range rest.Interaction {
		interactions = append(interactions, i.Code)
	}
	for _, r := range rest.Resource {
		types = append(types, r.Type)
	}
	if fmt.Sprint(interactions) != "[transaction batch]" {
		t.Errorf("interactions %v", interactions)
	}
	if len(rest.Operation) != 1 || rest.Operation[0].Name != "process-message" || rest.Operation[0].Definition != "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message" {
		t.Errorf("operations %+v", rest.Operation)
	}
	for _, want := range []string{"Bundle", "MessageHeader", "ServiceRequest", "Patient", "DeviceRequest", "Device", "Practitioner", "PractitionerRole", "Organization", "Location", "Condition", "Observation"} {
		if !strings.Contains(fmt.Sprint(types), want) {
			t.Errorf("resource %s not described", want)
		}
	}
	for _, phrase := range []string{"Tolerant", "Strict", "bare id", "quantity", "X-Request-ID", "revoked or entered-in-error", "amendment", fhirmap.RequestKindSystem, fhirmap.CollectionReasonSystem, fhirmap.CancellationReasonExtension, "409 business-rule"} {
		if !strings.Contains(rest.Documentation, phrase) {
			t.Errorf("documentation does not mention %q", phrase)
		}
	}
	if w := e.do("HEAD", "/fhir/metadata", nil); w.Code != http.StatusOK {
		t.Errorf("HEAD: %d", w.Code)
	}
}

func TestAcceptorFailure(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{RetryAfter: 90 * time.Second})
	e.acc.err = errors.New("store: database is locked")
	w := e.do("POST", "/fhir/$process-message", read(t, "referral-1-line.json"))
	wantOutcome(t, w, http.StatusServiceUnavailable, "transient", "Bundle")
	if got := w.Header().Get("Retry-After"); got != "90" {
		t.Errorf("Retry-After %q", got)
	}
	if !strings.Contains(e.logs.String(), "database is locked") {
		t.Errorf("the cause should be logged: %s", e.logs)
	}
}

func TestPanicIsAHubFault(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	e.acc.panic = true
	w := e.do("POST", "/fhir/$process-message", read(t, "referral-1-line.json"))
	wantOutcome(t, w, http.StatusInternalServerError, "exception", "Bundle")
	if !strings.Contains(e.logs.String(), "assignment to entry in nil map") {
		t.Errorf("the runtime error should be logged: %s", e.logs)
	}
}

// TestBaRSNeverServerError: real NHS bundles, as they are and with a valid
// NHS number, to both endpoints, never cause a 5xx.
func TestBaRSNeverServerError(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	files, _ := filepath.Glob(filepath.Join(testdata, "bars", "*.json"))
	if len(files) != 3 {
		t.Fatalf("BaRS examples: %v", files)
	}
	accepted := 0
	for _, f := range files {
		body := read(t, filepath.Join("bars", filepath.Base(f)))
		fixed := bytes.ReplaceAll(body, []byte("3478526985"), []byte("9990000018"))
		for _, b := range [][]byte{body, fixed} {
			for _, path := range []string{"/fhir/$process-message", "/fhir"} {
				w := e.do("POST", path, b)
				if w.Code >= 500 {
					t.Errorf("%s to %s: %d %s", filepath.Base(f), path, w.Code, w.Body)
				}
				if w.Code == 200 {
					accepted++
					assertValidFHIR(t, w.Body.Bytes())
				}
			}
		}
	}
	if accepted != 2 {
		t.Errorf("want the fixed 999 and 111 examples accepted, got %d accepted", accepted)
	}
}

// TestLogsHoldNoPersonalData sends accepted, refused and broken referrals
// and checks that no personal value from them reaches the log.
func TestLogsHoldNoPersonalData(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	for _, f := range []string{"referral-1-line.json", "referral-3-lines.json", "invalid/nhs-number-check-digit.json", "invalid/focus-is-patient.json", "bars/999-to-cas-service-request.json"} {
		e.do("POST", "/fhir/$process-message", read(t, f), "X-Request-ID", uuid.NewString())
	}
	e.do("POST", "/fhir", read(t, "referral-transaction.json"))
	e.do("GET", "/fhir/Patient/9990000018", nil)
	logs := e.logs.String()
	if strings.Count(logs, "\n") < 7 {
		t.Fatalf("want a log line per request, got:\n%s", logs)
	}
	for _, s := range []string{
		"9990000018", "9990000019", "9990000026", "9990000042", "3478526985",
		"Hughes", "Margaret", "Platt", "Whitfield", "Adeyemi", "Julie", "Jones", "Roberts",
		"CH1 4QX", "CW1 3XY", "CH2 1XR", "LS10", "1941-03-12", "1952-07-30", "1959-05-04",
		"01632 960", "07700 900", "01138698975", "Ferndale", "Wistaston", "Parkinson", "Discharge",
	} {
		if strings.Contains(logs, s) {
			t.Errorf("log holds %q:\n%s", s, logs)
		}
	}
	if !strings.Contains(logs, `"referral_id"`) || !strings.Contains(logs, `"request_id"`) || !strings.Contains(logs, `"issue_errors":1`) {
		t.Errorf("logs should carry ids and counts:\n%s", logs)
	}
}

func TestConcurrentRequests(t *testing.T) {
	e := newEnv(t, fhiradapter.Config{})
	body := read(t, "referral-20-lines.json")
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.do("POST", "/fhir/$process-message", body, "X-Request-ID", uuid.NewString()).Code
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: %d", i, c)
		}
	}
}

// TestStoreOutageIsLoggedOncePerInterval: while the store cannot take
// writes every referral is answered 503, and the log gets one error line
// per interval (with how many like ones it left out), the others at debug
// level, rather than an error line per request (65,000 in a minute of full
// disk, seen from outside).
func TestStoreOutageIsLoggedOncePerInterval(t *testing.T) {
	now := received
	e := newEnv(t, fhiradapter.Config{Clock: func() time.Time { return now }})
	e.acc.err = errors.New("store: commit: sqlite: step: database or disk is full")
	for i := range 50 {
		if i == 40 {
			now = now.Add(11 * time.Second)
		}
		if w := e.do("POST", "/fhir/$process-message", read(t, "referral-1-line.json"), "X-Request-ID", uuid.NewString()); w.Code != 503 {
			t.Fatalf("status %d", w.Code)
		}
	}
	var errorsLogged []string
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			errorsLogged = append(errorsLogged, line)
		}
	}
	if len(errorsLogged) != 2 || !strings.Contains(errorsLogged[0], `"similar_not_logged":0`) || !strings.Contains(errorsLogged[1], `"similar_not_logged":39`) {
		t.Errorf("%d error lines, want 2 (the first, then one after the interval counting 39 left out):\n%s", len(errorsLogged), strings.Join(errorsLogged, "\n"))
	}
	if n := strings.Count(e.logs.String(), `"level":"DEBUG"`); n != 48 {
		t.Errorf("%d debug lines, want the 48 others", n)
	}
}
