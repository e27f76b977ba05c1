package fhir_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

const (
	nhsGoldenDir = "../../testdata/nhs/golden"
	emittedDir   = "../../testdata/fhir/emitted"

	referralID = "5b0e7c1a-2f4d-4c8e-9a61-3d2f0b7e4a10"
	patientNHS = "9990000018"
)

var (
	receivedAt = time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)
	occurredAt = time.Date(2025, 6, 5, 14, 5, 30, 0, time.UTC)
)

// full is a referral with every field a referral can hold, all fictional.
func full() model.Referral {
	return model.Referral{
		ID:         referralID,
		Source:     model.Source{BundleID: "b-1", ServiceRequestID: "sr-1001", SenderODS: "RX1", CorrelationID: "c0ffee00-0000-4000-8000-000000000001"},
		ReceivedAt: receivedAt,
		Person: model.Person{
			NHSNumber: patientNHS,
			Name:      model.HumanName{Text: "Ada Testperson", Given: []string{"Ada"}, Family: "Testperson"},
			BirthDate: "1941-03-02",
			Gender:    "female",
			Address:   model.Address{Lines: []string{"1 Fictional Row"}, City: "Chester", Postcode: "CH1 1AA"},
			Telecom:   []model.ContactPoint{{System: "phone", Value: "01632 960001"}},
		},
		Requester: model.Requester{PractitionerName: "Dr Imaginary", OrganisationODS: "RX1", OrganisationName: "Fictional Community Trust",
			Contact: []model.ContactPoint{{System: "email", Value: "ot.team@fictional.example"}}},
		Priority:    model.PriorityUrgent,
		AccessNotes: "key safe by the back door",
		Equipment:   []model.EquipmentItem{{Code: "BED-01", Description: "Profiling bed", Quantity: 1}},
		Clinical:    model.Clinical{Notes: []string{"recent hip fracture"}},
	}
}

// copyOf cuts r to what a route naming fields gives the requester, the way
// minimise does: ids and times always, the event's skeleton always, and
// only the named fields.
func copyOf(t *testing.T, r model.Referral, fields ...string) model.Referral {
	t.Helper()
	out := model.Referral{ID: r.ID, Source: r.Source, ReceivedAt: r.ReceivedAt, Event: model.EventSkeleton(r.Event)}
	for _, name := range fields {
		f, ok := model.LookupField(name)
		if !ok {
			t.Fatalf("unknown field %s", name)
		}
		f.Copy(&out, &r)
	}
	return out
}

func event(kind model.Kind, status model.OrderStatus) *model.Event {
	return &model.Event{ID: "e7a1c3d2-0000-4000-8000-00000000e001", Kind: kind, ReferralID: referralID, From: "provider",
		FromEventID: "prov-evt-77", OccurredAt: occurredAt, ReceivedAt: occurredAt.Add(2 * time.Second), Status: status}
}

// delivery builds the requester's copy of a message of kind k.
func delivery(t *testing.T, k model.Kind, ev *model.Event, fields ...string) model.Delivery {
	t.Helper()
	r := full()
	r.Event = ev
	return model.Delivery{
		Kind: k, Recipient: "nhs-rx1", IdempotencyKey: "idem-" + string(k), Fields: fields,
		Referral: copyOf(t, r, fields...),
		Refs:     model.References{ServiceRequestID: "sr-1001", OrderReference: "ORD-000042", RequesterODS: "RX1"},
	}
}

var (
	taskFields   = []string{"person.nhsNumber", "requester.organisation", "priority", "event.scheduledDate", "event.reason", "event.description"}
	statusFields = taskFields
)

type emitCase struct {
	name string
	d    func(t *testing.T) model.Delivery
	// emitted names the copy kept under testdata/fhir/emitted, for the
	// independent R4 validator; empty for none.
	emitted string
}

func withStatus(s model.OrderStatus, mut func(*model.Event)) func(t *testing.T) model.Delivery {
	return func(t *testing.T) model.Delivery {
		ev := event(model.KindOrderStatus, s)
		if mut != nil {
			mut(ev)
		}
		return delivery(t, model.KindOrderStatus, ev, statusFields...)
	}
}

