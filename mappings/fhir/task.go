package fhir

// What the hub emits to the requesting organisation's FHIR endpoint (flows
// F2, F3, F4, F5 and F8 back to the NHS): the referral's Task, kept current
// by update-as-create, and a Communication about the Task for a
// safeguarding concern or an equipment issue, which tell the requester
// something without changing where the order stands.
//
// The resources are built from the small structs below, not from
// golang-fhir-models: its types marshal every variant of a choice element,
// which is invalid FHIR. Every element here is omitted when empty, so no
// empty object, array or string is ever written; .ci/run proves the result
// valid R4 with an independent validator (testdata/fhir/emitted).
//
// TaskFor and CommunicationFor receive one recipient's minimised copy and
// map exactly what it holds: an element the copy does not hold is left out,
// never filled in or guessed. Neither reads a clock: every time they write
// comes from the copy, so the same copy always gives the same bytes, and a
// resent Task is recognised by the server as the same version.

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/nhsnumber"
)

// Identifier and code systems the hub writes in the resources it emits. The
// example.org ones are the hub's own conventions (adapters/nhs/openapi.yaml).
const (
	// PartnerIDSystem identifies a partner organisation of the hub by its
	// partner id in the hub's configuration (the provider as Task.owner).
	PartnerIDSystem = "https://example.org/ices/Id/partner"
	// EventIDSystem identifies an event by the hub's event id
	// (Communication.identifier, which makes a resent Communication
	// recognisable: see If-None-Exist in adapters/nhs).
	EventIDSystem = "https://example.org/ices/Id/event"
	// OrderStatusSystem codes Task.businessStatus: the model's order
	// statuses.
	OrderStatusSystem = "https://example.org/ices/CodeSystem/order-status"
	// FailedDeliveryReasonSystem and EquipmentIssueSystem (with
	// CancellationReasonSystem and CollectionReasonSystem, event.go) code
	// Task.statusReason and Communication.reasonCode when the partner that
	// reported the reason sent a bare code without a system. ReferralIDSystem
	// (event.go) is also Task.identifier's, and that of logical references
	// to the ServiceRequest and the Task.
	FailedDeliveryReasonSystem = "https://example.org/ices/CodeSystem/failed-delivery-reason"
	EquipmentIssueSystem       = "https://example.org/ices/CodeSystem/equipment-issue"
	StatusReasonSystem         = "https://example.org/ices/CodeSystem/status-reason"
	SafeguardingReasonSystem   = "https://example.org/ices/CodeSystem/safeguarding-reason"
	// CommunicationCategorySystem is HL7's communication-category; the hub
	// sends a safeguarding concern as an "alert".
	CommunicationCategorySystem = "http://terminology.hl7.org/CodeSystem/communication-category"
	// ICESCommunicationCategorySystem is the hub's own category, whose code
	// "safeguarding" says what kind of alert it is.
	ICESCommunicationCategorySystem = "https://example.org/ices/CodeSystem/communication-category"
	// TaskCodeSystem is HL7's task-code; the hub's Task is a "fulfill".
	TaskCodeSystem = "http://hl7.org/fhir/CodeSystem/task-code"
)

// TaskNamespace is the UUID namespace of TaskID: the version 5 UUID of the
// URL https://example.org/ices/Id/task in the URL namespace. It must never
// change, or every referral's Task gets a new id at its endpoint.
var TaskNamespace = uuid.MustParse("55bf9da1-687d-5f02-9492-3712d9f5b229")

// TaskID returns the id of the FHIR Task the hub keeps for a referral at the
// requester's endpoint: a version 5 UUID of the referral id in
// TaskNamespace. The same referral always gets the same id, on every hub
// replica and after every restart, so a Task update is a plain PUT.
func TaskID(referralID string) string {
	return uuid.NewSHA1(TaskNamespace, []byte(referralID)).String()
}

