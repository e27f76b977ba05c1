package provider_test

import (
	"context"
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

	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
)

// fakeEvents stands in for *intake.Events: it records what it is given and
// answers like the use case, with err when set. A repeated key gets the
// first stored answer.
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

func (f *fakeEvents) last(t *testing.T) intake.EventSubmission {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.subs) == 0 {
		t.Fatal("nothing reached the use case")
	}
	return f.subs[len(f.subs)-1]
}

var now = time.Date(2025, 3, 12, 12, 0, 0, 0, time.UTC)

func newEventsHandler(t *testing.T, acc provider.EventAcceptor, logs io.Writer) *provider.EventsHandler {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	h, err := provider.NewEventsHandler(provider.EventsConfig{PartnerID: "provider", MaxBodyBytes: 4096, Clock: func() time.Time { return now }},
		acc, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// theProvider is the authenticated partner the tests send as, with the
// provider's default message kinds.
var theProvider = auth.NewPartner(auth.PartnerConfig{ID: "provider", Kind: "provider", Mode: auth.ModeHMAC,
	Messages: []string{"order-status", "safeguarding", "equipment-issue", "complaint-reply"}})

func sendEvent(t *testing.T, h http.Handler, body string, header map[string]string) (*http.Response, partnersim.ErrorBody, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, provider.EventsPath, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	req = req.WithContext(auth.WithPartner(req.Context(), theProvider))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	resp := w.Result()
	raw, _ := io.ReadAll(resp.Body)
	var eb partnersim.ErrorBody
	_ = json.Unmarshal(raw, &eb)
	return resp, eb, string(raw)
}

func event(typ, extra string) string {
	return fmt.Sprintf(`{"eventId":"pe-1","type":%q,"orderReference":"ORD-000123","occurredAt":"2025-03-12T11:05:00+00:00"%s}`, typ, extra)
}

func TestProviderEventsBecomeSubmissions(t *testing.T) {
	occurred := time.Date(2025, 3, 12, 11, 5, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		body string
		want model.Event
		find intake.Lookup
	}{
		{"accepted", event("order.accepted", ""), model.Event{Kind: model.KindOrderStatus, Status: model.StatusAccepted}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"scheduled", event("order.scheduled", `,"scheduledDate":"2025-03-14"`), model.Event{Kind: model.KindOrderStatus, Status: model.StatusScheduled, ScheduledDate: "2025-03-14"}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"out for delivery", event("order.out-for-delivery", ""), model.Event{Kind: model.KindOrderStatus, Status: model.StatusOutForDelivery}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"delivered", event("order.delivered", ""), model.Event{Kind: model.KindOrderStatus, Status: model.StatusDelivered}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"installed", event("order.installed", ""), model.Event{Kind: model.KindOrderStatus, Status: model.StatusInstalled}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"failed delivery", event("order.failed-delivery", `,"reason":{"code":"no-access","text":"no answer at the door"}`),
			model.Event{Kind: model.KindOrderStatus, Status: model.StatusFailedDelivery, Reason: model.Coded{Code: "no-access", Display: "no answer at the door"}}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"collection requested", event("order.collection-requested", `,"scheduledDate":"2025-04-01","reason":{"code":"no-longer-needed"}`),
			model.Event{Kind: model.KindOrderStatus, Status: model.StatusCollectionRequested, ScheduledDate: "2025-04-01", Reason: model.Coded{Code: "no-longer-needed"}}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"collected", event("order.collected", ""), model.Event{Kind: model.KindOrderStatus, Status: model.StatusCollected}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"cancelled", event("order.cancelled", `,"reason":{"code":"duplicate"}`), model.Event{Kind: model.KindOrderStatus, Status: model.StatusCancelled, Reason: model.Coded{Code: "duplicate"}}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"equipment issue", event("equipment.issue", `,"issueType":"unsafe","description":"Bed rail bracket cracked"`),
			model.Event{Kind: model.KindEquipmentIssue, Reason: model.Coded{Code: "unsafe"}, Description: "Bed rail bracket cracked"}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"safeguarding", event("safeguarding.concern", `,"description":"No heating and little food","category":"self-neglect"`),
			model.Event{Kind: model.KindSafeguarding, Reason: model.Coded{Code: "self-neglect"}, Description: "No heating and little food"}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"safeguarding without category", event("safeguarding.concern", `,"description":"Frightened of a visitor"`),
			model.Event{Kind: model.KindSafeguarding, Description: "Frightened of a visitor"}, intake.Lookup{OrderReference: "ORD-000123"}},
		{"complaint reply", event("complaint.reply", `,"complaintReference":"COMP-000017","reply":"We apologise for the delay."`),
			model.Event{Kind: model.KindComplaintReply, Complaint: &model.Complaint{Reference: "COMP-000017", Reply: "We apologise for the delay."}}, intake.Lookup{ComplaintReference: "COMP-000017"}},
		{"complaint reply without order", `{"eventId":"pe-1","type":"complaint.reply","complaintReference":"COMP-000017","reply":"Sorry.","occurredAt":"2025-03-12T11:05:00Z"}`,
			model.Event{Kind: model.KindComplaintReply, Complaint: &model.Complaint{Reference: "COMP-000017", Reply: "Sorry."}}, intake.Lookup{ComplaintReference: "COMP-000017"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := &fakeEvents{}
			resp, _, raw := sendEvent(t, newEventsHandler(t, acc, nil), tc.body, nil)
			if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("answer = %d %s", resp.StatusCode, raw)
			}
			var got map[string]string
			if err := json.Unmarshal([]byte(raw), &got); err != nil || got["eventId"] != "pe-1" || got["referralId"] != "ref-1" || got["status"] != "accepted" {
				t.Errorf("answer body = %s", raw)
			}
			sub := acc.last(t)
			want := tc.want
			want.From, want.FromEventID, want.OccurredAt, want.ReceivedAt = "provider", "pe-1", occurred, now
			gotEv, _ := json.Marshal(sub.Event)
			wantEv, _ := json.Marshal(want)
			if string(gotEv) != string(wantEv) {
				t.Errorf("event =\n%s\nwant\n%s", gotEv, wantEv)
			}
			if sub.Find != tc.find {
				t.Errorf("find = %+v, want %+v", sub.Find, tc.find)
			}
			if len(sub.Keys) != 1 || sub.Keys[0] != "provider-event:provider:pe-1" {
				t.Errorf("keys = %v", sub.Keys)
			}
			if sub.Sender.Partner != "provider" || sub.Sender.Kind != intake.SenderProvider {
				t.Errorf("sender %+v, want the provider", sub.Sender)
			}
			if !strings.Contains(string(sub.Response.Body), intake.ReferralIDPlaceholder) || sub.Response.Status != http.StatusAccepted {
				t.Errorf("response to store = %d %s", sub.Response.Status, sub.Response.Body)
			}
		})
	}
}

func TestProviderEventsRefusals(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		header  map[string]string
		err     error
		status  int
		code    string
		field   string // a problem must name it
		reached bool   // the use case was asked
	}{
		{"not JSON", `{"eventId":`, nil, nil, 400, "invalid-json", "", false},
		{"array", `[]`, nil, nil, 400, "invalid-json", "", false},
		{"two values", event("order.delivered", "") + "{}", nil, nil, 400, "invalid-json", "", false},
		{"unknown member", event("order.delivered", `,"driverName":"x"`), nil, nil, 400, "invalid-json", "", false},
		{"wrong type", `{"eventId":7}`, nil, nil, 400, "invalid-json", "", false},
		{"no event id", `{"type":"order.delivered","orderReference":"ORD-1","occurredAt":"2025-03-12T11:05:00Z"}`, nil, nil, 400, "invalid-event", "eventId", false},
		{"event id of free text", strings.Replace(event("order.delivered", ""), `"pe-1"`, `"an event"`, 1), nil, nil, 400, "invalid-event", "eventId", false},
		{"unknown type", event("order.lost", ""), nil, nil, 400, "invalid-event", "type", false},
		{"no order reference", `{"eventId":"pe-1","type":"order.delivered","occurredAt":"2025-03-12T11:05:00Z"}`, nil, nil, 400, "invalid-event", "orderReference", false},
		{"no time", `{"eventId":"pe-1","type":"order.delivered","orderReference":"ORD-1"}`, nil, nil, 400, "invalid-event", "occurredAt", false},
		{"time without zone", strings.Replace(event("order.delivered", ""), "+00:00", "", 1), nil, nil, 400, "invalid-event", "occurredAt", false},
		{"time in the future", strings.Replace(event("order.delivered", ""), "2025-03-12T11", "2025-03-13T11", 1), nil, nil, 400, "invalid-event", "occurredAt", false},
		{"scheduled without date", event("order.scheduled", ""), nil, nil, 400, "invalid-event", "scheduledDate", false},
		{"scheduled date not a date", event("order.scheduled", `,"scheduledDate":"14/03/2025"`), nil, nil, 400, "invalid-event", "scheduledDate", false},
		{"failed delivery without reason", event("order.failed-delivery", ""), nil, nil, 400, "invalid-event", "reason", false},
		{"failed delivery without reason code", event("order.failed-delivery", `,"reason":{"text":"nobody in"}`), nil, nil, 400, "invalid-event", "reason.code", false},
		{"reason code not a code", event("order.failed-delivery", `,"reason":{"code":"No Access"}`), nil, nil, 400, "invalid-event", "reason.code", false},
		{"member of another type", event("order.delivered", `,"reply":"x"`), nil, nil, 400, "invalid-event", "reply", false},
		{"issue without type", event("equipment.issue", ""), nil, nil, 400, "invalid-event", "issueType", false},
		{"unknown issue type", event("equipment.issue", `,"issueType":"ugly"`), nil, nil, 400, "invalid-event", "issueType", false},
		{"concern without description", event("safeguarding.concern", ""), nil, nil, 400, "invalid-event", "description", false},
		{"blank description", event("safeguarding.concern", `,"description":"   "`), nil, nil, 400, "invalid-event", "description", false},
		{"reply without complaint", event("complaint.reply", `,"reply":"x"`), nil, nil, 400, "invalid-event", "complaintReference", false},
		{"reply without reply", event("complaint.reply", `,"complaintReference":"COMP-1"`), nil, nil, 400, "invalid-event", "reply", false},
		// A repeated member name: encoding/json keeps the last value, a
		// gateway may have checked the first.
		{"repeated member", event("order.delivered", `,"type":"order.cancelled"`), nil, nil, 400, "invalid-event", "type", false},
		{"repeated member in another case", event("order.delivered", `,"OrderReference":"ORD-000999"`), nil, nil, 400, "invalid-event", "OrderReference", false},
		{"repeated nested member", event("order.failed-delivery", `,"reason":{"code":"no-access","text":"nobody in","code":"refused"}`), nil, nil, 400, "invalid-event", "reason.code", false},
		{"not JSON content type", event("order.delivered", ""), map[string]string{"Content-Type": "text/plain"}, nil, 415, "unsupported-media-type", "", false},
		{"too large", event("equipment.issue", `,"issueType":"unsafe","description":"`+strings.Repeat("x", 5000)+`"`), nil, nil, 413, "too-large", "", false},
		{"unknown order", event("order.delivered", ""), nil, fmt.Errorf("intake: %w (order ORD-000123)", intake.ErrUnknownReferral), 404, "unknown-referral", "orderReference", true},
		{"unknown complaint", event("complaint.reply", `,"complaintReference":"COMP-9","reply":"x"`), nil, intake.ErrUnknownReferral, 404, "unknown-referral", "complaintReference", true},
		{"collected before delivered", event("order.collected", ""), nil, fmt.Errorf("%w: an order cannot move from %q to %q", intake.ErrImpossibleTransition, "ordered", "collected"), 409, "impossible-transition", "", true},
		{"changed meanwhile", event("order.delivered", ""), nil, fmt.Errorf("store: %w", intake.ErrConflict), 409, "conflict", "", true},
		{"another provider's order", event("order.delivered", ""), nil, fmt.Errorf("%w: the order was not sent to provider", intake.ErrNotYours), 403, "not-yours", "", true},
		{"store down", event("order.delivered", ""), nil, errors.New("database is locked"), 503, "unavailable", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := &fakeEvents{err: tc.err}
			logs := &syncBuffer{}
			resp, eb, raw := sendEvent(t, newEventsHandler(t, acc, logs), tc.body, tc.header)
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
			for _, v := range []string{"no answer", "14/03/2025", "ORD-000123", "database is locked", "driverName\":\"x"} {
				if strings.Contains(raw, v) {
					t.Errorf("the answer quotes %q: %s", v, raw)
				}
			}
			if strings.Contains(logs.String(), "heating") {
				t.Errorf("logs hold the description: %s", logs)
			}
		})
	}
}