func emitCases() []emitCase {
	return []emitCase{
		{"referral-ordered", func(t *testing.T) model.Delivery {
			return delivery(t, model.KindReferral, nil, "person.nhsNumber", "requester.organisation", "priority")
		}, "task-ordered"},
		{"status-accepted", withStatus(model.StatusAccepted, nil), ""},
		{"status-scheduled", withStatus(model.StatusScheduled, func(e *model.Event) { e.ScheduledDate = "2025-06-10" }), "task-scheduled"},
		{"status-out-for-delivery", withStatus(model.StatusOutForDelivery, nil), ""},
		{"status-delivered", withStatus(model.StatusDelivered, nil), ""},
		{"status-installed", withStatus(model.StatusInstalled, nil), "task-installed"},
		{"status-failed-delivery", withStatus(model.StatusFailedDelivery, func(e *model.Event) {
			e.Reason = model.Coded{Code: "no-access", Display: "No one at home to let the driver in"}
		}), "task-failed-delivery"},
		{"status-collection-requested", withStatus(model.StatusCollectionRequested, func(e *model.Event) { e.ScheduledDate = "2025-09-01" }), ""},
		{"status-collected", withStatus(model.StatusCollected, nil), ""},
		{"status-cancelled", withStatus(model.StatusCancelled, func(e *model.Event) {
			e.Reason = model.Coded{Code: "out-of-area", Display: "Address outside the service area"}
		}), ""},
		{"equipment-issue", func(t *testing.T) model.Delivery {
			ev := event(model.KindEquipmentIssue, "")
			ev.Reason = model.Coded{Code: model.IssueUnsafe, Display: "Unsafe"}
			ev.Description = "Bed rail does not lock in the raised position."
			return delivery(t, model.KindEquipmentIssue, ev, "person.nhsNumber", "requester.organisation", "event.reason", "event.description")
		}, "communication-equipment-issue"},
		{"equipment-issue-without-description", func(t *testing.T) model.Delivery {
			ev := event(model.KindEquipmentIssue, "")
			ev.Reason = model.Coded{Code: model.IssueFailedInstallation}
			ev.Description = "not for the requester: the route does not name it"
			return delivery(t, model.KindEquipmentIssue, ev, "person.nhsNumber", "requester.organisation", "event.reason")
		}, ""},
		{"cancellation", func(t *testing.T) model.Delivery {
			ev := event(model.KindCancellation, model.StatusCancelled)
			ev.From = "nhs"
			ev.Reason = model.Coded{System: "https://example.org/nhs/cancellation", Code: "no-longer-required", Display: "No longer required"}
			return delivery(t, model.KindCancellation, ev, taskFields...)
		}, "task-cancelled"},
		{"collection", func(t *testing.T) model.Delivery {
			ev := event(model.KindCollection, model.StatusCollectionRequested)
			ev.From = "council-cwac"
			ev.Reason = model.Coded{Code: model.CollectionMoved, Display: "Moved"}
			ev.ScheduledDate = "2025-09-01"
			return delivery(t, model.KindCollection, ev, taskFields...)
		}, ""},
		{"pseudonymised-urn-focus", func(t *testing.T) model.Delivery {
			// Cut as minimise does with person.nhsNumber as: pseudonymise.
			d := delivery(t, model.KindOrderStatus, event(model.KindOrderStatus, model.StatusAccepted), "event.reason")
			d.Fields = []string{"person.nhsNumber(pseudonymise)", "event.reason"}
			d.Referral.Person = model.Person{Pseudonym: "3f9a0c6e1b2d4e5f", PseudonymSystem: model.PseudonymSystem}
			d.Refs.ServiceRequestID = "urn:uuid:2c1f7a9e-1111-4000-8000-000000000abc"
			return d
		}, "task-pseudonymised"},
		{"minimal-no-patient", func(t *testing.T) model.Delivery {
			d := delivery(t, model.KindOrderStatus, event(model.KindOrderStatus, model.StatusOutForDelivery))
			d.Refs = model.References{}
			d.Referral.Source.ServiceRequestID = ""
			return d
		}, "task-minimal"},
		{"safeguarding", func(t *testing.T) model.Delivery {
			ev := event(model.KindSafeguarding, "")
			ev.Reason = model.Coded{Code: "self-neglect", Display: "Self-neglect"}
			ev.Description = "Driver found the person alone without heating or food in the house."
			return delivery(t, model.KindSafeguarding, ev, "person.nhsNumber", "requester.organisation", "event.reason", "event.description")
		}, "communication-safeguarding"},
		{"safeguarding-minimal", func(t *testing.T) model.Delivery {
			ev := event(model.KindSafeguarding, "")
			ev.Description = "withheld from this route"
			d := delivery(t, model.KindSafeguarding, ev)
			d.Refs.ServiceRequestID = ""
			d.Referral.Source.ServiceRequestID = "urn:uuid:2c1f7a9e-1111-4000-8000-000000000abc"
			return d
		}, "communication-safeguarding-minimal"},
	}
}