// Task is an R4 Task as the hub emits it. Status and Intent are required
// and always written; everything else is omitted when empty.
type Task struct {
	ResourceType   string           `json:"resourceType"` // "Task"
	ID             string           `json:"id,omitempty"`
	Meta           *Meta            `json:"meta,omitempty"`
	Identifier     []Identifier     `json:"identifier,omitempty"`
	Status         string           `json:"status"`
	StatusReason   *CodeableConcept `json:"statusReason,omitempty"`
	BusinessStatus *CodeableConcept `json:"businessStatus,omitempty"`
	Intent         string           `json:"intent"`
	Priority       string           `json:"priority,omitempty"`
	Code           *CodeableConcept `json:"code,omitempty"`
	Focus          *Reference       `json:"focus,omitempty"`
	For            *Reference       `json:"for,omitempty"`
	AuthoredOn     string           `json:"authoredOn,omitempty"`
	LastModified   string           `json:"lastModified,omitempty"`
	Requester      *Reference       `json:"requester,omitempty"`
	Owner          *Reference       `json:"owner,omitempty"`
	Note           []Annotation     `json:"note,omitempty"`
}

// Communication is an R4 Communication as the hub emits it. Status is
// required and always written.
type Communication struct {
	ResourceType string                 `json:"resourceType"` // "Communication"
	ID           string                 `json:"id,omitempty"`
	Meta         *Meta                  `json:"meta,omitempty"`
	Identifier   []Identifier           `json:"identifier,omitempty"`
	Status       string                 `json:"status"`
	Category     []CodeableConcept      `json:"category,omitempty"`
	Priority     string                 `json:"priority,omitempty"`
	Subject      *Reference             `json:"subject,omitempty"`
	Topic        *CodeableConcept       `json:"topic,omitempty"`
	About        []Reference            `json:"about,omitempty"`
	Sent         string                 `json:"sent,omitempty"`
	Recipient    []Reference            `json:"recipient,omitempty"`
	Sender       *Reference             `json:"sender,omitempty"`
	ReasonCode   []CodeableConcept      `json:"reasonCode,omitempty"`
	Payload      []CommunicationPayload `json:"payload,omitempty"`
}

// CommunicationPayload is one part of a Communication's content; the hub
// sends text only (content[x] as contentString).
type CommunicationPayload struct {
	ContentString string `json:"contentString"`
}

// Meta is a resource's metadata. The hub never sends it; a FHIR server
// answers with it.
type Meta struct {
	VersionID   string `json:"versionId,omitempty"`
	LastUpdated string `json:"lastUpdated,omitempty"`
}

