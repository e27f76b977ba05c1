package nhs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/adapters/nhs"
	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/logging"
	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

const (
	partnerID  = "nhs-rx1"
	token      = "fictional-token"
	referralID = "5b0e7c1a-2f4d-4c8e-9a61-3d2f0b7e4a10"
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

// env is a Client aimed at a Simulator over real HTTP, logging through the
// hub's allowlisting handler.
type env struct {
	sim    *nhs.Simulator
	srv    *httptest.Server
	client *nhs.Client
	logs   *syncBuffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sim := nhs.NewSimulator()
	sim.RequireToken(token)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return newEnvFor(t, sim, srv.URL, srv)
}

func newEnvFor(t *testing.T, sim *nhs.Simulator, base string, srv *httptest.Server) *env {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(logging.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	c, err := nhs.New(nhs.Config{ID: partnerID, Provider: "provider", Delivery: delivery.Config{
		BaseURL: base, Token: token, Timeout: 5 * time.Second, RetryMax: 2,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 2 * time.Millisecond, OpenTimeout: time.Hour,
	}}, logger)
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, srv: srv, client: c, logs: logs}
}

func copyFor(kind model.Kind, status model.OrderStatus) model.Delivery {
	d := model.Delivery{
		Kind: kind, Recipient: partnerID, IdempotencyKey: "idem-" + string(kind) + "-" + string(status),
		Fields: []string{"person.nhsNumber", "requester.organisation"},
		Referral: model.Referral{
			ID:         referralID,
			Source:     model.Source{ServiceRequestID: "sr-1001", CorrelationID: "c0ffee00-0000-4000-8000-000000000001"},
			ReceivedAt: time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC),
			Person:     model.Person{NHSNumber: "9990000018"},
			Requester:  model.Requester{OrganisationODS: "RX1", OrganisationName: "Fictional Community Trust"},
		},
		Refs: model.References{ServiceRequestID: "sr-1001", RequesterODS: "RX1"},
	}
	if kind != model.KindReferral {
		d.Referral.Event = &model.Event{ID: "evt-" + string(kind) + "-" + string(status), Kind: kind,
			ReferralID: referralID, From: "provider", OccurredAt: time.Date(2025, 6, 5, 14, 5, 30, 0, time.UTC), Status: status}
	}
	return d
}

