package fhir_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	fhiradapter "github.com/iceshub/iceshub/adapters/fhir"
	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// The referral the event fixtures name: referral-1-line.json's
// ServiceRequest, recorded under the hub's id that
// collection-by-referral-id.json quotes.
const (
	referralSR = "fb034f78-c1bb-54f0-90cf-efb7581fc5c3"
	referralID = "b055b691-5aa8-55fc-bcc5-c935386bfcd1"
)

// memStore is an in-memory store for the real intake use cases: referrals
// (intake.Store) and events (intake.EventStore) share one idempotency key
// space, as they do in the hub's store. It is also the edge's
// ReferralFinder.
type memStore struct {
	mu         sync.Mutex
	records    map[string]*intake.Record // by referral id
	keys       map[string]intake.Response
	events     []intake.EventMessage
	rejections []intake.Rejection
	// findErr and acceptErr, when set, fail FindReferral and
	// AcceptOnce/AcceptEventOnce.
	findErr, acceptErr error
}

func newMemStore() *memStore {
	return &memStore{records: map[string]*intake.Record{}, keys: map[string]intake.Response{}}
}

// put records the referral of file under id with status st, as if it had
// been accepted and delivered so far.
func (m *memStore) put(t *testing.T, file, id string, st model.OrderStatus) {
	t.Helper()
	p, err := fhirmap.ParseMessage(read(t, file))
	if err != nil {
		t.Fatal(err)
	}
	ref := p.Referral
	ref.ID, ref.ReceivedAt = id, received
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[id] = &intake.Record{Referral: ref, Status: st, Refs: model.References{ServiceRequestID: ref.Source.ServiceRequestID}}
}

func (m *memStore) record(id string) intake.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.records[id]
}

func (m *memStore) accepted() ([]intake.EventMessage, []intake.Rejection) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]intake.EventMessage(nil), m.events...), append([]intake.Rejection(nil), m.rejections...)
}

func (m *memStore) FindReferral(_ context.Context, l intake.Lookup) (intake.Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.findErr != nil {
		return intake.Record{}, false, m.findErr
	}
	for _, r := range m.records {
		if (l.ReferralID != "" && r.Referral.ID == l.ReferralID) || (l.ReferralID == "" && l.ServiceRequestID != "" && r.Referral.Source.ServiceRequestID == l.ServiceRequestID) {
			return *r, true, nil
		}
	}
	return intake.Record{}, false, nil
}

// seen returns the stored answer of the first key seen before.
func (m *memStore) seen(keys []string) (intake.Response, bool) {
	for _, k := range keys {
		if r, ok := m.keys[k]; ok {
			return r, true
		}
	}
	return intake.Response{}, false
}

func (m *memStore) AcceptOnce(_ context.Context, keys []string, resp intake.Response, _ string, msg *message.Message, _ *intake.Record) (intake.Response, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.acceptErr != nil {
		return intake.Response{}, false, m.acceptErr
	}
	if r, ok := m.seen(keys); ok {
		return r, true, nil
	}
	var ref model.Referral
	if err := json.Unmarshal(msg.Payload, &ref); err != nil {
		return intake.Response{}, false, err
	}
	m.records[ref.ID] = &intake.Record{Referral: ref, Status: model.StatusOrdered}
	for _, k := range keys {
		m.keys[k] = resp
	}
	return resp, false, nil
}

func (m *memStore) StoredResponse(_ context.Context, keys []string) (intake.Response, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.seen(keys)
	return r, ok, nil
}

func (m *memStore) AcceptEventOnce(_ context.Context, c intake.EventCommit) (intake.Response, bool, error) {
	keys, resp, msg, change, amended := c.Keys, c.Response, c.Message, c.Change, c.Amended
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.acceptErr != nil {
		return intake.Response{}, false, m.acceptErr
	}
	if r, ok := m.seen(keys); ok {
		return r, true, nil
	}
	rec := m.records[change.ReferralID]
	if rec == nil || rec.Status != change.From {
		return intake.Response{}, false, intake.ErrConflict
	}
	var em intake.EventMessage
	if err := json.Unmarshal(msg.Payload, &em); err != nil {
		return intake.Response{}, false, err
	}
	m.events = append(m.events, em)
	if change.To != "" {
		rec.Status = change.To
	}
	if amended != nil {
		rec.Referral = *amended
	}
	for _, k := range keys {
		m.keys[k] = resp
	}
	return resp, false, nil
}

