package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
)

// The return journey: what happens to two referrals after they are
// ordered, one step per flow of the service (F2 to F8), played by the demo
// and checked, payload by payload, by TestReturnFlowsEndToEnd. Referral A
// (referral-1-line.json, Chester) is amended and then cancelled by the NHS;
// referral B (referral-3-lines.json, Crewe) is scheduled, fails delivery,
// is delivered, has an equipment issue and a safeguarding concern, a
// complaint and its reply, and finally a collection.

// Step is one step of the return journey.
type Step struct {
	// Slug names the step's golden file (testdata/e2e/<slug>.json).
	Slug string
	// Flow and What say what the step is, for people.
	Flow, What string
	// send makes the step's request to the hub.
	send func(ctx context.Context, j *Journey) (int, []byte, error)
	// Expect is how many requests each partner receives because of it.
	Expect map[string]int
}

// Journey is the state of a return journey in progress.
type Journey struct {
	base string
	sims *Partners
	// fixtures is the directory of the FHIR fixtures.
	fixtures string
	// A and B are the hub's ids of the two referrals; OrderB the
	// provider's order reference of B and councilB the council of its area.
	A, B     string
	OrderB   string
	councilB string
	// Booked is the delivery date the provider books for B
	// (BookingDate of the day the journey starts).
	Booked string
}

// BookingDate is the delivery date the journey's provider books: a week
// after the day it runs, so that the demo never books a date in the past.
func BookingDate(today time.Time) string {
	return today.AddDate(0, 0, 7).Format(time.DateOnly)
}

// bookedPlaceholder in a step's provider event stands for Journey.Booked.
const bookedPlaceholder = "{{booked}}"

// complaintRef is the council's reference of the complaint case in the
// journey.
const complaintRef = "COMP-2026-0042"