func TestTaskPutCarriesTheContractHeaders(t *testing.T) {
	e := newEnv(t)
	d := copyFor(model.KindReferral, "")
	rcpt, err := e.client.Send(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	taskID := fhirmap.TaskID(referralID)
	if rcpt.PartnerReference != taskID || rcpt.StatusCode != http.StatusCreated || !slices.Equal(rcpt.Fields, d.Fields) {
		t.Errorf("receipt = %+v, want the Task id %s, 201 and the fields the Task holds, %v", rcpt, taskID, d.Fields)
	}
	got := e.sim.Received()
	if len(got) != 1 {
		t.Fatalf("received %d requests", len(got))
	}
	r := got[0]
	if r.Method != http.MethodPut || r.Path != "/Task/"+taskID {
		t.Errorf("request %s %s", r.Method, r.Path)
	}
	h := r.Header
	if h.Authorization != "Bearer "+token || h.ContentType != "application/fhir+json" || h.Accept != "application/fhir+json" ||
		h.IdempotencyKey != d.IdempotencyKey || h.CorrelationID != d.Referral.Source.CorrelationID || h.IfNoneExist != "" {
		t.Errorf("headers = %+v", h)
	}
	if u, err := uuid.Parse(h.RequestID); err != nil || h.RequestID != nhs.RequestID(d.IdempotencyKey) {
		t.Errorf("X-Request-ID %q (%v), want the stable UUID %s", h.RequestID, err, nhs.RequestID(d.IdempotencyKey))
	} else if u.Version() != 5 {
		t.Errorf("X-Request-ID version %d", u.Version())
	}
	if r.Task == nil || r.Task.Status != "received" || r.Task.For.Identifier.Value != "9990000018" {
		t.Errorf("task = %+v", r.Task)
	}
	if strings.Contains(e.logs.String(), "9990000018") {
		t.Errorf("logs hold the NHS number:\n%s", e.logs)
	}
}

// A resent Task update (a retry, a redelivery after a crash) changes
// nothing at the endpoint; the next status is a new version of the same
// Task.
func TestTaskUpdatesAreIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	steps := []model.Delivery{
		copyFor(model.KindReferral, ""),
		copyFor(model.KindOrderStatus, model.StatusAccepted),
		copyFor(model.KindOrderStatus, model.StatusAccepted), // resent
		copyFor(model.KindOrderStatus, model.StatusDelivered),
	}
	statuses := []int{}
	for _, d := range steps {
		rcpt, err := e.client.Send(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, rcpt.StatusCode)
	}
	if want := []int{201, 200, 200, 200}; !slices.Equal(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	// The same body under a new key (the hub re-cut the copy) is also no
	// new version.
	again := copyFor(model.KindOrderStatus, model.StatusDelivered)
	again.IdempotencyKey = "another-key"
	if _, err := e.client.Send(ctx, again); err != nil {
		t.Fatal(err)
	}
	id := fhirmap.TaskID(referralID)
	history := e.sim.TaskHistory(id)
	if len(history) != 3 {
		t.Fatalf("%d Task versions, want 3 (ordered, accepted, delivered)", len(history))
	}
	current, _ := e.sim.Task(id)
	if current.Status != "completed" || current.BusinessStatus.Coding[0].Code != "delivered" || current.Meta.VersionID != "3" {
		t.Errorf("current Task = %+v", current)
	}
	if st := e.sim.Stats(); st.Created != 1 || st.Updated != 2 || st.Repeats != 2 || st.Requests != 5 {
		t.Errorf("stats = %+v", st)
	}
}

func TestSafeguardingIsPostedOnceAsACommunication(t *testing.T) {
	e := newEnv(t)
	d := copyFor(model.KindSafeguarding, "")
	// event.reason is named but the concern gave none: not recorded.
	d.Fields = append(d.Fields, "event.description", "event.reason")
	d.Referral.Event.Description = "Person found without heating."
	rcpt, err := e.client.Send(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	if rcpt.PartnerReference != "comm-000001" || rcpt.StatusCode != http.StatusCreated ||
		!slices.Equal(rcpt.Fields, []string{"person.nhsNumber", "requester.organisation", "event.description"}) {
		t.Errorf("receipt = %+v", rcpt)
	}
	// Resent with the same key, then re-cut under a new key: the endpoint
	// recognises it both times (Idempotency-Key, then If-None-Exist).
	if rcpt, err = e.client.Send(context.Background(), d); err != nil || rcpt.PartnerReference != "comm-000001" {
		t.Errorf("resend: %+v %v", rcpt, err)
	}
	d.IdempotencyKey = "re-cut"
	if rcpt, err = e.client.Send(context.Background(), d); err != nil || rcpt.PartnerReference != "comm-000001" || rcpt.StatusCode != http.StatusOK {
		t.Errorf("re-cut: %+v %v", rcpt, err)
	}
	comms := e.sim.Communications()
	if len(comms) != 1 || comms[0].Payload[0].ContentString != "Person found without heating." || comms[0].Priority != "urgent" {
		t.Fatalf("communications = %+v", comms)
	}
	r := e.sim.Received()[0]
	if r.Method != http.MethodPost || r.Path != "/Communication" || r.Header.IdempotencyKey == "" ||
		r.Header.RequestID != nhs.RequestID("idem-safeguarding-") || !strings.HasPrefix(r.Header.IfNoneExist, "identifier=") {
		t.Errorf("request = %+v", r)
	}
	if strings.Contains(e.logs.String(), "heating") {
		t.Errorf("logs hold the concern:\n%s", e.logs)
	}
}

func TestRefusalsArePermanentWithTheOutcome(t *testing.T) {
	e := newEnv(t)
	e.sim.RequireToken("another-token")
	_, err := e.client.Send(context.Background(), copyFor(model.KindReferral, ""))
	var de *delivery.Error
	if !errors.As(err, &de) || !de.Permanent || de.StatusCode != http.StatusUnauthorized || de.Attempts != 1 {
		t.Fatalf("err = %v (%+v), want permanent 401 after one attempt", err, de)
	}
	if !strings.Contains(de.Body, `"resourceType":"OperationOutcome"`) || !strings.Contains(de.Body, "http.Authorization") {
		t.Errorf("error body = %s", de.Body)
	}
}

// A FHIR server's 422 OperationOutcome, indented and with a long narrative,
// is kept compactly so that its issues fit the error's snippet.
func TestOperationOutcomeIsKeptCompactly(t *testing.T) {
	outcome := `{
  "resourceType": "OperationOutcome",
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">` + strings.Repeat("narrative ", 80) + `</div>"},
  "issue": [
    {
      "severity": "error",
      "code": "processing",
      "diagnostics": "Task.focus: unknown ServiceRequest",
      "expression": ["Task.focus"]
    }
  ]
}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusUnprocessableEntity)
		_, _ = io.WriteString(w, outcome)
	}))
	t.Cleanup(srv.Close)
	e := newEnvFor(t, nil, srv.URL, srv)
	_, err := e.client.Send(context.Background(), copyFor(model.KindOrderStatus, model.StatusScheduled))
	var de *delivery.Error
	if !errors.As(err, &de) || !de.Permanent || de.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("err = %v, want permanent 422", err)
	}
	want := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"Task.focus: unknown ServiceRequest","expression":["Task.focus"]}]}`
	if de.Body != want {
		t.Errorf("body = %s\nwant %s", de.Body, want)
	}
}

func TestServerFailuresAreTransient(t *testing.T) {
	e := newEnv(t)
	e.sim.SetFailure(http.StatusServiceUnavailable)
	d := copyFor(model.KindOrderStatus, model.StatusScheduled)
	_, err := e.client.Send(context.Background(), d)
	var de *delivery.Error
	if !errors.As(err, &de) || de.Permanent || de.StatusCode != http.StatusServiceUnavailable || de.Attempts != 3 {
		t.Fatalf("err = %v (%+v), want transient 503 after 3 attempts", err, de)
	}
	if st := e.sim.Stats(); st.Failed != 3 || st.Created != 0 {
		t.Errorf("stats = %+v", st)
	}
	// Within one Send, retries ride out a short outage.
	e.sim.ClearFailure()
	e.sim.FailNext(2, http.StatusTooManyRequests, "0")
	rcpt, err := e.client.Send(context.Background(), d)
	if err != nil || rcpt.StatusCode != http.StatusCreated {
		t.Fatalf("after the outage: %+v %v", rcpt, err)
	}
	var keys []string
	for _, r := range e.sim.Received() {
		keys = append(keys, r.Header.IdempotencyKey+" "+r.Header.RequestID)
	}
	for _, k := range keys[1:] {
		if k != keys[0] {
			t.Errorf("attempts carried different keys: %v", keys)
		}
	}
}

func TestUnmappableCopiesArePermanentAndSendNothing(t *testing.T) {
	e := newEnv(t)
	wrongRecipient := copyFor(model.KindReferral, "")
	wrongRecipient.Recipient = "nhs-other"
	noKey := copyFor(model.KindReferral, "")
	noKey.IdempotencyKey = ""
	notCarried := copyFor(model.KindOrderStatus, model.StatusAccepted)
	notCarried.Fields = append(notCarried.Fields, "person.address")
	cases := map[string]struct {
		d    model.Delivery
		want error
	}{
		"wrong recipient":   {wrongRecipient, nil},
		"no key":            {noKey, fhirmap.ErrInvalidCopy},
		"complaint":         {copyFor(model.KindComplaint, ""), fhirmap.ErrUnsupportedKind},
		"field not carried": {notCarried, fhirmap.ErrFieldNotCarried},
		"no status":         {copyFor(model.KindOrderStatus, ""), fhirmap.ErrInvalidCopy},
	}
	for name, c := range cases {
		_, err := e.client.Send(context.Background(), c.d)
		if !delivery.IsPermanent(err) || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: err = %v, want permanent %v", name, err, c.want)
		}
	}
	if n := e.sim.Stats().Requests; n != 0 {
		t.Errorf("%d requests reached the endpoint", n)
	}
	if s := e.client.BreakerState(); s != "closed" {
		t.Errorf("breaker %s", s)
	}
}

func TestCommunicationIDFromTheAnswerBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/fhir+json")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"resourceType":"Communication","id":"srv-77","status":"completed"}`)
	}))
	t.Cleanup(srv.Close)
	e := newEnvFor(t, nil, srv.URL, srv)
	rcpt, err := e.client.Send(context.Background(), copyFor(model.KindSafeguarding, ""))
	if err != nil || rcpt.PartnerReference != "srv-77" {
		t.Errorf("receipt %+v, err %v", rcpt, err)
	}
}