func (m *memStore) RecordRejection(_ context.Context, r intake.Rejection) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rejections = append(m.rejections, r)
	return nil
}

// newEventEnv is newEnv on the real intake use cases over st: referrals
// through intake.Service, events through intake.Events, st as Finder.
func newEventEnv(t *testing.T, cfg fhiradapter.Config, st *memStore) *env {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = func() time.Time { return received }
	}
	svc, err := intake.New(st)
	if err != nil {
		t.Fatal(err)
	}
	events, err := intake.NewEvents(st, cfg.Clock)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Finder, cfg.Events = st, events
	e := &env{logs: &bytes.Buffer{}}
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: e.logs}, nil))
	if e.h, err = fhiradapter.New(cfg, svc, logger); err != nil {
		t.Fatal(err)
	}
	return e
}

// refusingAcceptor refuses every event with err.
type refusingAcceptor struct{ err error }

func (a refusingAcceptor) AcceptEvent(context.Context, intake.EventSubmission) (intake.Outcome, error) {
	return intake.Outcome{}, a.err
}

// messageAnswer reads a response message: its identifier, the
// MessageHeader's response and the first issue of its OperationOutcome.
func messageAnswer(t *testing.T, body []byte) (id, respondsTo, code, summary string) {
	t.Helper()
	assertValidFHIR(t, body)
	var resp responseMessage
	if err := json.Unmarshal(body, &resp); err != nil || resp.Type != "message" || len(resp.Entry) != 2 {
		t.Fatalf("not a response message: %v %s", err, body)
	}
	var mh struct {
		Response struct{ Identifier, Code string }
	}
	var oo outcome
	if json.Unmarshal(resp.Entry[0].Resource, &mh) != nil || json.Unmarshal(resp.Entry[1].Resource, &oo) != nil || len(oo.Issue) == 0 {
		t.Fatalf("response message %s", body)
	}
	return resp.Identifier.Value, mh.Response.Identifier, mh.Response.Code, oo.Issue[0].Diagnostics
}

func TestCancellation(t *testing.T) {
	st := newMemStore()
	st.put(t, "referral-1-line.json", referralID, model.StatusScheduled)
	e := newEventEnv(t, fhiradapter.Config{}, st)
	body := read(t, "cancellation-revoked.json")
	msgID, _ := requestHeader(t, body)
	reqID := uuid.NewString()

	w := e.do("POST", "/fhir/$process-message", body, "X-Request-ID", reqID)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	id, respondsTo, code, summary := messageAnswer(t, w.Body.Bytes())
	if id != referralID || respondsTo != msgID || code != "ok" || !strings.Contains(summary, "cancellation accepted for the hub's referral "+referralID) {
		t.Errorf("answer: identifier %q response %q %q summary %q", id, respondsTo, code, summary)
	}
	events, rejections := st.accepted()
	if len(events) != 1 || len(rejections) != 0 {
		t.Fatalf("events %d rejections %d", len(events), len(rejections))
	}
	ev := events[0].Event
	occurred := time.Date(2025, 6, 3, 9, 0, 0, 0, time.UTC)
	if ev.Kind != model.KindCancellation || ev.Status != model.StatusCancelled || ev.ReferralID != referralID || ev.From != "nhs" ||
		ev.FromEventID != msgID || !ev.OccurredAt.Equal(occurred) || !ev.ReceivedAt.Equal(received) ||
		ev.Reason.Code != "no-longer-required" || !strings.HasPrefix(ev.Description, "Admitted") || events[0].Amended != nil {
		t.Errorf("event %+v", ev)
	}
	if s := st.record(referralID).Status; s != model.StatusCancelled {
		t.Errorf("status %q", s)
	}

	if !strings.Contains(e.logs.String(), `"kind":"cancellation"`) || !strings.Contains(e.logs.String(), "fhir cancellation accepted") {
		t.Errorf("logs: %s", e.logs)
	}
}

