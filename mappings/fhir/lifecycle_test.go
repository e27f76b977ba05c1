package fhir_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// The FHIR R4 Task lifecycle as the property test below reads it
// (http://hl7.org/fhir/R4/task.html#statemachine, codes from
// http://hl7.org/fhir/task-status): draft, requested, received, accepted,
// ready, then in-progress, which may pause as on-hold and resume; completed,
// failed, cancelled, rejected and entered-in-error are final. The hub writes
// the Task once per message, so one update may pass over statuses the order
// went through unreported (a same-day delivery takes the Task from received
// to completed); what the lifecycle forbids, and taskMove refuses, is moving
// back, leaving a final status, and rejecting work already accepted.
var (
	taskPhase = map[string]int{"draft": 0, "requested": 1, "received": 2, "accepted": 3, "ready": 4, "in-progress": 5, "on-hold": 5}
	taskFinal = map[string]bool{"completed": true, "failed": true, "cancelled": true, "rejected": true, "entered-in-error": true}
)

// taskMove returns why a Task may not move from one status to another, or
// nil when it may.
func taskMove(from, to string) error {
	_, known := taskPhase[to]
	switch {
	case !known && !taskFinal[to]:
		return fmt.Errorf("%q is not an R4 Task.status", to)
	case from == to:
		return nil
	case taskFinal[from]:
		return fmt.Errorf("%s -> %s: %s is final", from, to, from)
	case to == "rejected" && taskPhase[from] > taskPhase["received"]:
		return fmt.Errorf("%s -> rejected: only a Task not yet accepted is rejected", from)
	case taskFinal[to]:
		return nil
	case taskPhase[to] < taskPhase[from]:
		return fmt.Errorf("%s -> %s goes back", from, to)
	}
	return nil
}

func TestTaskMoveCatchesWhatTheLifecycleForbids(t *testing.T) {
	for _, bad := range [][2]string{{"completed", "in-progress"}, {"cancelled", "received"}, {"in-progress", "accepted"},
		{"on-hold", "received"}, {"accepted", "rejected"}, {"completed", "cancelled"}, {"received", "paused"}} {
		if taskMove(bad[0], bad[1]) == nil {
			t.Errorf("%s -> %s allowed", bad[0], bad[1])
		}
	}
	for _, good := range [][2]string{{"received", "completed"}, {"in-progress", "on-hold"}, {"on-hold", "in-progress"},
		{"on-hold", "completed"}, {"received", "cancelled"}, {"completed", "completed"}, {"received", "on-hold"}} {
		if err := taskMove(good[0], good[1]); err != nil {
			t.Errorf("%s -> %s: %v", good[0], good[1], err)
		}
	}
}

// orderDone are the order statuses after which the Task is final: the
// equipment was delivered (whatever follows, installation or collection,
// is told in businessStatus), or the order was cancelled.
var orderDone = map[model.OrderStatus]bool{model.StatusDelivered: true, model.StatusInstalled: true,
	model.StatusCollectionRequested: true, model.StatusCollected: true, model.StatusCancelled: true}

// lifecycleEvent is one message the requester may be sent about an order,
// as the inbound adapters make it.
type lifecycleEvent struct {
	name string
	ev   func() *model.Event
}

func lifecycleEvents() []lifecycleEvent {
	var out []lifecycleEvent
	for _, s := range model.OrderStatuses() {
		out = append(out, lifecycleEvent{"provider " + string(s), func() *model.Event {
			ev := event(model.KindOrderStatus, s)
			switch s {
			case model.StatusScheduled, model.StatusCollectionRequested:
				ev.ScheduledDate = "2025-06-10"
			case model.StatusFailedDelivery:
				ev.Reason = model.Coded{Code: "no-access", Display: "No answer at the door"}
			case model.StatusCancelled:
				ev.Reason = model.Coded{Code: "equipment-unavailable"}
			}
			return ev
		}})
	}
	return append(out,
		lifecycleEvent{"NHS cancellation", func() *model.Event {
			ev := event(model.KindCancellation, model.StatusCancelled)
			ev.From, ev.Reason = "nhs", model.Coded{Code: "no-longer-required", Display: "No longer required"}
			return ev
		}},
		lifecycleEvent{"council collection", func() *model.Event {
			ev := event(model.KindCollection, model.StatusCollectionRequested)
			ev.From, ev.Reason = "council-cwac", model.Coded{Code: model.CollectionMoved}
			return ev
		}},
		lifecycleEvent{"equipment issue (unsafe)", func() *model.Event {
			ev := event(model.KindEquipmentIssue, "")
			ev.Reason, ev.Description = model.Coded{Code: model.IssueUnsafe}, "Bed rail does not lock."
			return ev
		}},
		lifecycleEvent{"safeguarding concern", func() *model.Event {
			ev := event(model.KindSafeguarding, "")
			ev.Reason, ev.Description = model.Coded{Code: "self-neglect"}, "No heating in the house."
			return ev
		}},
	)
}