var opts = fhirmap.EmitOptions{Provider: "provider"}

func emit(d model.Delivery) (any, error) {
	if !fhirmap.UpdatesTask(d.Kind) {
		return fhirmap.CommunicationFor(d, opts)
	}
	return fhirmap.TaskFor(d, opts)
}

// TestEmittedGolden maps a copy of every order status and every other kind
// of message the requester receives, and compares the resource with
// testdata/nhs/golden/<case>.json; the cases marked emitted are also kept in
// testdata/fhir/emitted, which .ci/run validates with an independent R4
// validator. Run with -update to rewrite both, then review the diff.
func TestEmittedGolden(t *testing.T) {
	for _, c := range emitCases() {
		t.Run(c.name, func(t *testing.T) {
			d := c.d(t)
			before, _ := json.Marshal(d)
			res, err := emit(d)
			if err != nil {
				t.Fatalf("emit: %v", err)
			}
			if after, _ := json.Marshal(d); !bytes.Equal(before, after) {
				t.Error("the mapping changed its input")
			}
			got, err := json.MarshalIndent(res, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			assertNoEmpty(t, got)
			paths := []string{filepath.Join(nhsGoldenDir, c.name+".json")}
			if c.emitted != "" {
				paths = append(paths, filepath.Join(emittedDir, c.emitted+".json"))
			}
			for _, path := range paths {
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./mappings/fhir -run EmittedGolden -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs (run with -update and review the diff):\n%s", path, got)
				}
			}
		})
	}
}

// assertNoEmpty fails on an empty string, array or object anywhere in a
// resource: R4 forbids them, and they are what marshalling
// golang-fhir-models types produces.
func assertNoEmpty(t *testing.T, b []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case string:
			if strings.TrimSpace(x) != x || x == "" {
				t.Errorf("%s: empty or padded string %q", path, x)
			}
		case []any:
			if len(x) == 0 {
				t.Errorf("%s: empty array", path)
			}
			for _, e := range x {
				walk(path+"[]", e)
			}
		case map[string]any:
			if len(x) == 0 {
				t.Errorf("%s: empty object", path)
			}
			for k, e := range x {
				walk(path+"."+k, e)
			}
		}
	}
	walk("", v)
}

func TestTaskStatusForEveryOrderStatus(t *testing.T) {
	want := map[model.OrderStatus]string{
		model.StatusOrdered: "received", model.StatusAccepted: "accepted", model.StatusScheduled: "in-progress",
		model.StatusOutForDelivery: "in-progress", model.StatusDelivered: "completed", model.StatusInstalled: "completed",
		model.StatusFailedDelivery: "on-hold", model.StatusCollectionRequested: "completed",
		model.StatusCollected: "completed", model.StatusCancelled: "cancelled",
	}
	for _, s := range append(model.OrderStatuses(), model.StatusOrdered) {
		task, err := fhirmap.TaskFor(delivery(t, model.KindOrderStatus, event(model.KindOrderStatus, s), statusFields...), opts)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if w, ok := want[s]; !ok || task.Status != w {
			t.Errorf("%s: Task.status = %q, want %q", s, task.Status, w)
		}
		if b := task.BusinessStatus; b == nil || b.Coding[0].Code != string(s) || b.Coding[0].System != fhirmap.OrderStatusSystem || b.Coding[0].Display == "" {
			t.Errorf("%s: businessStatus = %+v", s, b)
		}
		if task.Intent != "order" || task.LastModified != "2025-06-05T14:05:30Z" || task.Owner == nil {
			t.Errorf("%s: intent %q lastModified %q owner %+v", s, task.Intent, task.LastModified, task.Owner)
		}
	}
}