// recordingEvents accepts every event and remembers it.
type recordingEvents struct {
	mu   sync.Mutex
	subs []intake.EventSubmission
}

func (r *recordingEvents) AcceptEvent(_ context.Context, sub intake.EventSubmission) (intake.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subs = append(r.subs, sub)
	return intake.Outcome{Response: sub.Response}, nil
}

// TestEventKeys: a resent event, even in a rebuilt bundle with a new
// X-Request-ID, carries the key of its first sending, so that the store
// recognises it; a different event under the same message id does not.
func TestEventKeys(t *testing.T) {
	rec := &recordingEvents{}
	e := newEnv(t, fhiradapter.Config{Events: rec})
	body := read(t, "cancellation-revoked.json")
	msgID, _ := requestHeader(t, body)
	rebuilt := bytes.Replace(body, []byte("2025-06-03T10:00:00+01:00"), []byte("2025-06-03T10:01:00+01:00"), -1)
	other := bytes.Replace(body, []byte("no-longer-required"), []byte("duplicate-order"), 1)
	for _, b := range [][]byte{body, rebuilt, other} {
		if w := e.do("POST", "/fhir/$process-message", b, "X-Request-ID", uuid.NewString()); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	s := rec.subs
	if len(s) != 3 || len(s[0].Keys) != 2 || !strings.HasPrefix(s[0].Keys[1], "message:"+msgID+"#") {
		t.Fatalf("keys %+v", s)
	}
	if s[1].Keys[1] != s[0].Keys[1] || s[1].Keys[0] == s[0].Keys[0] {
		t.Errorf("a resend must share the message key: %q / %q", s[0].Keys, s[1].Keys)
	}
	if s[2].Keys[1] == s[0].Keys[1] {
		t.Errorf("another cancellation under the same message id was given the same key")
	}
	if s[0].Find != (intake.Lookup{ServiceRequestID: referralSR}) || s[0].Event.ID == "" || s[0].Event.ID == s[1].Event.ID {
		t.Errorf("find %+v event ids %q %q", s[0].Find, s[0].Event.ID, s[1].Event.ID)
	}
	if !bytes.Contains(s[0].Response.Body, []byte(intake.ReferralIDPlaceholder)) {
		t.Errorf("the answer must name the referral by the placeholder: %s", s[0].Response.Body)
	}
}

func TestCancellationTransaction(t *testing.T) {
	st := newMemStore()
	st.put(t, "referral-1-line.json", referralID, model.StatusOrdered)
	e := newEventEnv(t, fhiradapter.Config{}, st)
	w := e.do("POST", "/fhir", read(t, "cancellation-entered-in-error.json"))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	assertValidFHIR(t, w.Body.Bytes())
	var resp responseMessage
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.Type != "transaction-response" || len(resp.Entry) != 2 {
		t.Fatalf("%v %s", err, w.Body)
	}
	if r := resp.Entry[0].Response; r.Status != "200 OK" || r.Location != "ServiceRequest/"+referralID || !bytes.Contains(r.Outcome, []byte("cancellation accepted")) {
		t.Errorf("ServiceRequest entry %+v", r)
	}
	events, _ := st.accepted()
	if len(events) != 1 || events[0].Event.Reason.Code != fhirmap.CancelledInError || events[0].Event.FromEventID != "95043f7f-52de-5ccc-9395-fb1b9925820c" {
		t.Errorf("events %+v", events)
	}
}

func TestCollection(t *testing.T) {
	for _, file := range []string{"collection-1-line.json", "collection-by-referral-id.json"} {
		t.Run(file, func(t *testing.T) {
			st := newMemStore()
			st.put(t, "referral-1-line.json", referralID, model.StatusDelivered)
			e := newEventEnv(t, fhiradapter.Config{}, st)
			path := "/fhir/$process-message"
			if strings.Contains(file, "referral-id") {
				path = "/fhir"
			}
			w := e.do("POST", path, read(t, file))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			assertValidFHIR(t, w.Body.Bytes())
			if !bytes.Contains(w.Body.Bytes(), []byte("collection request accepted for the hub's referral "+referralID)) {
				t.Errorf("answer %s", w.Body)
			}
			events, _ := st.accepted()
			if len(events) != 1 || events[0].Event.Kind != model.KindCollection || events[0].Event.Status != model.StatusCollectionRequested || events[0].Event.Description == "" {
				t.Fatalf("events %+v", events)
			}
			if s := st.record(referralID).Status; s != model.StatusCollectionRequested {
				t.Errorf("status %q", s)
			}
			if again := e.do("POST", path, read(t, file), "X-Request-ID", uuid.NewString()); !bytes.Equal(again.Body.Bytes(), w.Body.Bytes()) {
				t.Errorf("resend: %d, want the first answer", again.Code)
			}
			if events, _ := st.accepted(); len(events) != 1 {
				t.Errorf("a resend was applied: %d events", len(events))
			}
		})
	}
}

// TestEventRefusals: each refusal of the use case is answered with its
// status, issue code and the element it is about, and nothing is applied.
func TestEventRefusals(t *testing.T) {
	cases := []struct {
		name, path, file string
		status           model.OrderStatus // of the stored referral; "" stores none
		status2          int
		code, expr       string
	}{
		{"cancel an unknown referral", "/fhir/$process-message", "cancellation-revoked.json", "", 403, "forbidden", "Bundle.entry[1].resource.id"},
		{"cancel an unknown referral by transaction", "/fhir", "cancellation-entered-in-error.json", "", 403, "forbidden", "Bundle.entry[0].resource.id"},
		{"collect for an unknown referral", "/fhir/$process-message", "collection-1-line.json", "", 403, "forbidden", "Bundle.entry[1].resource.basedOn[0]"},
		{"collect for an unknown referral id", "/fhir", "collection-by-referral-id.json", "", 403, "forbidden", "Bundle.entry[0].resource.basedOn[0]"},
		{"cancel a delivered order", "/fhir/$process-message", "cancellation-revoked.json", model.StatusDelivered, 409, "business-rule", "Bundle.entry[1].resource.status"},
		{"cancel a cancelled order", "/fhir/$process-message", "cancellation-revoked.json", model.StatusCancelled, 409, "business-rule", "Bundle.entry[1].resource.status"},
		{"collect what was never delivered", "/fhir/$process-message", "collection-1-line.json", model.StatusScheduled, 409, "business-rule", "Bundle.entry[1].resource.status"},
		{"amend a collected order", "/fhir/$process-message", "amendment-1-line.json", model.StatusCollected, 409, "business-rule", "Bundle.entry[1].resource.status"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := newMemStore()
			if c.status != "" {
				st.put(t, "referral-1-line.json", referralID, c.status)
			}
			e := newEventEnv(t, fhiradapter.Config{}, st)
			oo := wantOutcome(t, e.do("POST", c.path, read(t, c.file)), c.status2, c.code, c.expr)
			if len(oo.Issue) != 1 {
				t.Errorf("issues %+v", oo.Issue)
			}
			events, rejections := st.accepted()
			if len(events) != 0 {
				t.Errorf("a refused event was applied: %+v", events)
			}
			if c.name != "amend a collected order" && len(rejections) != 1 {
				t.Errorf("the refusal was not recorded: %+v", rejections)
			}
			if c.status != "" && st.record(referralID).Status != c.status {
				t.Errorf("status changed")
			}
		})
	}
}

