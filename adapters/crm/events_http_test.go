package crm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iceshub/iceshub/adapters/crm"
	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
)

// fakeEvents stands in for *intake.Events (see the provider's tests).
type fakeEvents struct {
	mu     sync.Mutex
	err    error
	subs   []intake.EventSubmission
	stored map[string]intake.Response
}

func (f *fakeEvents) AcceptEvent(_ context.Context, sub intake.EventSubmission) (intake.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs = append(f.subs, sub)
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
	r := sub.Response
	r.Body = []byte(strings.ReplaceAll(string(r.Body), intake.ReferralIDPlaceholder, "ref-1"))
	for _, k := range sub.Keys {
		f.stored[k] = r
	}
	return intake.Outcome{Response: r}, nil
}

var now = time.Date(2025, 3, 12, 12, 0, 0, 0, time.UTC)

func newEventsHandler(t *testing.T, acc crm.EventAcceptor) *crm.EventsHandler {
	t.Helper()
	h, err := crm.NewEventsHandler(crm.EventsConfig{Councils: []string{"council-cwac", "council-ceast"}, MaxBodyBytes: 4096,
		Clock: func() time.Time { return now }}, acc, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// councilPartner is the authenticated council the tests send as, with a
// council's default message kinds.
func councilPartner(id string) auth.Partner {
	return auth.NewPartner(auth.PartnerConfig{ID: id, Kind: "council", Mode: auth.ModeHMAC, Messages: []string{"complaint", "collection"}})
}

// sendCouncilEvent posts body through a ServeMux with EventsPattern, as the
// hub mounts it, unless direct.
func sendCouncilEvent(t *testing.T, h http.Handler, council, body string, header map[string]string, direct bool) (*http.Response, partnersim.ErrorBody, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/crm/"+council+"/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req = req.WithContext(auth.WithPartner(req.Context(), councilPartner(council)))
	w := httptest.NewRecorder()
	if direct {
		h.ServeHTTP(w, req)
	} else {
		mux := http.NewServeMux()
		mux.Handle(crm.EventsPattern, h)
		mux.ServeHTTP(w, req)
	}
	resp := w.Result()
	raw, _ := io.ReadAll(resp.Body)
	var eb partnersim.ErrorBody
	_ = json.Unmarshal(raw, &eb)
	return resp, eb, string(raw)
}

const (
	complaintByCase = `{"event":"complaint.created","timestamp":"2025-03-12T11:05:00Z","data":{"eventId":"crm-88",
		"complaintReference":"COMP-000017","caseReference":"CASE-000045","category":"late-delivery",
		"summary":"Bed promised for Monday arrived on Thursday","contactAllowed":true,
		"contact":{"phone":"01632 960123","email":"complainant@example.org"}}}`
	complaintByOrder = `{"event":"complaint.created","timestamp":"2025-03-12T11:05:00Z","data":{
		"complaintReference":"COMP-000018","orderReference":"ORD-000123","summary":"Driver was rude"}}`
	collection = `{"event":"collection.requested","timestamp":"2025-03-12T11:05:00+01:00","data":{"eventId":"crm-89",
		"orderReference":"ORD-000123","reason":"died","note":"Family ask for collection after the funeral"}}`
)

func TestCouncilEventsBecomeSubmissions(t *testing.T) {
	hash := sha256.Sum256([]byte(complaintByOrder))
	for _, tc := range []struct {
		name    string
		body    string
		direct  bool
		want    model.Event
		find    intake.Lookup
		eventID string
	}{
		{"complaint by case reference", complaintByCase, false, model.Event{Kind: model.KindComplaint, OccurredAt: time.Date(2025, 3, 12, 11, 5, 0, 0, time.UTC),
			Complaint: &model.Complaint{Reference: "COMP-000017", Council: "council-cwac", Category: "late-delivery", Summary: "Bed promised for Monday arrived on Thursday",
				ContactAllowed: true, Contact: []model.ContactPoint{{System: "phone", Value: "01632 960123"}, {System: "email", Value: "complainant@example.org"}}}},
			intake.Lookup{CaseReference: "CASE-000045", Council: "council-cwac"}, "crm-88"},
		{"complaint by order reference, no event id", complaintByOrder, true, model.Event{Kind: model.KindComplaint, OccurredAt: time.Date(2025, 3, 12, 11, 5, 0, 0, time.UTC),
			Complaint: &model.Complaint{Reference: "COMP-000018", Council: "council-cwac", Summary: "Driver was rude"}},
			intake.Lookup{OrderReference: "ORD-000123"}, hex.EncodeToString(hash[:])},
		{"collection", collection, false, model.Event{Kind: model.KindCollection, Status: model.StatusCollectionRequested, OccurredAt: time.Date(2025, 3, 12, 10, 5, 0, 0, time.UTC),
			Reason: model.Coded{Code: "died"}, Description: "Family ask for collection after the funeral"},
			intake.Lookup{OrderReference: "ORD-000123"}, "crm-89"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := &fakeEvents{}
			resp, _, raw := sendCouncilEvent(t, newEventsHandler(t, acc), "council-cwac", tc.body, nil, tc.direct)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("answer = %d %s", resp.StatusCode, raw)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(raw), &got); err != nil || got["eventId"] != tc.eventID || got["referralId"] != "ref-1" || got["status"] != "accepted" {
				t.Errorf("answer body = %s", raw)
			}
			sub := acc.subs[0]
			want := tc.want
			want.From, want.FromEventID, want.ReceivedAt = "council-cwac", tc.eventID, now
			gotEv, _ := json.Marshal(sub.Event)
			wantEv, _ := json.Marshal(want)
			if string(gotEv) != string(wantEv) {
				t.Errorf("event =\n%s\nwant\n%s", gotEv, wantEv)
			}
			if sub.Find != tc.find {
				t.Errorf("find = %+v, want %+v", sub.Find, tc.find)
			}
			if len(sub.Keys) != 1 || sub.Keys[0] != "crm-event:council-cwac:"+tc.eventID {
				t.Errorf("keys = %v", sub.Keys)
			}
			if sub.Sender.Partner != "council-cwac" || sub.Sender.Kind != intake.SenderCouncil {
				t.Errorf("sender %+v, want council-cwac", sub.Sender)
			}
		})
	}
}

func TestCouncilEventsRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		council string
		body    string
		header  map[string]string
		err     error
		status  int
		code    string
		field   string
		reached bool
	}{
		{"unknown council", "council-mars", collection, nil, nil, 404, "unknown-council", "", false},
		{"not JSON", "council-cwac", `{"event":`, nil, nil, 400, "invalid-json", "", false},
		{"unknown member", "council-cwac", strings.Replace(collection, `"note"`, `"officer":"Officervalue","note"`, 1), nil, nil, 400, "invalid-json", "", false},
		{"member of the other event", "council-cwac", strings.Replace(collection, `"note"`, `"summary":"x","note"`, 1), nil, nil, 400, "invalid-json", "", false},
		{"unknown event", "council-cwac", strings.Replace(collection, "collection.requested", "case.closed", 1), nil, nil, 400, "invalid-event", "event", false},
		{"no data", "council-cwac", `{"event":"collection.requested","timestamp":"2025-03-12T11:05:00Z"}`, nil, nil, 400, "invalid-event", "data", false},
		{"no timestamp", "council-cwac", strings.Replace(collection, `"timestamp":"2025-03-12T11:05:00+01:00",`, "", 1), nil, nil, 400, "invalid-event", "timestamp", false},
		{"no reference", "council-cwac", strings.Replace(collection, `"orderReference":"ORD-000123",`, "", 1), nil, nil, 400, "invalid-event", "data.orderReference", false},
		{"unknown collection reason", "council-cwac", strings.Replace(collection, `"died"`, `"bored"`, 1), nil, nil, 400, "invalid-event", "data.reason", false},
		{"complaint without summary", "council-cwac", strings.Replace(complaintByOrder, `"summary":"Driver was rude"`, `"category":"x"`, 1), nil, nil, 400, "invalid-event", "data.summary", false},
		{"complaint without reference", "council-cwac", strings.Replace(complaintByOrder, `"complaintReference":"COMP-000018",`, "", 1), nil, nil, 400, "invalid-event", "data.complaintReference", false},
		{"contact not allowed", "council-cwac", strings.Replace(complaintByCase, `"contactAllowed":true`, `"contactAllowed":false`, 1), nil, nil, 400, "invalid-event", "data.contact", false},
		{"bad email", "council-cwac", strings.Replace(complaintByCase, "complainant@example.org", "not an email", 1), nil, nil, 400, "invalid-event", "data.contact.email", false},
		// A repeated member name: encoding/json keeps the last value, a
		// gateway may have checked the first.
		{"repeated member", "council-cwac", strings.Replace(collection, `"reason":"died"`, `"reason":"died","orderReference":"ORD-000999"`, 1), nil, nil, 400, "invalid-event", "data.orderReference", false},
		{"repeated envelope member in another case", "council-cwac", strings.Replace(collection, `"timestamp"`, `"Event":"complaint.created","timestamp"`, 1), nil, nil, 400, "invalid-event", "Event", false},
		{"repeated member in a nested object", "council-cwac", strings.Replace(complaintByCase, `"email":"complainant@example.org"`, `"email":"complainant@example.org","phone":"01632 960999"`, 1), nil, nil, 400, "invalid-event", "data.contact.phone", false},
		{"not JSON content type", "council-cwac", collection, map[string]string{"Content-Type": "text/plain"}, nil, 415, "unsupported-media-type", "", false},
		{"too large", "council-cwac", strings.Replace(collection, "Family", strings.Repeat("x", 5000), 1), nil, nil, 413, "too-large", "", false},
		{"unknown order", "council-cwac", collection, nil, fmt.Errorf("%w (order ORD-000123)", intake.ErrUnknownReferral), 404, "unknown-referral", "data.orderReference", true},
		{"unknown case", "council-cwac", complaintByCase, nil, intake.ErrUnknownReferral, 404, "unknown-referral", "data.caseReference", true},
		{"collection before delivery", "council-cwac", collection, nil, fmt.Errorf("%w: no", intake.ErrImpossibleTransition), 409, "impossible-transition", "", true},
		{"changed meanwhile", "council-cwac", collection, nil, intake.ErrConflict, 409, "conflict", "", true},
		{"another council's person", "council-ceast", collection, nil, fmt.Errorf("%w: the person lives outside council-ceast's area", intake.ErrNotYours), 403, "not-yours", "", true},
		{"store down", "council-cwac", collection, nil, errors.New("disk full"), 503, "unavailable", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := &fakeEvents{err: tc.err}
			resp, eb, raw := sendCouncilEvent(t, newEventsHandler(t, acc), tc.council, tc.body, tc.header, false)
			if resp.StatusCode != tc.status || eb.Code != tc.code {
				t.Fatalf("answer = %d %s, want %d %s", resp.StatusCode, raw, tc.status, tc.code)
			}
			if tc.field != "" {
				named := false
				for _, p := range eb.Problems {
					named = named || p.Field == tc.field
				}
				if !named {
					t.Errorf("no problem names %s: %s", tc.field, raw)
				}
			}
			if tc.status == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			if reached := len(acc.subs) > 0; reached != tc.reached {
				t.Errorf("use case reached = %v, want %v", reached, tc.reached)
			}
			for _, v := range []string{"not an email", "bored", "01632", "disk full", "Officervalue"} {
				if strings.Contains(raw, v) {
					t.Errorf("the answer quotes %q: %s", v, raw)
				}
			}
		})
	}
}