// Steps are the return journey's steps, in the order they are played.
func Steps() []Step {
	providerEvent := func(ev map[string]any) func(context.Context, *Journey) (int, []byte, error) {
		return func(ctx context.Context, j *Journey) (int, []byte, error) {
			ev["eventId"] = uuid.NewString()
			if ev["scheduledDate"] == bookedPlaceholder {
				ev["scheduledDate"] = j.Booked
			}
			ev["occurredAt"] = time.Now().UTC().Format(time.RFC3339)
			if _, ok := ev["orderReference"]; !ok && ev["type"] != "complaint.reply" {
				ev["orderReference"] = j.OrderB
			}
			return j.sims.PostWebhook(ctx, j.base+provider.EventsPath, "provider", ev)
		}
	}
	councilEvent := func(event string, data map[string]any) func(context.Context, *Journey) (int, []byte, error) {
		return func(ctx context.Context, j *Journey) (int, []byte, error) {
			data["orderReference"] = j.OrderB
			body := map[string]any{"event": event, "timestamp": time.Now().UTC().Format(time.RFC3339), "data": data}
			return j.sims.PostWebhook(ctx, j.base+"/crm/"+j.councilB+"/events", j.councilB, body)
		}
	}
	fhir := func(file string) func(context.Context, *Journey) (int, []byte, error) {
		return func(ctx context.Context, j *Journey) (int, []byte, error) {
			body, err := os.ReadFile(filepath.Join(j.fixtures, file))
			if err != nil {
				return 0, nil, err
			}
			return j.sims.PostBundle(ctx, j.base, body)
		}
	}
	return []Step{
		{Slug: "f2-amendment", Flow: "F2", What: "the NHS amends referral A (FHIR: the same ServiceRequest, changed)",
			send: fhir("amendment-1-line.json"), Expect: map[string]int{"provider": 1}},
		{Slug: "f2-cancellation", Flow: "F2", What: "the NHS cancels referral A (FHIR: ServiceRequest revoked); its Task becomes cancelled",
			send: fhir("cancellation-revoked.json"), Expect: map[string]int{"provider": 1, "council-cwac": 1, "nhs-trust": 1}},
		{Slug: "f3-scheduled", Flow: "F3", What: "the provider books delivery of B",
			send:   providerEvent(map[string]any{"type": "order.scheduled", "scheduledDate": bookedPlaceholder}),
			Expect: map[string]int{"nhs-trust": 1, "council-ceast": 1}},
		{Slug: "f3-failed-delivery", Flow: "F3", What: "delivery of B fails",
			send:   providerEvent(map[string]any{"type": "order.failed-delivery", "reason": map[string]any{"code": "no-access", "text": "No answer at the door"}}),
			Expect: map[string]int{"nhs-trust": 1, "council-ceast": 1}},
		{Slug: "f3-out-for-delivery", Flow: "F3", What: "B is out for delivery again",
			send:   providerEvent(map[string]any{"type": "order.out-for-delivery"}),
			Expect: map[string]int{"nhs-trust": 1, "council-ceast": 1}},
		{Slug: "f3-delivered", Flow: "F3", What: "B is delivered",
			send:   providerEvent(map[string]any{"type": "order.delivered"}),
			Expect: map[string]int{"nhs-trust": 1, "council-ceast": 1}},
		{Slug: "f5-equipment-issue", Flow: "F5", What: "the provider reports B's equipment unsafe (to the requester a Communication: the Task stays completed)",
			send:   providerEvent(map[string]any{"type": "equipment.issue", "issueType": "unsafe", "description": "Bed rail does not lock; taken out of use"}),
			Expect: map[string]int{"nhs-trust": 1, "council-ceast": 1}},
		{Slug: "f4-safeguarding", Flow: "F4", What: "the provider's driver raises a safeguarding concern about B's person",
			send:   providerEvent(map[string]any{"type": "safeguarding.concern", "category": "self-neglect", "description": "No food in the house and the heating off"}),
			Expect: map[string]int{"council-ceast": 1, "nhs-trust": 1}},
		{Slug: "f6-complaint", Flow: "F6", What: "the council raises a complaint about B's delivery",
			send: councilEvent("complaint.created", map[string]any{"complaintReference": complaintRef, "category": "timeliness",
				"summary": "Delivery missed twice without notice", "contactAllowed": true, "contact": map[string]any{"phone": "01632 960123"}}),
			Expect: map[string]int{"provider": 1}},
		{Slug: "f7-complaint-reply", Flow: "F7", What: "the provider replies to the complaint",
			send: func(ctx context.Context, j *Journey) (int, []byte, error) {
				// The council opened the complaint case itself.
				j.sims.Councils[j.councilB].KnowCase(complaintRef)
				return providerEvent(map[string]any{"type": "complaint.reply", "complaintReference": complaintRef,
					"reply": "Our van broke down; we have apologised and rebooked"})(ctx, j)
			},
			Expect: map[string]int{"council-ceast": 1}},
		{Slug: "f8-collection", Flow: "F8", What: "the council asks for B's equipment to be collected",
			send:   councilEvent("collection.requested", map[string]any{"reason": model.CollectionMoved, "note": "Moved to a care home"}),
			Expect: map[string]int{"provider": 1}},
	}
}

// StartJourney sends referrals A and B, waits until every route of each has
// an outcome, and learns B's order reference and council.
func StartJourney(ctx context.Context, h *hub.Hub, base, fixtures string, sims *Partners, within time.Duration) (*Journey, error) {
	j := &Journey{base: base, sims: sims, fixtures: fixtures, Booked: BookingDate(time.Now())}
	// One referral at a time, each delivered everywhere before the next is
	// sent: a partner's queue handles copies about different referrals
	// concurrently, and the partners' references (ORD-000001, ...) must
	// come out the same in every run.
	for _, f := range []struct {
		file string
		id   *string
	}{{"referral-1-line.json", &j.A}, {"referral-3-lines.json", &j.B}} {
		body, err := os.ReadFile(filepath.Join(fixtures, f.file))
		if err != nil {
			return nil, err
		}
		status, answer, err := sims.PostBundle(ctx, base, body)
		if err != nil {
			return nil, err
		}
		if *f.id = ReferralIDFrom(answer); status != http.StatusOK || *f.id == "" {
			return nil, fmt.Errorf("%s: the hub answered %d:\n%s", f.file, status, answer)
		}
		rec, err := WaitOrdered(ctx, h, *f.id, within)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.file, err)
		}
		j.OrderB, j.councilB = rec.Refs.OrderReference, rec.Refs.Council // B's, once B is in
	}
	return j, nil
}