func TestEventAnotherPerson(t *testing.T) {
	other := func(file string) []byte {
		return bytes.Replace(read(t, file), []byte(`"value": "9990000018"`), []byte(`"value": "9990000026"`), 1)
	}
	cases := map[string]struct {
		body []byte
		expr string
	}{
		"amendment":    {other("amendment-1-line.json"), "Bundle.entry[2].resource.identifier[0].value"},
		"cancellation": {other("cancellation-revoked.json"), "Bundle.entry[2].resource.identifier[0].value"},
		"collection":   {other("collection-1-line.json"), "Bundle.entry[2].resource.identifier[0].value"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			st := newMemStore()
			st.put(t, "referral-1-line.json", referralID, model.StatusDelivered)
			e := newEventEnv(t, fhiradapter.Config{}, st)
			oo := wantOutcome(t, e.do("POST", "/fhir/$process-message", c.body), 422, "business-rule", c.expr)
			if !strings.Contains(oo.Issue[0].Diagnostics, "another person") || strings.Contains(oo.Issue[0].Diagnostics, "999000") {
				t.Errorf("diagnostics %q", oo.Issue[0].Diagnostics)
			}
			if events, _ := st.accepted(); len(events) != 0 || st.record(referralID).Referral.Person.NHSNumber != "9990000018" {
				t.Errorf("applied: %+v", events)
			}
		})
	}
}