// Reference is an R4 Reference: a literal reference ("ServiceRequest/123"),
// or a logical one by Type and Identifier.
type Reference struct {
	Reference  string      `json:"reference,omitempty"`
	Type       string      `json:"type,omitempty"`
	Identifier *Identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

// Identifier is an R4 Identifier.
type Identifier struct {
	System string `json:"system,omitempty"`
	Value  string `json:"value,omitempty"`
}

// CodeableConcept is an R4 CodeableConcept.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Coding is an R4 Coding.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Annotation is an R4 Annotation (a Task note); Text is required.
type Annotation struct {
	Time string `json:"time,omitempty"`
	Text string `json:"text"`
}

// EmitOptions is what TaskFor and CommunicationFor need beyond the copy.
type EmitOptions struct {
	// Provider is the partner id of the provider that fulfils the orders,
	// written as Task.owner (and as Communication.sender when the event
	// names no reporter). Empty leaves them out.
	Provider string
}

// Errors returned by TaskFor and CommunicationFor; each is wrapped with
// detail. A copy that gives one of them never will give anything else, so a
// caller treats them as permanent.
var (
	// ErrUnsupportedKind: the NHS contract has no resource for this kind
	// of message.
	ErrUnsupportedKind = errors.New("fhir: message kind not emitted to NHS endpoints")
	// ErrFieldNotCarried: the copy names a canonical field the resource
	// has no place for.
	ErrFieldNotCarried = errors.New("fhir: field not carried by the NHS contract")
	// ErrInvalidCopy: the copy lacks what the resource needs, or holds a
	// value it cannot carry.
	ErrInvalidCopy = errors.New("fhir: invalid delivery copy")
)

// taskKinds are the kinds of message that update the referral's Task;
// communicationKinds those sent as a Communication about it.
var (
	taskKinds          = []model.Kind{model.KindReferral, model.KindOrderStatus, model.KindCancellation, model.KindCollection}
	communicationKinds = []model.Kind{model.KindSafeguarding, model.KindEquipmentIssue}
)

// EmittedKinds returns the kinds of message the NHS contract carries: those
// TaskFor maps, then those CommunicationFor maps.
func EmittedKinds() []model.Kind {
	return append(slices.Clone(taskKinds), communicationKinds...)
}

// UpdatesTask reports whether a message of kind k is sent to the requester
// as the referral's Task (TaskFor); the other kinds EmittedKinds names are
// sent as a Communication (CommunicationFor).
func UpdatesTask(k model.Kind) bool { return slices.Contains(taskKinds, k) }

// FieldsFor returns, sorted, the canonical fields the resource emitted for
// a message of kind k can carry; nil for a kind the NHS contract does not
// carry (see EmittedKinds). A route to the requester naming any other field
// is a configuration error. person.nhsNumber may be pseudonymised: the
// pseudonym is written with its own identifier system.
func FieldsFor(k model.Kind) []string {
	switch k {
	case model.KindReferral:
		return []string{"person.nhsNumber", "priority", "requester.organisation"}
	case model.KindOrderStatus, model.KindCancellation, model.KindCollection:
		return []string{"event.description", "event.reason", "event.scheduledDate", "person.nhsNumber", "priority", "requester.organisation"}
	case model.KindSafeguarding, model.KindEquipmentIssue:
		return []string{"event.description", "event.reason", "person.nhsNumber", "requester.organisation"}
	}
	return nil
}

// TaskFor maps one minimised copy of a referral, or of an event about it, to
// the referral's Task: what the hub PUTs at {base}/Task/{id} of the
// requester's endpoint. The status it writes, for the order status the
// message reports or causes (a cancellation: cancelled; a collection
// request: collection-requested):
//
//	ordered (a new referral)   received     businessStatus ordered
//	accepted                   accepted
//	scheduled                  in-progress  the date booked as a note
//	out-for-delivery           in-progress
//	delivered                  completed    installation, if any, follows
//	installed                  completed
//	failed-delivery            on-hold      statusReason: the reason
//	collection-requested       completed    statusReason: the reason; the date booked as a note
//	collected                  completed
//	cancelled                  cancelled    statusReason: the reason
//
// businessStatus is always the order status (system OrderStatusSystem). A
// delivered order is completed because for most equipment delivery is all
// there is; for equipment that needs installing, businessStatus tells
// delivered from installed. The order statuses allowed to follow each other
// (model.CanMove) make every change of Task.status a move forward in FHIR's
// Task lifecycle: a completed or cancelled Task is never reopened, so
// collection (which follows delivery) leaves the Task completed and says so
// in businessStatus, and an equipment issue or a safeguarding concern is
// not a Task update at all but a Communication (CommunicationFor).
//
// TaskFor returns an error wrapping ErrUnsupportedKind, ErrFieldNotCarried
// or ErrInvalidCopy when the copy cannot become a Task. It never changes its
// input.
func TaskFor(d model.Delivery, opts EmitOptions) (Task, error) {
	if !slices.Contains(taskKinds, d.Kind) {
		return Task{}, fmt.Errorf("%w: %q has no Task update", ErrUnsupportedKind, d.Kind)
	}
	if err := checkCarried(d); err != nil {
		return Task{}, err
	}
	r := d.Referral
	if strings.TrimSpace(r.ID) == "" {
		return Task{}, fmt.Errorf("%w: no referral id", ErrInvalidCopy)
	}
	id := d.Refs.TaskID
	if id == "" {
		id = TaskID(r.ID)
	} else if !resourceID.MatchString(id) {
		return Task{}, fmt.Errorf("%w: the Task id is not a FHIR id", ErrInvalidCopy)
	}
	ev := r.Event
	if d.Kind != model.KindReferral && ev == nil {
		return Task{}, fmt.Errorf("%w: a %s message without its event", ErrInvalidCopy, d.Kind)
	}
	st, err := taskStateOf(d.Kind, ev)
	if err != nil {
		return Task{}, err
	}
	patient, err := patientReference(r.Person)
	if err != nil {
		return Task{}, err
	}

	t := Task{
		ResourceType:   "Task",
		ID:             id,
		Identifier:     []Identifier{{System: ReferralIDSystem, Value: r.ID}},
		Status:         st.task,
		BusinessStatus: &CodeableConcept{Coding: []Coding{{System: OrderStatusSystem, Code: st.business, Display: businessDisplay[st.business]}}},
		Intent:         "order",
		Priority:       emitPriority(r.Priority),
		Code:           &CodeableConcept{Coding: []Coding{{System: TaskCodeSystem, Code: "fulfill", Display: "Fulfill the focal request"}}},
		Focus:          serviceRequestReference(d),
		For:            patient,
		AuthoredOn:     emitTime(r.ReceivedAt),
		Requester:      requesterReference(d),
		Owner:          partnerReference(opts.Provider),
	}
	var at string
	if ev != nil {
		at = emitTime(firstSet(ev.OccurredAt, ev.ReceivedAt, r.ReceivedAt))
		t.StatusReason = reasonConcept(ev.Reason, st.reasonSystem)
		if date := emitText(ev.ScheduledDate); date != "" {
			what := "Delivery"
			if st.collection {
				what = "Collection"
			}
			t.Note = append(t.Note, Annotation{Time: at, Text: what + " booked for " + date + "."})
		}
		if text := emitText(ev.Description); text != "" {
			t.Note = append(t.Note, Annotation{Time: at, Text: text})
		}
	} else {
		at = t.AuthoredOn
	}
	t.LastModified = at
	return t, nil
}

// CommunicationFor maps one minimised copy of a safeguarding concern
// (model.KindSafeguarding) or an equipment issue (model.KindEquipmentIssue)
// to the Communication the hub POSTs to {base}/Communication of the
// requester's endpoint: status completed, about the referral's Task and
// ServiceRequest, the person as subject (as in TaskFor), the event's
// description as the payload and its reason as reasonCode when the copy
// holds them, sent when the event happened. Its identifier is the event id
// (EventIDSystem), so that a server can recognise it when it is sent again.
//
// A safeguarding concern is category alert and safeguarding, priority
// urgent. An equipment issue is category notification and equipment-issue,
// priority urgent when the equipment is unsafe and routine otherwise, its
// issue type coded in EquipmentIssueSystem. Neither changes the Task: an
// issue reported after delivery leaves the Task completed.
//
// CommunicationFor returns an error wrapping ErrUnsupportedKind,
// ErrFieldNotCarried or ErrInvalidCopy when the copy cannot become a
// Communication. It never changes its input.
func CommunicationFor(d model.Delivery, opts EmitOptions) (Communication, error) {
	if !slices.Contains(communicationKinds, d.Kind) {
		return Communication{}, fmt.Errorf("%w: %q is not sent as a Communication", ErrUnsupportedKind, d.Kind)
	}
	if err := checkCarried(d); err != nil {
		return Communication{}, err
	}
	r := d.Referral
	if strings.TrimSpace(r.ID) == "" {
		return Communication{}, fmt.Errorf("%w: no referral id", ErrInvalidCopy)
	}
	ev := r.Event
	if ev == nil {
		return Communication{}, fmt.Errorf("%w: a %s message without its event", ErrInvalidCopy, d.Kind)
	}
	if emitText(ev.ID) == "" {
		return Communication{}, fmt.Errorf("%w: the event has no id", ErrInvalidCopy)
	}
	patient, err := patientReference(r.Person)
	if err != nil {
		return Communication{}, err
	}
	c := Communication{
		ResourceType: "Communication",
		Identifier:   []Identifier{{System: EventIDSystem, Value: emitText(ev.ID)}},
		Status:       "completed",
		Subject:      patient,
		About: []Reference{
			{Type: "Task", Identifier: &Identifier{System: ReferralIDSystem, Value: r.ID}},
			*serviceRequestReference(d),
		},
		Sent: emitTime(firstSet(ev.OccurredAt, ev.ReceivedAt)),
	}
	reasonSystem := SafeguardingReasonSystem
	if d.Kind == model.KindSafeguarding {
		c.Category = []CodeableConcept{
			{Coding: []Coding{{System: CommunicationCategorySystem, Code: "alert", Display: "Alert"}}},
			{Coding: []Coding{{System: ICESCommunicationCategorySystem, Code: "safeguarding", Display: "Safeguarding concern"}}},
		}
		c.Priority = "urgent"
		c.Topic = &CodeableConcept{Text: "Safeguarding concern raised about the person this equipment referral is for"}
	} else {
		c.Category = []CodeableConcept{
			{Coding: []Coding{{System: CommunicationCategorySystem, Code: "notification", Display: "Notification"}}},
			{Coding: []Coding{{System: ICESCommunicationCategorySystem, Code: "equipment-issue", Display: "Equipment issue"}}},
		}
		c.Priority = "routine"
		if emitText(ev.Reason.Code) == model.IssueUnsafe {
			c.Priority = "urgent"
		}
		c.Topic = &CodeableConcept{Text: "Equipment issue reported about the equipment ordered for this person"}
		reasonSystem = EquipmentIssueSystem
	}
	if req := requesterReference(d); req != nil {
		c.Recipient = []Reference{*req}
	}
	sender := opts.Provider
	if from := emitText(ev.From); from != "" && from != "nhs" {
		sender = from
	}
	c.Sender = partnerReference(sender)
	if rc := reasonConcept(ev.Reason, reasonSystem); rc != nil {
		c.ReasonCode = []CodeableConcept{*rc}
	}
	if text := emitText(ev.Description); text != "" {
		c.Payload = []CommunicationPayload{{ContentString: text}}
	}
	return c, nil
}

// TaskFields returns the disclosure record of t, the Task TaskFor made of
// d: the labels of the canonical fields t holds, with the transform d's
// Fields give them (model.SentLabels). It reads t, and for the notes the
// same test TaskFor applied to the event, never the route's list, so a
// field the copy does not hold is not recorded. The requesting
// organisation is recorded whenever t names it, even when it came from
// d.Refs rather than the copy.
func TaskFields(d model.Delivery, t Task) []string {
	ev := d.Referral.Event
	out := model.SentLabels(d.Fields, func(f string) bool {
		switch f {
		case "person.nhsNumber":
			return t.For != nil
		case "priority":
			return t.Priority != ""
		case "requester.organisation":
			return t.Requester != nil
		case "event.reason":
			return t.StatusReason != nil
		case "event.scheduledDate": // emitText is empty just when this is
			return ev != nil && strings.TrimSpace(ev.ScheduledDate) != ""
		case "event.description":
			return ev != nil && strings.TrimSpace(ev.Description) != ""
		}
		return false
	})
	return withRequester(out, t.Requester != nil)
}

// CommunicationFields returns the disclosure record of c, the
// Communication CommunicationFor made of d, as TaskFields does for a Task.
func CommunicationFields(d model.Delivery, c Communication) []string {
	out := model.SentLabels(d.Fields, func(f string) bool {
		switch f {
		case "person.nhsNumber":
			return c.Subject != nil
		case "requester.organisation":
			return len(c.Recipient) > 0
		case "event.reason":
			return len(c.ReasonCode) > 0
		case "event.description":
			return len(c.Payload) > 0
		}
		return false
	})
	return withRequester(out, len(c.Recipient) > 0)
}

// withRequester adds requester.organisation to a record that lacks it
// when the resource names the organisation anyway (its ODS code from
// the copy's Refs): what was sent is recorded, whatever the route named.
func withRequester(labels []string, named bool) []string {
	if !named {
		return labels
	}
	for _, l := range labels {
		if f, _ := model.ParseFieldLabel(l); f == "requester.organisation" {
			return labels
		}
	}
	return append(labels, "requester.organisation")
}

// IfNoneExist returns the value of the If-None-Exist header that makes the
// POST of c a conditional create: a server that already holds a
// Communication with c's identifier answers with it and creates nothing.
// Empty when c has no identifier.
func IfNoneExist(c Communication) string {
	if len(c.Identifier) == 0 {
		return ""
	}
	id := c.Identifier[0]
	return url.Values{"identifier": {id.System + "|" + id.Value}}.Encode()
}

// checkCarried refuses a copy that names a field the resource cannot carry.
func checkCarried(d model.Delivery) error {
	carried := FieldsFor(d.Kind)
	for _, label := range d.Fields {
		if f, _ := model.ParseFieldLabel(label); !slices.Contains(carried, f) {
			return fmt.Errorf("%w: %s in a %s message", ErrFieldNotCarried, f, d.Kind)
		}
	}
	return nil
}

// taskState is where a Task stands after a message.
type taskState struct {
	task, business string
	// reasonSystem codes a bare reason code.
	reasonSystem string
	// collection: a booked date is a collection date.
	collection bool
}

// taskStatus maps each order status to a Task status (see TaskFor).
var taskStatus = map[model.OrderStatus]string{
	model.StatusOrdered:             "received",
	model.StatusAccepted:            "accepted",
	model.StatusScheduled:           "in-progress",
	model.StatusOutForDelivery:      "in-progress",
	model.StatusDelivered:           "completed",
	model.StatusInstalled:           "completed",
	model.StatusFailedDelivery:      "on-hold",
	model.StatusCollectionRequested: "completed",
	model.StatusCollected:           "completed",
	model.StatusCancelled:           "cancelled",
}

var businessDisplay = map[string]string{
	string(model.StatusOrdered):             "Ordered",
	string(model.StatusAccepted):            "Accepted by the provider",
	string(model.StatusScheduled):           "Delivery scheduled",
	string(model.StatusOutForDelivery):      "Out for delivery",
	string(model.StatusDelivered):           "Delivered",
	string(model.StatusInstalled):           "Installed",
	string(model.StatusFailedDelivery):      "Delivery failed",
	string(model.StatusCollectionRequested): "Collection requested",
	string(model.StatusCollected):           "Collected",
	string(model.StatusCancelled):           "Cancelled",
}

func taskStateOf(k model.Kind, ev *model.Event) (taskState, error) {
	status := model.StatusOrdered
	if ev != nil && ev.Status != "" {
		if !ev.Status.Valid() {
			return taskState{}, fmt.Errorf("%w: unknown order status %q", ErrInvalidCopy, ev.Status)
		}
		status = ev.Status
	}
	switch k {
	case model.KindOrderStatus:
		if ev.Status == "" {
			return taskState{}, fmt.Errorf("%w: an order status message without a status", ErrInvalidCopy)
		}
	case model.KindCancellation:
		status = model.StatusCancelled
	case model.KindCollection:
		if status != model.StatusCollected {
			status = model.StatusCollectionRequested
		}
	}
	st := taskState{task: taskStatus[status], business: string(status), reasonSystem: StatusReasonSystem}
	switch status {
	case model.StatusFailedDelivery:
		st.reasonSystem = FailedDeliveryReasonSystem
	case model.StatusCancelled:
		st.reasonSystem = CancellationReasonSystem
	case model.StatusCollectionRequested, model.StatusCollected:
		st.reasonSystem, st.collection = CollectionReasonSystem, true
	}
	return st, nil
}

// resourceID is the R4 id datatype.
var resourceID = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// serviceRequestReference returns the Task's focus. A plain id, a relative
// ServiceRequest/id or an absolute URL of a ServiceRequest becomes a literal
// reference; a urn:uuid (a fullUrl that means something only inside the
// Bundle the referral came in) or nothing at all becomes a logical reference
// by the hub's referral id, which the requester finds in the Task's own
// identifier.
func serviceRequestReference(d model.Delivery) *Reference {
	id := strings.TrimSpace(d.Refs.ServiceRequestID)
	if id == "" {
		id = strings.TrimSpace(d.Referral.Source.ServiceRequestID)
	}
	switch {
	case resourceID.MatchString(id):
		return &Reference{Reference: "ServiceRequest/" + id}
	case strings.HasPrefix(id, "ServiceRequest/") && resourceID.MatchString(strings.TrimPrefix(id, "ServiceRequest/")):
		return &Reference{Reference: id}
	case absoluteServiceRequest(id):
		return &Reference{Reference: id}
	}
	return &Reference{Type: "ServiceRequest", Identifier: &Identifier{System: ReferralIDSystem, Value: d.Referral.ID}}
}

func absoluteServiceRequest(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	parts := strings.Split(strings.TrimSuffix(u.Path, "/"), "/")
	n := len(parts)
	return n >= 2 && parts[n-2] == "ServiceRequest" && resourceID.MatchString(parts[n-1])
}

// patientReference is the person as a logical reference: by NHS number when
// the copy holds it, by pseudonym (with its own system) when the route
// pseudonymised it, nil when the copy holds neither.
func patientReference(p model.Person) (*Reference, error) {
	if n := emitText(p.NHSNumber); n != "" {
		return &Reference{Type: "Patient", Identifier: &Identifier{System: nhsnumber.System, Value: n}}, nil
	}
	if ps := emitText(p.Pseudonym); ps != "" {
		system := emitText(p.PseudonymSystem)
		if system == "" {
			system = model.PseudonymSystem
		}
		if strings.EqualFold(system, nhsnumber.System) {
			return nil, fmt.Errorf("%w: a pseudonym in the NHS number system", ErrInvalidCopy)
		}
		return &Reference{Type: "Patient", Identifier: &Identifier{System: system, Value: ps}}, nil
	}
	return nil, nil
}

// requesterReference is the requesting organisation by ODS code: the
// copy's when it holds requester.organisation, else the cross-reference's
// (an ODS code is no personal data, and the recipient is that very
// organisation). The name is written only when the copy holds it.
func requesterReference(d model.Delivery) *Reference {
	ods := emitText(d.Referral.Requester.OrganisationODS)
	if ods == "" {
		ods = emitText(d.Refs.RequesterODS)
	}
	if ods == "" {
		return nil
	}
	return &Reference{Type: "Organization", Identifier: &Identifier{System: ODSSystem, Value: ods},
		Display: emitText(d.Referral.Requester.OrganisationName)}
}

func partnerReference(id string) *Reference {
	if id = emitText(id); id == "" {
		return nil
	}
	return &Reference{Type: "Organization", Identifier: &Identifier{System: PartnerIDSystem, Value: id}}
}

// reasonConcept is a reason as a CodeableConcept, a bare code put in
// system; nil when the copy holds no reason.
func reasonConcept(c model.Coded, system string) *CodeableConcept {
	code, display := emitText(c.Code), emitText(c.Display)
	if code == "" && display == "" {
		return nil
	}
	out := &CodeableConcept{Text: display}
	if code != "" {
		if s := emitText(c.System); s != "" {
			system = s
		}
		out.Coding = []Coding{{System: system, Code: code, Display: display}}
	}
	return out
}

var emitPriorities = map[model.Priority]bool{model.PriorityRoutine: true, model.PriorityUrgent: true, model.PriorityASAP: true, model.PriorityStat: true}

func emitPriority(p model.Priority) string {
	if emitPriorities[p] {
		return string(p)
	}
	return ""
}

// instant writes t as an R4 dateTime in UTC; empty for the zero time.
func emitTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func firstSet(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// clean trims s and collapses runs of white space, so that no string the
// hub writes breaks R4's string and code rules (no leading or trailing
// white space, not empty). Line breaks in free text are kept.
func emitText(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}