func TestProviderEventResentGetsTheFirstAnswer(t *testing.T) {
	acc := &fakeEvents{}
	h := newEventsHandler(t, acc, nil)
	first, _, raw1 := sendEvent(t, h, event("order.delivered", ""), nil)
	// The same event id, even with a different body, is the same event.
	again, _, raw2 := sendEvent(t, h, event("order.installed", ""), nil)
	if first.StatusCode != 202 || again.StatusCode != 202 || raw1 != raw2 {
		t.Fatalf("first %d %s, again %d %s", first.StatusCode, raw1, again.StatusCode, raw2)
	}
}

func TestProviderEventsMethod(t *testing.T) {
	h := newEventsHandler(t, &fakeEvents{}, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, provider.EventsPath, nil))
	if w.Code != 405 || w.Header().Get("Allow") != "POST" {
		t.Errorf("GET = %d, Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestNewEventsHandlerChecksItsConfig(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for name, tc := range map[string]struct {
		cfg provider.EventsConfig
		acc provider.EventAcceptor
		log *slog.Logger
	}{
		"no partner":    {provider.EventsConfig{}, &fakeEvents{}, log},
		"negative size": {provider.EventsConfig{PartnerID: "p", MaxBodyBytes: -1}, &fakeEvents{}, log},
		"no acceptor":   {provider.EventsConfig{PartnerID: "p"}, nil, log},
		"no logger":     {provider.EventsConfig{PartnerID: "p"}, &fakeEvents{}, nil},
	} {
		if _, err := provider.NewEventsHandler(tc.cfg, tc.acc, tc.log); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestProviderEventKindsNotAllowed: a provider whose inbound.messages
// leaves out a kind is refused events of that kind with 403, before the
// use case (and so the store) is asked anything; without an authenticated
// partner every event is refused.
func TestProviderEventKindsNotAllowed(t *testing.T) {
	statusOnly := auth.NewPartner(auth.PartnerConfig{ID: "provider", Kind: "provider", Mode: auth.ModeHMAC, Messages: []string{"order-status"}})
	for _, tc := range []struct {
		name    string
		partner *auth.Partner
		body    string
	}{
		{"safeguarding from a provider limited to order status", &statusOnly, event("safeguarding.concern", `,"description":"No heating and little food","category":"self-neglect"`)},
		{"equipment issue from a provider limited to order status", &statusOnly, event("equipment.issue", `,"issueType":"unsafe"`)},
		{"order status without an authenticated partner", nil, event("order.delivered", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			acc := &fakeEvents{}
			h := newEventsHandler(t, acc, nil)
			req := httptest.NewRequest(http.MethodPost, provider.EventsPath, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.partner != nil {
				req = req.WithContext(auth.WithPartner(req.Context(), *tc.partner))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			var eb partnersim.ErrorBody
			_ = json.Unmarshal(w.Body.Bytes(), &eb)
			if w.Code != http.StatusForbidden || eb.Code != "kind-not-allowed" {
				t.Errorf("status %d %s, want 403 kind-not-allowed", w.Code, w.Body)
			}
			if len(acc.subs) != 0 {
				t.Errorf("the use case was asked %d times", len(acc.subs))
			}
		})
	}
	// The same provider may still report on its orders.
	acc := &fakeEvents{}
	h := newEventsHandler(t, acc, nil)
	req := httptest.NewRequest(http.MethodPost, provider.EventsPath, strings.NewReader(event("order.delivered", "")))
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req.WithContext(auth.WithPartner(req.Context(), statusOnly)))
	if w.Code != http.StatusAccepted || len(acc.subs) != 1 {
		t.Errorf("order status: %d %s", w.Code, w.Body)
	}
}

// TestImpossibleTransitionNamesTheAllowedNextStatuses: a provider told 409
// learns where the order stands and what it may report next, and nothing
// else (no reference, no text from the event).
func TestImpossibleTransitionNamesTheAllowedNextStatuses(t *testing.T) {
	for _, c := range []struct {
		from, to  model.OrderStatus
		want, not []string
	}{
		{model.StatusDelivered, model.StatusAccepted, []string{"delivered", "allowed next: installed, collection-requested, collected"}, []string{"ORD-000123"}},
		{model.StatusCollected, model.StatusDelivered, []string{"collected", "final"}, []string{"allowed next"}},
	} {
		err := fmt.Errorf("intake: %w: %w (order ORD-000123)", intake.ErrImpossibleTransition, model.CanMove(c.from, c.to))
		resp, eb, raw := sendEvent(t, newEventsHandler(t, &fakeEvents{err: err}, nil), event("order."+string(c.to), ""), nil)
		if resp.StatusCode != 409 || eb.Code != "impossible-transition" {
			t.Fatalf("%s -> %s: %d %s", c.from, c.to, resp.StatusCode, raw)
		}
		for _, w := range c.want {
			if !strings.Contains(eb.Message, w) {
				t.Errorf("%s -> %s: message %q lacks %q", c.from, c.to, eb.Message, w)
			}
		}
		for _, n := range c.not {
			if strings.Contains(raw, n) {
				t.Errorf("%s -> %s: answer holds %q: %s", c.from, c.to, n, raw)
			}
		}
	}
}