// TestAmendment follows a referral through its life at the edge: accepted,
// resent (a duplicate), amended, the amendment resent, the original resent
// after the amendment (still a duplicate: never an amendment back).
func TestAmendment(t *testing.T) {
	st := newMemStore()
	e := newEventEnv(t, fhiradapter.Config{}, st)
	original := read(t, "referral-1-line.json")
	first := e.do("POST", "/fhir/$process-message", original)
	if first.Code != http.StatusOK {
		t.Fatalf("referral: %d %s", first.Code, first.Body)
	}
	refID, _, _, _ := messageAnswer(t, first.Body.Bytes())

	if again := e.do("POST", "/fhir/$process-message", original, "X-Request-ID", uuid.NewString()); !bytes.Equal(again.Body.Bytes(), first.Body.Bytes()) {
		t.Errorf("an identical resend must be a duplicate, got %d %s", again.Code, again.Body)
	}
	if events, _ := st.accepted(); len(events) != 0 || len(st.records) != 1 {
		t.Fatalf("an identical resend became %d events, %d referrals", len(events), len(st.records))
	}

	body := read(t, "amendment-1-line.json")
	msgID, _ := requestHeader(t, body)
	w := e.do("POST", "/fhir/$process-message", body, "X-Correlation-ID", "corr-amend")
	if w.Code != http.StatusOK {
		t.Fatalf("amendment: %d %s", w.Code, w.Body)
	}
	id, respondsTo, code, summary := messageAnswer(t, w.Body.Bytes())
	if id != refID || respondsTo != msgID || code != "ok" || !strings.Contains(summary, "amendment accepted for the hub's referral "+refID) {
		t.Errorf("answer %q %q %q %q", id, respondsTo, code, summary)
	}
	events, _ := st.accepted()
	if len(events) != 1 {
		t.Fatalf("events %d", len(events))
	}
	ev, am := events[0].Event, events[0].Amended
	if ev.Kind != model.KindAmendment || ev.Status != "" || ev.From != "nhs" || ev.FromEventID != msgID || ev.Description != "amended: priority, equipment" {
		t.Errorf("event %+v", ev)
	}
	if am == nil || am.ID != refID || am.Priority != model.PriorityUrgent || am.Equipment[0].Quantity != 2 || am.Source.CorrelationID != "corr-amend" {
		t.Fatalf("amended %+v", am)
	}
	if r := st.record(refID); r.Referral.Priority != model.PriorityUrgent || r.Status != model.StatusOrdered {
		t.Errorf("stored %+v", r)
	}

	// The amendment resent: the same content as stored now, so the referral
	// path, whose keys are the amendment's: the amendment's answer.
	if again := e.do("POST", "/fhir/$process-message", body); !bytes.Equal(again.Body.Bytes(), w.Body.Bytes()) {
		t.Errorf("amendment resent: %d %s", again.Code, again.Body)
	}
	// The original resent late: its own key, its own answer; not an
	// amendment back to routine.
	if late := e.do("POST", "/fhir/$process-message", original); !bytes.Equal(late.Body.Bytes(), first.Body.Bytes()) {
		t.Errorf("original resent: %d %s", late.Code, late.Body)
	}
	if events, _ := st.accepted(); len(events) != 1 || st.record(refID).Referral.Priority != model.PriorityUrgent {
		t.Errorf("a resend was applied: %d events", len(events))
	}
}