func TestCouncilEventResentGetsTheFirstAnswer(t *testing.T) {
	acc := &fakeEvents{}
	h := newEventsHandler(t, acc)
	// Without an eventId the body identifies the event.
	first, _, raw1 := sendCouncilEvent(t, h, "council-cwac", complaintByOrder, nil, false)
	again, _, raw2 := sendCouncilEvent(t, h, "council-cwac", complaintByOrder, nil, false)
	if first.StatusCode != 202 || again.StatusCode != 202 || raw1 != raw2 {
		t.Fatalf("first %d %s, again %d %s", first.StatusCode, raw1, again.StatusCode, raw2)
	}
	if acc.subs[0].Keys[0] != acc.subs[1].Keys[0] {
		t.Errorf("keys differ: %v %v", acc.subs[0].Keys, acc.subs[1].Keys)
	}
	// The same body from another council is another event.
	sendCouncilEvent(t, h, "council-ceast", complaintByOrder, nil, false)
	if acc.subs[2].Keys[0] == acc.subs[0].Keys[0] {
		t.Error("two councils share a key")
	}
}

func TestCouncilEventsPathWithoutPattern(t *testing.T) {
	h := newEventsHandler(t, &fakeEvents{})
	for path, want := range map[string]int{"/crm/council-cwac/events": 202, "/crm/council-cwac/x/events": 404, "/crm/events": 404, "/other": 404} {
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(collection))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(auth.WithPartner(req.Context(), councilPartner("council-cwac")))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}