// requesterFields is what a route to the requester may name for kind k:
// everything the resource carries (the widest copy).
func requesterCopy(t *testing.T, k model.Kind, ev *model.Event) model.Delivery {
	return delivery(t, k, ev, fhirmap.FieldsFor(k)...)
}

// TestTaskLifecycleProperty walks every sequence of events about one
// referral, up to lifecycleDepth events after the referral, as the hub
// would: an event whose order status model.CanMove refuses is refused (409)
// and sends nothing; every other one is mapped for the requester. (The
// mappings are pure and a copy of an event is the same whatever came
// before it, so each event is mapped and checked once, then its resource
// reused along every walk.) Along
// every walk it checks that each Task sent moves legally in R4's Task
// lifecycle from the one sent before (a completed or cancelled Task never
// reopens), that it is final exactly when the order is delivered (or
// beyond) or cancelled, that its businessStatus is where the order now
// stands, that a
// message sent as a Communication leaves the Task as it was, and that every
// resource is valid R4 as far as taskProblems and commProblems check.
// ICESHUB_DUMP_EMITTED=dir writes each distinct resource to dir, for the
// npm validator of .ci/run.
//
// Longer than 100 lines: the property walks every order status and its Task in one loop, whose
// checks belong together.
func TestTaskLifecycleProperty(t *testing.T) {
	depth := 7
	if testing.Short() {
		depth = 5
	}
	events := lifecycleEvents()
	dump := os.Getenv("ICESHUB_DUMP_EMITTED")
	dumped := map[string]bool{}
	keep := func(name string, res any) {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if dump == "" || dumped[string(b)] {
			return
		}
		dumped[string(b)] = true
		if err := os.WriteFile(filepath.Join(dump, fmt.Sprintf("%03d-%s.json", len(dumped), name)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	first, err := fhirmap.TaskFor(requesterCopy(t, model.KindReferral, nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	if probs := taskProblems(first); len(probs) > 0 || first.Status != "received" {
		t.Fatalf("the referral's Task: status %q, %v", first.Status, probs)
	}
	keep("referral", first)

	type emitted struct {
		task *fhirmap.Task
	}
	mapped := map[string]emitted{}
	emit := func(le lifecycleEvent, ev *model.Event) emitted {
		if e, ok := mapped[le.name]; ok {
			return e
		}
		d := requesterCopy(t, ev.Kind, ev)
		var e emitted
		if fhirmap.UpdatesTask(ev.Kind) {
			task, err := fhirmap.TaskFor(d, opts)
			if err != nil {
				t.Fatalf("%s: %v", le.name, err)
			}
			for _, p := range taskProblems(task) {
				t.Errorf("%s: invalid Task: %s", le.name, p)
			}
			if task.ID != first.ID {
				t.Errorf("%s: Task id %s, want %s", le.name, task.ID, first.ID)
			}
			keep("task", task)
			e.task = &task
		} else {
			c, err := fhirmap.CommunicationFor(d, opts)
			if err != nil {
				t.Fatalf("%s: %v", le.name, err)
			}
			for _, p := range commProblems(c) {
				t.Errorf("%s: invalid Communication: %s", le.name, p)
			}
			keep("communication", c)
		}
		if t.Failed() {
			t.FailNow()
		}
		mapped[le.name] = e
		return e
	}

	walks, sent := 0, 0
	type step struct {
		status model.OrderStatus
		task   fhirmap.Task
	}
	var path []string
	var walk func(at step, left int)
	walk = func(at step, left int) {
		if left == 0 {
			walks++
			return
		}
		for _, le := range events {
			ev := le.ev()
			next := at
			if ev.Status != "" {
				if model.CanMove(at.status, ev.Status) != nil {
					continue // refused with 409: nothing is sent
				}
				next.status = ev.Status
			}
			path = append(path, le.name)
			sent++
			if task := emit(le, ev).task; task != nil {
				// A Communication leaves next.task as it was.
				if err := taskMove(at.task.Status, task.Status); err != nil {
					t.Fatalf("after %v: %v", path, err)
				}
				if got := task.BusinessStatus.Coding[0].Code; got != string(next.status) {
					t.Fatalf("after %v: businessStatus %s, but the order is %s", path, got, next.status)
				}
				if done := orderDone[next.status]; taskFinal[task.Status] != done {
					t.Fatalf("after %v: the order is %s but the Task is %s", path, next.status, task.Status)
				}
				next.task = *task
			}
			walk(next, left-1)
			path = path[:len(path)-1]
		}
		walks++ // the walk may also end here
	}
	walk(step{status: model.StatusOrdered, task: first}, depth)
	t.Logf("%d walks of up to %d events, %d resources checked, %d distinct kept", walks, depth, sent, len(dumped))
	if walks < 1000 {
		t.Errorf("only %d walks", walks)
	}
}

var (
	dateTimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)
	fhirID     = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	priorities = []string{"routine", "urgent", "asap", "stat"}
)

// taskProblems checks a Task against the R4 rules the hub could break:
// required elements, the codes of its required bindings, the id and
// dateTime formats, codings with a system and a code, and no empty
// element anywhere (emptyProblems).
func taskProblems(task fhirmap.Task) []string {
	var out []string
	if task.ResourceType != "Task" || !fhirID.MatchString(task.ID) {
		out = append(out, fmt.Sprintf("resourceType %q id %q", task.ResourceType, task.ID))
	}
	if _, ok := taskPhase[task.Status]; !ok && !taskFinal[task.Status] {
		out = append(out, "status "+task.Status)
	}
	if !slices.Contains([]string{"unknown", "proposal", "plan", "order", "original-order", "reflex-order", "filler-order", "instance-order", "option"}, task.Intent) {
		out = append(out, "intent "+task.Intent)
	}
	if task.Priority != "" && !slices.Contains(priorities, task.Priority) {
		out = append(out, "priority "+task.Priority)
	}
	for _, dt := range []string{task.AuthoredOn, task.LastModified} {
		if dt != "" && !dateTimeRE.MatchString(dt) {
			out = append(out, "dateTime "+dt)
		}
	}
	for _, cc := range []*fhirmap.CodeableConcept{task.BusinessStatus, task.StatusReason, task.Code} {
		if cc != nil {
			for _, c := range cc.Coding {
				if c.System == "" || c.Code == "" {
					out = append(out, fmt.Sprintf("coding %+v", c))
				}
			}
		}
	}
	if task.BusinessStatus == nil || len(task.BusinessStatus.Coding) != 1 {
		out = append(out, "no businessStatus")
	}
	for _, n := range task.Note {
		if n.Text == "" || (n.Time != "" && !dateTimeRE.MatchString(n.Time)) {
			out = append(out, fmt.Sprintf("note %+v", n))
		}
	}
	return append(out, emptyProblems(task)...)
}

// commProblems is taskProblems for a Communication.
func commProblems(c fhirmap.Communication) []string {
	var out []string
	if c.ResourceType != "Communication" {
		out = append(out, "resourceType "+c.ResourceType)
	}
	if !slices.Contains([]string{"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed", "entered-in-error", "unknown"}, c.Status) {
		out = append(out, "status "+c.Status)
	}
	if c.Priority != "" && !slices.Contains(priorities, c.Priority) {
		out = append(out, "priority "+c.Priority)
	}
	if c.Sent != "" && !dateTimeRE.MatchString(c.Sent) {
		out = append(out, "sent "+c.Sent)
	}
	for _, p := range c.Payload {
		if p.ContentString == "" {
			out = append(out, "payload without content")
		}
	}
	return append(out, emptyProblems(c)...)
}

// emptyProblems finds what R4 JSON forbids anywhere in a resource: null, an
// empty or padded string, an empty array or object.
func emptyProblems(res any) []string {
	b, err := json.Marshal(res)
	if err != nil {
		return []string{err.Error()}
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return []string{err.Error()}
	}
	var out []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case nil:
			out = append(out, path+": null")
		case string:
			if x == "" || x != strings.TrimSpace(x) {
				out = append(out, path+": empty or padded string")
			}
		case []any:
			if len(x) == 0 {
				out = append(out, path+": empty array")
			}
			for _, e := range x {
				walk(path+"[]", e)
			}
		case map[string]any:
			if len(x) == 0 {
				out = append(out, path+": empty object")
			}
			for k, e := range x {
				walk(path+"."+k, e)
			}
		}
	}
	walk("", v)
	return out
}