func TestEventsNotSupported(t *testing.T) {
	st := newMemStore()
	st.put(t, "referral-1-line.json", referralID, model.StatusDelivered)
	cases := []struct {
		name, file string
		cfg        fhiradapter.Config
		expr       string
	}{
		{"cancellation", "cancellation-revoked.json", fhiradapter.Config{}, "Bundle.entry[1].resource.status"},
		{"collection", "collection-1-line.json", fhiradapter.Config{}, "Bundle.entry[1].resource.code"},
		{"amendment", "amendment-1-line.json", fhiradapter.Config{Finder: st}, "Bundle.entry[1].resource.id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.cfg)
			oo := wantOutcome(t, e.do("POST", "/fhir/$process-message", read(t, c.file)), 422, "not-supported", c.expr)
			if !strings.Contains(oo.Issue[0].Diagnostics, "not supported by this hub") {
				t.Errorf("diagnostics %q", oo.Issue[0].Diagnostics)
			}
			if n := len(e.acc.calls()); n != 0 {
				t.Errorf("handed to the referral acceptor %d times", n)
			}
		})
	}
	t.Run("without a finder an active referral is new", func(t *testing.T) {
		e := newEnv(t, fhiradapter.Config{})
		if w := e.do("POST", "/fhir/$process-message", read(t, "amendment-1-line.json")); w.Code != 200 || len(e.acc.calls()) != 1 {
			t.Errorf("%d %s", w.Code, w.Body)
		}
	})
}

func TestEventAcceptorErrors(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		status     int
		code, expr string
	}{
		{"conflict", fmt.Errorf("intake: accept cancellation event: %w", intake.ErrConflict), 409, "conflict", "Bundle.entry[1].resource"},
		{"not yours", fmt.Errorf("%w: the order was not sent to p", intake.ErrNotYours), 403, "forbidden", "Bundle.entry[1].resource.id"},
		{"refusal not recorded", errors.Join(fmt.Errorf("%w (ServiceRequest x)", intake.ErrUnknownReferral), errors.New("intake: record refusal: disk full")), 403, "forbidden", "Bundle.entry[1].resource.id"},
		{"store failure", errors.New("intake: accept cancellation event: database is locked"), 503, "transient", "Bundle"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, fhiradapter.Config{Events: refusingAcceptor{c.err}, RetryAfter: 45 * time.Second})
			w := e.do("POST", "/fhir/$process-message", read(t, "cancellation-revoked.json"))
			wantOutcome(t, w, c.status, c.code, c.expr)
			if ra := w.Header().Get("Retry-After"); (c.status == 503) != (ra == "45") {
				t.Errorf("Retry-After %q", ra)
			}
		})
	}
	t.Run("store failure through the use case", func(t *testing.T) {
		st := newMemStore()
		st.put(t, "referral-1-line.json", referralID, model.StatusOrdered)
		st.acceptErr = errors.New("database is locked")
		e := newEventEnv(t, fhiradapter.Config{}, st)
		w := e.do("POST", "/fhir", read(t, "cancellation-entered-in-error.json"))
		wantOutcome(t, w, 503, "transient", "Bundle")
		if !strings.Contains(e.logs.String(), "database is locked") {
			t.Errorf("the cause should be logged: %s", e.logs)
		}
	})
	t.Run("finder failure", func(t *testing.T) {
		st := newMemStore()
		st.findErr = errors.New("database is locked")
		e := newEventEnv(t, fhiradapter.Config{}, st)
		for _, f := range []string{"referral-1-line.json", "cancellation-revoked.json"} {
			wantOutcome(t, e.do("POST", "/fhir/$process-message", read(t, f)), 503, "transient", "Bundle")
		}
	})
}

// TestEventLogsHoldNoPersonalData: events are logged by ids, kind and
// counts, like referrals.
func TestEventLogsHoldNoPersonalData(t *testing.T) {
	st := newMemStore()
	st.put(t, "referral-1-line.json", referralID, model.StatusDelivered)
	e := newEventEnv(t, fhiradapter.Config{}, st)
	for _, f := range []string{"cancellation-revoked.json", "collection-1-line.json", "amendment-1-line.json"} {
		e.do("POST", "/fhir/$process-message", read(t, f))
	}
	e.do("POST", "/fhir", read(t, "collection-by-referral-id.json"))
	logs := e.logs.String()
	for _, s := range []string{"9990000018", "Hughes", "Margaret", "CH1 4QX", "Admitted", "grab rail", "neighbour", "01632"} {
		if strings.Contains(logs, s) {
			t.Errorf("log holds %q:\n%s", s, logs)
		}
	}
	for _, k := range []string{"collection", "amendment"} {
		if !strings.Contains(logs, `"kind":"`+k+`"`) {
			t.Errorf("kind %s not logged:\n%s", k, logs)
		}
	}
}