func TestNewCouncilEventsHandlerChecksItsConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, tc := range map[string]struct {
		cfg crm.EventsConfig
		acc crm.EventAcceptor
		log *slog.Logger
	}{
		"no councils":   {crm.EventsConfig{}, &fakeEvents{}, log},
		"empty council": {crm.EventsConfig{Councils: []string{""}}, &fakeEvents{}, log},
		"twice":         {crm.EventsConfig{Councils: []string{"a", "a"}}, &fakeEvents{}, log},
		"negative size": {crm.EventsConfig{Councils: []string{"a"}, MaxBodyBytes: -1}, &fakeEvents{}, log},
		"no acceptor":   {crm.EventsConfig{Councils: []string{"a"}}, nil, log},
		"no logger":     {crm.EventsConfig{Councils: []string{"a"}}, &fakeEvents{}, nil},
	} {
		if _, err := crm.NewEventsHandler(tc.cfg, tc.acc, tc.log); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCouncilEventKindsNotAllowed: a council whose inbound.messages leaves
// out a kind is refused it with 403 before the use case is asked.
func TestCouncilEventKindsNotAllowed(t *testing.T) {
	complaintsOnly := auth.NewPartner(auth.PartnerConfig{ID: "council-cwac", Kind: "council", Mode: auth.ModeHMAC, Messages: []string{"complaint"}})
	acc := &fakeEvents{}
	h := newEventsHandler(t, acc)
	req := httptest.NewRequest(http.MethodPost, "/crm/council-cwac/events", strings.NewReader(collection))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req.WithContext(auth.WithPartner(req.Context(), complaintsOnly)))
	var eb partnersim.ErrorBody
	_ = json.Unmarshal(w.Body.Bytes(), &eb)
	if w.Code != http.StatusForbidden || eb.Code != "kind-not-allowed" || len(acc.subs) != 0 {
		t.Errorf("collection from a council limited to complaints: %d %s, %d submissions", w.Code, w.Body, len(acc.subs))
	}
	req = httptest.NewRequest(http.MethodPost, "/crm/council-cwac/events", strings.NewReader(complaintByOrder))
	req.Header.Set("Content-Type", "application/json")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, req.WithContext(auth.WithPartner(req.Context(), complaintsOnly)))
	if w.Code != http.StatusAccepted || len(acc.subs) != 1 {
		t.Errorf("complaint: %d %s", w.Code, w.Body)
	}
}