func TestStatusReasonFromTheEventReason(t *testing.T) {
	ev := event(model.KindOrderStatus, model.StatusFailedDelivery)
	ev.Reason = model.Coded{Code: "no-access", Display: "No access"}
	task, err := fhirmap.TaskFor(delivery(t, model.KindOrderStatus, ev, statusFields...), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := &fhirmap.CodeableConcept{Text: "No access", Coding: []fhirmap.Coding{{System: fhirmap.FailedDeliveryReasonSystem, Code: "no-access", Display: "No access"}}}
	if task.Status != "on-hold" || !reflect.DeepEqual(task.StatusReason, want) {
		t.Errorf("status %q statusReason %+v, want on-hold %+v", task.Status, task.StatusReason, want)
	}

	// A route that does not name event.reason gives no statusReason.
	task, err = fhirmap.TaskFor(delivery(t, model.KindOrderStatus, ev, "person.nhsNumber"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if task.StatusReason != nil {
		t.Errorf("statusReason %+v from a copy without event.reason", task.StatusReason)
	}
}

// TestEquipmentIssueIsACommunicationThatLeavesTheTask: an equipment issue
// is told to the requester as a Communication about the Task (category
// equipment-issue, urgent when unsafe), never as a Task update, so that an
// issue after delivery cannot reopen a completed Task. The description is
// the payload only when the copy holds it.
func TestEquipmentIssueIsACommunicationThatLeavesTheTask(t *testing.T) {
	ev := event(model.KindEquipmentIssue, "")
	ev.Reason = model.Coded{Code: model.IssueUnsuitable}
	ev.Description = "Chair too low for the person to stand from."
	if _, err := fhirmap.TaskFor(delivery(t, model.KindEquipmentIssue, ev, "event.reason"), opts); !errors.Is(err, fhirmap.ErrUnsupportedKind) {
		t.Errorf("TaskFor(equipment issue) err = %v, want ErrUnsupportedKind", err)
	}
	if fhirmap.UpdatesTask(model.KindEquipmentIssue) || fhirmap.UpdatesTask(model.KindSafeguarding) || !fhirmap.UpdatesTask(model.KindCancellation) {
		t.Error("UpdatesTask disagrees with the kinds TaskFor maps")
	}
	with, err := fhirmap.CommunicationFor(delivery(t, model.KindEquipmentIssue, ev, "event.reason", "event.description"), opts)
	if err != nil {
		t.Fatal(err)
	}
	without, err := fhirmap.CommunicationFor(delivery(t, model.KindEquipmentIssue, ev, "event.reason"), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []fhirmap.Communication{with, without} {
		if c.Status != "completed" || c.Priority != "routine" || len(c.Category) != 2 || c.Category[0].Coding[0].Code != "notification" ||
			c.Category[1].Coding[0].Code != "equipment-issue" || len(c.ReasonCode) != 1 ||
			c.ReasonCode[0].Coding[0].Code != model.IssueUnsuitable || c.ReasonCode[0].Coding[0].System != fhirmap.EquipmentIssueSystem ||
			len(c.About) != 2 || c.About[0].Type != "Task" {
			t.Errorf("equipment issue Communication = %+v", c)
		}
	}
	if len(with.Payload) != 1 || with.Payload[0].ContentString != ev.Description {
		t.Errorf("payload with description = %+v", with.Payload)
	}
	if len(without.Payload) != 0 {
		t.Errorf("payload without description = %+v", without.Payload)
	}
	ev.Reason = model.Coded{Code: model.IssueUnsafe}
	unsafe, err := fhirmap.CommunicationFor(delivery(t, model.KindEquipmentIssue, ev, "event.reason"), opts)
	if err != nil || unsafe.Priority != "urgent" {
		t.Errorf("unsafe equipment: priority %q, %v; want urgent", unsafe.Priority, err)
	}
}

// A copy without the NHS number names nobody: no Task.for, and nothing of
// the person anywhere in the resource, even when the full referral held it
// all. The resources read only what FieldsFor lists.
func TestDataMinimisation(t *testing.T) {
	for _, k := range fhirmap.EmittedKinds() {
		ev := event(k, model.StatusScheduled)
		ev.Description = "Concern described in free text."
		if k == model.KindReferral {
			ev = nil
		}
		fields := slices.DeleteFunc(fhirmap.FieldsFor(k), func(f string) bool { return f == "person.nhsNumber" })
		d := delivery(t, k, ev, fields...)
		res, err := emit(d)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		b, _ := json.Marshal(res)
		for _, personal := range []string{patientNHS, nhsnumber.System, "Ada", "Testperson", "1941", "CH1", "Fictional Row", "01632", "Imaginary",
			"ot.team", "key safe", "Profiling bed", "hip fracture", "female", "Patient"} {
			if bytes.Contains(b, []byte(personal)) {
				t.Errorf("%s: resource holds %q though the copy does not:\n%s", k, personal, b)
			}
		}
		// The same copy cut with the NHS number names the person by it.
		d = delivery(t, k, ev, append(fields, "person.nhsNumber")...)
		res, err = emit(d)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = json.Marshal(res)
		if !bytes.Contains(b, []byte(`{"type":"Patient","identifier":{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9990000018"}}`)) {
			t.Errorf("%s: no patient by NHS number:\n%s", k, b)
		}
	}
}

func TestPseudonymNeverInTheNHSNumberSystem(t *testing.T) {
	d := delivery(t, model.KindOrderStatus, event(model.KindOrderStatus, model.StatusAccepted))
	d.Referral.Person = model.Person{Pseudonym: "abc123", PseudonymSystem: nhsnumber.System}
	if _, err := fhirmap.TaskFor(d, opts); !errors.Is(err, fhirmap.ErrInvalidCopy) {
		t.Errorf("err = %v, want ErrInvalidCopy", err)
	}
	d.Referral.Person.PseudonymSystem = ""
	task, err := fhirmap.TaskFor(d, opts)
	if err != nil {
		t.Fatal(err)
	}
	if task.For == nil || task.For.Identifier.System != model.PseudonymSystem || task.For.Identifier.Value != "abc123" {
		t.Errorf("for = %+v, want the pseudonym in %s", task.For, model.PseudonymSystem)
	}
}

func TestFocus(t *testing.T) {
	logical := &fhirmap.Reference{Type: "ServiceRequest", Identifier: &fhirmap.Identifier{System: fhirmap.ReferralIDSystem, Value: referralID}}
	cases := []struct {
		refs, source string
		want         *fhirmap.Reference
	}{
		{"sr-1001", "", &fhirmap.Reference{Reference: "ServiceRequest/sr-1001"}},
		{"", "sr-2002", &fhirmap.Reference{Reference: "ServiceRequest/sr-2002"}},
		{"ServiceRequest/sr-3", "", &fhirmap.Reference{Reference: "ServiceRequest/sr-3"}},
		{"https://fhir.trust.example/R4/ServiceRequest/abc", "", &fhirmap.Reference{Reference: "https://fhir.trust.example/R4/ServiceRequest/abc"}},
		{"urn:uuid:2c1f7a9e-1111-4000-8000-000000000abc", "", logical},
		{"https://fhir.trust.example/R4/Patient/abc", "", logical},
		{"", "", logical},
	}
	for _, c := range cases {
		d := delivery(t, model.KindReferral, nil)
		d.Refs.ServiceRequestID, d.Referral.Source.ServiceRequestID = c.refs, c.source
		task, err := fhirmap.TaskFor(d, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(task.Focus, c.want) {
			t.Errorf("refs %q source %q: focus = %+v, want %+v", c.refs, c.source, task.Focus, c.want)
		}
	}
}

func TestTaskID(t *testing.T) {
	if want := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://example.org/ices/Id/task")); fhirmap.TaskNamespace != want {
		t.Errorf("TaskNamespace = %s, want %s", fhirmap.TaskNamespace, want)
	}
	a, b := fhirmap.TaskID(referralID), fhirmap.TaskID("another-referral")
	if a != fhirmap.TaskID(referralID) || a == b {
		t.Errorf("TaskID not stable or not distinct: %s %s", a, b)
	}
	if u, err := uuid.Parse(a); err != nil || u.Version() != 5 {
		t.Errorf("TaskID %s is not a version 5 UUID (%v)", a, err)
	}
	// Pinned: changing the id of an existing referral's Task would leave
	// the old Task behind at every endpoint.
	if a != "f79efdcd-a3d5-56bb-bbc9-882f533339ce" {
		t.Errorf("TaskID(%s) = %s: the ids of existing Tasks changed", referralID, a)
	}

	d := delivery(t, model.KindReferral, nil)
	task, _ := fhirmap.TaskFor(d, opts)
	if task.ID != a {
		t.Errorf("Task id %s, want TaskID(referral) %s", task.ID, a)
	}
	d.Refs.TaskID = "task-from-the-store"
	if task, _ = fhirmap.TaskFor(d, opts); task.ID != "task-from-the-store" {
		t.Errorf("Task id %s, want the cross-reference's", task.ID)
	}
	d.Refs.TaskID = "not a FHIR id!"
	if _, err := fhirmap.TaskFor(d, opts); !errors.Is(err, fhirmap.ErrInvalidCopy) {
		t.Errorf("err = %v, want ErrInvalidCopy for a bad Task id", err)
	}
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name string
		d    func() model.Delivery
		want error
	}{
		{"complaint", func() model.Delivery { return delivery(t, model.KindComplaint, event(model.KindComplaint, "")) }, fhirmap.ErrUnsupportedKind},
		{"amendment", func() model.Delivery { return delivery(t, model.KindAmendment, event(model.KindAmendment, "")) }, fhirmap.ErrUnsupportedKind},
		{"field not carried", func() model.Delivery {
			return delivery(t, model.KindOrderStatus, event(model.KindOrderStatus, model.StatusAccepted), "person.name")
		}, fhirmap.ErrFieldNotCarried},
		{"description on a new referral", func() model.Delivery {
			return delivery(t, model.KindReferral, nil, "event.description")
		}, fhirmap.ErrFieldNotCarried},
		{"no referral id", func() model.Delivery {
			d := delivery(t, model.KindReferral, nil)
			d.Referral.ID = " "
			return d
		}, fhirmap.ErrInvalidCopy},
		{"status message without event", func() model.Delivery { return delivery(t, model.KindOrderStatus, nil) }, fhirmap.ErrInvalidCopy},
		{"status message without status", func() model.Delivery { return delivery(t, model.KindOrderStatus, event(model.KindOrderStatus, "")) }, fhirmap.ErrInvalidCopy},
		{"unknown status", func() model.Delivery {
			return delivery(t, model.KindOrderStatus, event(model.KindOrderStatus, "lost-in-space"))
		}, fhirmap.ErrInvalidCopy},
	}
	for _, c := range cases {
		if _, err := fhirmap.TaskFor(c.d(), opts); !errors.Is(err, c.want) {
			t.Errorf("%s: TaskFor err = %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := fhirmap.TaskFor(delivery(t, model.KindSafeguarding, event(model.KindSafeguarding, "")), opts); !errors.Is(err, fhirmap.ErrUnsupportedKind) {
		t.Errorf("TaskFor(safeguarding) err = %v", err)
	}
	if _, err := fhirmap.CommunicationFor(delivery(t, model.KindOrderStatus, event(model.KindOrderStatus, model.StatusAccepted)), opts); !errors.Is(err, fhirmap.ErrUnsupportedKind) {
		t.Errorf("CommunicationFor(order-status) err = %v", err)
	}
	noID := event(model.KindSafeguarding, "")
	noID.ID = ""
	if _, err := fhirmap.CommunicationFor(delivery(t, model.KindSafeguarding, noID), opts); !errors.Is(err, fhirmap.ErrInvalidCopy) {
		t.Errorf("CommunicationFor without event id err = %v", err)
	}
	if _, err := fhirmap.CommunicationFor(delivery(t, model.KindSafeguarding, event(model.KindSafeguarding, ""), "priority"), opts); !errors.Is(err, fhirmap.ErrFieldNotCarried) {
		t.Errorf("CommunicationFor with priority err = %v", err)
	}
}

func TestFieldsFor(t *testing.T) {
	for _, k := range model.Kinds() {
		fields := fhirmap.FieldsFor(k)
		if err := model.CheckFields(fields); err != nil {
			t.Errorf("%s: %v", k, err)
		}
		if !slices.IsSorted(fields) {
			t.Errorf("%s: %v not sorted", k, fields)
		}
		if emitted := slices.Contains(fhirmap.EmittedKinds(), k); emitted != (len(fields) > 0) {
			t.Errorf("%s: emitted %v but fields %v", k, emitted, fields)
		}
	}
}

func TestCommunicationSafeguarding(t *testing.T) {
	ev := event(model.KindSafeguarding, "")
	ev.Description = "  Concern   raised\r\nby the driver.  "
	c, err := fhirmap.CommunicationFor(delivery(t, model.KindSafeguarding, ev, "event.description", "person.nhsNumber"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != "completed" || c.Priority != "urgent" || c.Sent != "2025-06-05T14:05:30Z" ||
		c.Category[0].Coding[0].Code != "alert" || c.Category[1].Coding[0].Code != "safeguarding" {
		t.Errorf("communication = %+v", c)
	}
	if len(c.Payload) != 1 || c.Payload[0].ContentString != "Concern raised\nby the driver." {
		t.Errorf("payload = %+v", c.Payload)
	}
	if c.Subject == nil || c.Subject.Identifier.Value != patientNHS {
		t.Errorf("subject = %+v", c.Subject)
	}
	if got := fhirmap.IfNoneExist(c); got != "identifier=https%3A%2F%2Fexample.org%2Fices%2FId%2Fevent%7Ce7a1c3d2-0000-4000-8000-00000000e001" {
		t.Errorf("IfNoneExist = %q", got)
	}
}