// TestFHIRKindsNotAllowed: an NHS partner whose inbound.messages leaves out
// a kind is refused it with 403 forbidden; nothing is stored and no event
// reaches the use case. An amendment is known as one only once its
// ServiceRequest is found, and is refused then.
func TestFHIRKindsNotAllowed(t *testing.T) {
	referralsOnly := auth.NewPartner(auth.PartnerConfig{ID: "nhs-trust-a", Kind: "nhs", Mode: auth.ModeJWT,
		Messages: []string{"referral"}, ODSCodes: []string{"Y9Z01", "Y9Z02", "Y9Z03"}})
	cancelOnly := auth.NewPartner(auth.PartnerConfig{ID: "nhs-trust-a", Kind: "nhs", Mode: auth.ModeJWT,
		Messages: []string{"cancellation"}, ODSCodes: []string{"Y9Z01", "Y9Z02", "Y9Z03"}})
	for _, c := range []struct {
		name, file string
		partner    auth.Partner
		want, at   string
	}{
		{"cancellation", "cancellation-revoked.json", referralsOnly, "may not send cancellation messages", "Bundle.entry[1].resource"},
		{"collection", "collection-1-line.json", referralsOnly, "may not send collection request messages", "Bundle.entry[1].resource"},
		{"amendment", "amendment-1-line.json", referralsOnly, "may not send amendment messages", "Bundle.entry[1].resource"},
		{"referral", "referral-transaction.json", cancelOnly, "may not send referral messages", "Bundle.entry[0].resource"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := newMemStore()
			st.put(t, "referral-1-line.json", "ref-1", model.StatusDelivered)
			e := newEventEnv(t, fhiradapter.Config{}, st)
			e.partner = c.partner
			path := "/fhir/$process-message"
			if c.file == "referral-transaction.json" {
				path = "/fhir"
			}
			w := e.do("POST", path, read(t, c.file))
			o := wantOutcome(t, w, http.StatusForbidden, "forbidden", c.at)
			if len(o.Issue) == 0 || !strings.Contains(o.Issue[0].Diagnostics, c.want) {
				t.Errorf("diagnostics %+v, want %q", o.Issue, c.want)
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			if len(st.events) != 0 || len(st.keys) != 0 || len(st.records) != 1 {
				t.Errorf("stored %d events, %d keys, %d referrals", len(st.events), len(st.keys), len(st.records))
			}
		})
	}
}

// An amendment without a permission keeps the one an operator recorded
// with the referral, so its description does not name the permission as
// changed; one that brings a Consent of its own does.
func TestAnAmendmentKeepsARecordedPermission(t *testing.T) {
	for name, c := range map[string]struct {
		recorded *model.Permission
		want     string
	}{
		"recorded by an operator": {&model.Permission{Given: true, Source: model.PermissionSourceOperator, Recorded: "2026-12-07"}, "amended: priority, equipment"},
		"read from a Consent":     {&model.Permission{Given: true, Source: model.PermissionSourceFHIRConsent}, "amended: priority, equipment, permission"},
	} {
		t.Run(name, func(t *testing.T) {
			st := newMemStore()
			st.put(t, "referral-1-line.json", referralID, model.StatusOrdered)
			st.records[referralID].Referral.Permission = c.recorded
			e := newEventEnv(t, fhiradapter.Config{}, st)
			if w := e.do("POST", "/fhir/$process-message", read(t, "amendment-1-line.json")); w.Code != http.StatusOK {
				t.Fatalf("amendment: %d %s", w.Code, w.Body)
			}
			events, _ := st.accepted()
			if len(events) != 1 || events[0].Event.Description != c.want {
				t.Fatalf("events %+v, want the description %q", events, c.want)
			}
		})
	}
}