// WaitOrdered waits until the provider, the council and the NHS endpoint
// have each given the referral their reference.
func WaitOrdered(ctx context.Context, h *hub.Hub, id string, within time.Duration) (intake.Record, error) {
	deadline := time.Now().Add(within)
	for {
		rec, found, err := h.Store().FindReferral(ctx, intake.Lookup{ReferralID: id})
		if err != nil {
			return intake.Record{}, err
		}
		if found && rec.Refs.OrderReference != "" && rec.Refs.CaseReference != "" && rec.Refs.TaskID != "" {
			return rec, nil
		}
		if time.Now().After(deadline) {
			return intake.Record{}, fmt.Errorf("the referral did not reach the provider, the council and the NHS endpoint within %s", within)
		}
		select {
		case <-ctx.Done():
			return intake.Record{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Request is one request a partner accepted.
type Request struct {
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body"`
}

// Accepted returns every request each simulated partner accepted (created
// something or changed something), in order.
func (d *Partners) Accepted() map[string][]Request {
	out := map[string][]Request{}
	add := func(id string, method, path string, status int, repeat bool, body any) {
		if status >= 300 || repeat {
			return
		}
		b, err := json.Marshal(body)
		if err != nil {
			return
		}
		out[id] = append(out[id], Request{Method: method, Path: path, Body: b})
	}
	for _, e := range d.Provider.Journal() {
		add("provider", e.Method, e.Path, e.Status, e.Repeat, e.Body)
	}
	for id, sim := range d.Councils {
		for _, e := range sim.Journal() {
			add(id, e.Method, e.Path, e.Status, e.Repeat, e.Body)
		}
	}
	for _, r := range d.NHS.Received() {
		var body any = r.Task
		if r.Communication != nil {
			body = r.Communication
		}
		add("nhs-trust", r.Method, r.Path, r.Status, r.Repeat, body)
	}
	return out
}

// Play makes step's request and waits until every partner it expects to
// hear has received that many new requests; it returns them.
func (j *Journey) Play(ctx context.Context, step Step, within time.Duration) (map[string][]Request, error) {
	before := j.sims.Accepted()
	status, answer, err := step.send(ctx, j)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", step.Slug, err)
	}
	if status < 200 || status >= 300 {
		return nil, fmt.Errorf("%s: the hub answered %d:\n%s", step.Slug, status, answer)
	}
	deadline := time.Now().Add(within)
	for {
		now := j.sims.Accepted()
		got := map[string][]Request{}
		done := true
		for id, n := range step.Expect {
			got[id] = now[id][len(before[id]):]
			if len(got[id]) < n {
				done = false
			}
		}
		if done {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("%s: partners received %v, want %v", step.Slug, Counts(got), step.Expect)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Counts is how many requests each partner received in m.
func Counts(m map[string][]Request) map[string]int {
	out := map[string]int{}
	for id, rs := range m {
		out[id] = len(rs)
	}
	return out
}

// PostWebhook signs body as partner and posts it to url.
func (d *Partners) PostWebhook(ctx context.Context, url, partner string, v any) (int, []byte, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Correlation-ID", "demo-"+uuid.NewString()[:8])
	if d.Creds != nil {
		if err := d.Creds.SignWebhook(req, partner, body); err != nil {
			return 0, nil, err
		}
	}
	return SendToHub(req)
}

// PrintJourney plays every step and prints what each partner received.
func PrintJourney(ctx context.Context, w io.Writer, j *Journey, within time.Duration) (int, error) {
	fmt.Fprintf(w, "=== The return journey: referral A %s (Chester), referral B %s (Crewe, order %s)\n\n", j.A, j.B, j.OrderB)
	n := 0
	for _, step := range Steps() {
		got, err := j.Play(ctx, step, within)
		if err != nil {
			return n, err
		}
		fmt.Fprintf(w, "=== %s: %s\n", step.Flow, step.What)
		ids := make([]string, 0, len(got))
		for id := range got {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			for _, r := range got[id] {
				n++
				fmt.Fprintf(w, "--- %s received %s %s\n%s\n", id, r.Method, r.Path, indent(r.Body))
			}
		}
		fmt.Fprintln(w)
	}
	return n, nil
}