func TestNewChecksItsConfig(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	good := delivery.Config{BaseURL: "https://fhir.example/R4"}
	cases := map[string]struct {
		cfg    nhs.Config
		logger *slog.Logger
	}{
		"nil logger":       {nhs.Config{ID: "nhs-rx1", Delivery: good}, nil},
		"empty id":         {nhs.Config{ID: " ", Delivery: good}, logger},
		"partner mismatch": {nhs.Config{ID: "nhs-rx1", Delivery: delivery.Config{Partner: "other", BaseURL: good.BaseURL}}, logger},
		"bad base URL":     {nhs.Config{ID: "nhs-rx1", Delivery: delivery.Config{BaseURL: "fhir.example"}}, logger},
	}
	for name, c := range cases {
		if _, err := nhs.New(c.cfg, c.logger); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if c, err := nhs.New(nhs.Config{ID: "nhs-rx1", Delivery: good}, logger); err != nil || c.ID() != "nhs-rx1" {
		t.Errorf("good config: %v", err)
	}
}

// TestEquipmentIssueAfterDeliveryLeavesTheTaskCompleted: the Task goes to
// completed with the delivery; the equipment issue that follows is POSTed
// as a Communication about it, and the Task stays as it was. The endpoint
// (like the simulator) would refuse a PUT reopening the completed Task.
func TestEquipmentIssueAfterDeliveryLeavesTheTaskCompleted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.client.Send(ctx, copyFor(model.KindOrderStatus, model.StatusDelivered)); err != nil {
		t.Fatal(err)
	}
	issue := copyFor(model.KindEquipmentIssue, "")
	issue.Fields = append(issue.Fields, "event.reason")
	issue.Referral.Event.Reason = model.Coded{Code: model.IssueUnsafe}
	rcpt, err := e.client.Send(ctx, issue)
	if err != nil {
		t.Fatal(err)
	}
	if rcpt.PartnerReference != "comm-000001" {
		t.Errorf("receipt = %+v, want the Communication's id", rcpt)
	}
	comms := e.sim.Communications()
	if len(comms) != 1 || comms[0].Priority != "urgent" || comms[0].ReasonCode[0].Coding[0].Code != model.IssueUnsafe {
		t.Fatalf("communications = %+v", comms)
	}
	task, ok := e.sim.Task(fhirmap.TaskID(referralID))
	if !ok || task.Status != "completed" || task.BusinessStatus.Coding[0].Code != string(model.StatusDelivered) || len(e.sim.TaskHistory(task.ID)) != 1 {
		t.Errorf("Task after the issue = %+v (%d versions), want it completed and delivered as before", task, len(e.sim.TaskHistory(task.ID)))
	}

	// A Task update that would reopen it is refused, permanently.
	_, err = e.client.Send(ctx, copyFor(model.KindOrderStatus, model.StatusScheduled))
	var derr *delivery.Error
	if !errors.As(err, &derr) || !derr.Permanent || derr.StatusCode != http.StatusConflict {
		t.Errorf("reopening PUT: %v, want a permanent 409", err)
	}
}
