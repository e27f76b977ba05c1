package crm

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/model"
)

const timeFormat = "2006-01-02T15:04:05Z07:00"

// Paths of the council case API, under the council's base URL. The
// {caseReference} segment is the council's case reference, escaped.
const (
	CasesPath        = "/cases"
	NotesPath        = "/cases/{caseReference}/notes"
	caseReferenceVar = "{caseReference}"
)

// The safeguarding case: a case of its own type, urgent, for the council of
// the person's address (F4).
const (
	CaseTypeSafeguarding = "ices-safeguarding"
	StatusConcernRaised  = "concern-raised"
	// TitleSafeguarding holds no personal data: titles show in case lists.
	TitleSafeguarding = "ICES safeguarding concern"
	PriorityUrgent    = "urgent"
)

// Note types: what a note on a case reports.
const (
	NoteTypeOrderStatus    = "order-status"
	NoteTypeEquipmentIssue = "equipment-issue"
	NoteTypeCollection     = "collection"
	NoteTypeCancellation   = "cancellation"
	NoteTypeComplaintReply = "complaint-reply"
)

// Named note fields. Each is present only when the copy holds it.
const (
	NoteFieldScheduledDate      = "scheduledDate" // YYYY-MM-DD
	NoteFieldReasonCode         = "reasonCode"
	NoteFieldReasonText         = "reasonText"
	NoteFieldDescription        = "description"
	NoteFieldReportedBy         = "reportedBy"         // partner id, or nhs
	NoteFieldOrderReference     = "orderReference"     // the provider's order reference
	NoteFieldComplaintReference = "complaintReference" // on a complaint reply
	NoteFieldReply              = "reply"
)

// NoteFieldNames returns every named field a note may hold, sorted.
func NoteFieldNames() []string {
	names := []string{NoteFieldScheduledDate, NoteFieldReasonCode, NoteFieldReasonText, NoteFieldDescription,
		NoteFieldReportedBy, NoteFieldOrderReference, NoteFieldComplaintReference, NoteFieldReply}
	slices.Sort(names)
	return names
}

// NoteTypes returns every note type.
func NoteTypes() []string {
	return []string{NoteTypeOrderStatus, NoteTypeEquipmentIssue, NoteTypeCollection, NoteTypeCancellation, NoteTypeComplaintReply}
}

// AddNoteRequest is the body of POST /cases/{caseReference}/notes: what
// happened to the order (or the provider's reply to a complaint), as a note
// on the council's case.
type AddNoteRequest struct {
	// Type is one of the NoteType constants.
	Type string `json:"type"`
	// ExternalReference is the hub's referral id.
	ExternalReference string `json:"externalReference"`
	// Text is the note as a council officer reads it, built only from what
	// the copy holds ("Delivery failed: no access (no answer at the
	// door)").
	Text string `json:"text"`
	// OccurredAt is when it happened (RFC 3339, UTC).
	OccurredAt string `json:"occurredAt"`
	// Status is the order's status after it, when the event changed it.
	Status string `json:"status,omitempty"`
	// CorrelationID is the NHS sender's X-Correlation-ID, carried through.
	CorrelationID string `json:"correlationId,omitempty"`
	// Fields are the note's named fields (see the NoteField constants).
	Fields map[string]string `json:"fields,omitempty"`
}

// NoteAdded is the council's answer to a note (201 new, 200 repeated key).
type NoteAdded struct {
	// NoteID is the council's id of the note.
	NoteID string `json:"noteId"`
}

// DecodeNoteAdded reads the council's answer to a note. The hub needs
// nothing from it to carry on, so it is lenient: an answer it cannot read
// gives a NoteAdded without NoteID, never an error.
func DecodeNoteAdded(body []byte) NoteAdded {
	var n NoteAdded
	if err := json.Unmarshal(body, &n); err != nil || !referencePattern.MatchString(n.NoteID) {
		return NoteAdded{}
	}
	return n
}

// Request is one call of the council case API, mapped from a copy.
type Request struct {
	// Path is the escaped path under the council's base URL. It holds no
	// personal data.
	Path string
	// Body is a CreateCaseRequest or an AddNoteRequest.
	Body any
	// CreatesCase reports that the answer is a CaseCreated (a new case),
	// not a NoteAdded.
	CreatesCase bool
	// Fields are the labels of the canonical fields Body holds, with the
	// transform the copy's Fields give them (model.SentLabels): what the
	// disclosure record of this request lists. A field the route allows
	// but the copy does not hold is not there.
	Fields []string
}

// heldIn names, per canonical field, the named case or note fields that
// carry it; the others (references, times, who reported) are operational.
// The postcode is part of the address: it counts for person.address too.
var heldIn = map[string][]string{
	"person.nhsNumber":       {FieldNHSNumber, FieldPseudonym, FieldPseudonymSystem},
	"person.name":            {FieldPersonName, FieldPersonFamilyName, FieldPersonGivenNames},
	"person.birthDate":       {FieldBirthDate, FieldAgeBand},
	"person.gender":          {FieldGender},
	"person.address":         {FieldAddress, FieldPostcode},
	"person.postcode":        {FieldPostcode},
	"person.telecom":         {FieldPersonContacts},
	"requester.organisation": {FieldRequesterOrganisationODS, FieldRequesterOrganisationName},
	"requester.practitioner": {FieldRequesterPractitioner},
	"requester.contact":      {FieldRequesterContacts},
	"priority":               {FieldPriority},
	"deliverySetting":        {FieldDeliverySetting, FieldDeliverySettingName},
	"accessNotes":            {FieldAccessNotes},
	"equipment":              {FieldEquipmentLineCount, FieldEquipmentSummary},
	"event.scheduledDate":    {NoteFieldScheduledDate},
	"event.reason":           {FieldSafeguardingCategory, FieldSafeguardingCategoryText, NoteFieldReasonCode, NoteFieldReasonText},
	"event.description":      {NoteFieldDescription},
	"complaint.reply":        {NoteFieldReply},
}

// sentFields returns the labels of the canonical fields the named fields
// in f hold, and also (free text that a case's note carries beside its
// named fields), with the transforms d's Fields give them.
func sentFields(d model.Delivery, f map[string]string, also string) []string {
	return model.SentLabels(d.Fields, func(field string) bool {
		if field == also {
			return true
		}
		for _, name := range heldIn[field] {
			if _, ok := f[name]; ok {
				return true
			}
		}
		return false
	})
}

// ErrNoCaseReference is wrapped by Outbound for a note on a case the hub
// holds no reference of: the council's case for the order was never
// created (or its answer never recorded).
var ErrNoCaseReference = errors.New("crm: no case reference: the council's case was never created")

var (
	safeguardingCarried = append(slices.Clone(carried), "event.description", "event.reason")
	fieldsFor           = map[model.Kind][]string{
		model.KindReferral:       carried,
		model.KindSafeguarding:   sorted(safeguardingCarried),
		model.KindOrderStatus:    {"event.reason", "event.scheduledDate"},
		model.KindEquipmentIssue: {"event.description", "event.reason"},
		model.KindCollection:     {"event.description", "event.reason"},
		model.KindCancellation:   {"event.description", "event.reason"},
		model.KindComplaintReply: {"complaint.reply"},
	}
)

func sorted(s []string) []string { slices.Sort(s); return s }

// FieldsFor returns the canonical fields the case contract can carry in a
// message of kind k, sorted; nil for a kind councils never receive. A route
// to a council naming any other field is a configuration error.
func FieldsFor(k model.Kind) []string { return slices.Clone(fieldsFor[k]) }

// Kinds returns the kinds of message the case contract can carry.
func Kinds() []model.Kind {
	return []model.Kind{model.KindReferral, model.KindSafeguarding, model.KindOrderStatus, model.KindEquipmentIssue,
		model.KindCollection, model.KindCancellation, model.KindComplaintReply}
}

// Outbound maps one minimised copy to the request the council receives for
// its kind: the equipment order case (POST /cases), a safeguarding case
// (POST /cases, urgent, of its own type, related to the order case), or a
// note on the order case d.Refs.CaseReference names (order status,
// equipment issue, collection, cancellation) or on the complaint case the
// complaint reply answers. It returns an error wrapping ErrUnsupportedKind,
// ErrFieldNotCarried, ErrInvalidCopy or ErrNoCaseReference when the copy
// cannot become a request; such a copy never will as it stands, so the error
// is permanent. It never changes its input.
func Outbound(d model.Delivery) (Request, error) {
	if d.Kind == model.KindReferral {
		c, err := CaseUpdate(d)
		if err != nil {
			return Request{}, err
		}
		return Request{Path: CasesPath, Body: c, CreatesCase: true, Fields: sentFields(d, c.Fields, "")}, nil
	}
	allowed, ok := fieldsFor[d.Kind]
	if !ok {
		return Request{}, fmt.Errorf("%w %q", ErrUnsupportedKind, d.Kind)
	}
	for _, label := range d.Fields {
		if f, _ := model.ParseFieldLabel(label); !slices.Contains(allowed, f) {
			return Request{}, fmt.Errorf("%w: %s", ErrFieldNotCarried, f)
		}
	}
	r := d.Referral
	if strings.TrimSpace(r.ID) == "" {
		return Request{}, fmt.Errorf("%w: no referral id", ErrInvalidCopy)
	}
	ev := r.Event
	if ev == nil || ev.Kind != d.Kind {
		return Request{}, fmt.Errorf("%w: a %s copy without its event", ErrInvalidCopy, d.Kind)
	}
	if ev.OccurredAt.IsZero() {
		return Request{}, fmt.Errorf("%w: the event has no time", ErrInvalidCopy)
	}
	if d.Kind == model.KindSafeguarding {
		if err := notCarried(r, true); err != nil {
			return Request{}, err
		}
		c := safeguardingCase(d)
		also := ""
		if strings.TrimSpace(ev.Description) != "" { // in the case's note (withDetail)
			also = "event.description"
		}
		return Request{Path: CasesPath, Body: c, CreatesCase: true, Fields: sentFields(d, c.Fields, also)}, nil
	}
	// A note carries the event only: the person is on the case already.
	if !personless(r) {
		return Request{}, fmt.Errorf("%w: a note carries no referral fields", ErrFieldNotCarried)
	}
	if c := ev.Complaint; c != nil && (c.Category != "" || c.Summary != "" || len(c.Contact) > 0) {
		return Request{}, fmt.Errorf("%w: complaint", ErrFieldNotCarried)
	}
	caseRef := d.Refs.CaseReference
	if d.Kind == model.KindComplaintReply {
		if ev.Complaint == nil || ev.Complaint.Reference == "" {
			return Request{}, fmt.Errorf("%w: a complaint reply without the complaint's reference", ErrInvalidCopy)
		}
		// Never put a reply on another council's case.
		if ev.Complaint.Council != "" && ev.Complaint.Council != d.Recipient {
			return Request{}, fmt.Errorf("%w: the complaint was raised by another council", ErrInvalidCopy)
		}
		caseRef = ev.Complaint.Reference
	}
	if caseRef == "" {
		return Request{}, ErrNoCaseReference
	}
	if !referencePattern.MatchString(caseRef) {
		return Request{}, fmt.Errorf("%w: the case reference is not a short token", ErrInvalidCopy)
	}
	n := note(d)
	return Request{Path: strings.Replace(NotesPath, caseReferenceVar, url.PathEscape(caseRef), 1), Body: n, Fields: sentFields(d, n.Fields, "")}, nil
}

// personless reports whether a copy holds nothing of the referral itself.
func personless(r model.Referral) bool {
	f := referralFields(r)
	delete(f, FieldReferralReceivedAt) // operational: every copy keeps it
	return len(f) == 0 && notCarried(r, true) == nil
}

func note(d model.Delivery) AddNoteRequest {
	// Only what this kind of note carries, even from a copy cut by hand.
	carries := func(field string) bool { return slices.Contains(fieldsFor[d.Kind], field) }
	e := d.Referral.Event
	ev := &model.Event{Kind: e.Kind, From: e.From, OccurredAt: e.OccurredAt, Status: e.Status, Complaint: e.Complaint}
	if carries("event.scheduledDate") {
		ev.ScheduledDate = e.ScheduledDate
	}
	if carries("event.reason") {
		ev.Reason = e.Reason
	}
	if carries("event.description") {
		ev.Description = e.Description
	}
	f := map[string]string{}
	set := setter(f)
	set(NoteFieldScheduledDate, ev.ScheduledDate)
	set(NoteFieldReasonCode, ev.Reason.Code)
	set(NoteFieldReasonText, ev.Reason.Display)
	set(NoteFieldDescription, ev.Description)
	set(NoteFieldReportedBy, ev.From)
	set(NoteFieldOrderReference, d.Refs.OrderReference)
	n := AddNoteRequest{
		ExternalReference: d.Referral.ID,
		OccurredAt:        ev.OccurredAt.UTC().Format(timeFormat),
		Status:            string(ev.Status),
		CorrelationID:     d.Referral.Source.CorrelationID,
	}
	switch d.Kind {
	case model.KindOrderStatus:
		n.Type, n.Text = NoteTypeOrderStatus, statusText(ev)
	case model.KindEquipmentIssue:
		n.Type = NoteTypeEquipmentIssue
		n.Text = withDetail("Equipment issue reported by the provider", label(ev.Reason.Code, issueLabels), "", ev.Description)
	case model.KindCollection:
		n.Type = NoteTypeCollection
		n.Text = withDetail("Collection of the equipment requested", label(ev.Reason.Code, collectionLabels), ev.Reason.Display, ev.Description)
	case model.KindCancellation:
		n.Type = NoteTypeCancellation
		n.Text = withDetail("Order cancelled", label(ev.Reason.Code, nil), ev.Reason.Display, ev.Description)
	case model.KindComplaintReply:
		n.Type = NoteTypeComplaintReply
		set(NoteFieldComplaintReference, ev.Complaint.Reference)
		set(NoteFieldReply, ev.Complaint.Reply)
		n.Text = "The provider replied to complaint " + ev.Complaint.Reference
		if reply := strings.TrimSpace(ev.Complaint.Reply); reply != "" {
			n.Text += ": " + reply
		}
	}
	if len(f) > 0 {
		n.Fields = f
	}
	return n
}

func safeguardingCase(d model.Delivery) CreateCaseRequest {
	r, ev := d.Referral, d.Referral.Event
	f := referralFields(r)
	set := setter(f)
	set(FieldSafeguardingCategory, ev.Reason.Code)
	set(FieldSafeguardingCategoryText, ev.Reason.Display)
	set(FieldConcernRaisedAt, ev.OccurredAt.UTC().Format(timeFormat))
	set(FieldReportedBy, ev.From)
	set(FieldOrderReference, d.Refs.OrderReference)
	text := withDetail("Safeguarding concern raised by "+reporter(ev.From), label(ev.Reason.Code, nil), ev.Reason.Display, ev.Description)
	return CreateCaseRequest{
		CaseType:          CaseTypeSafeguarding,
		ExternalReference: r.ID,
		Status:            StatusConcernRaised,
		Title:             TitleSafeguarding,
		Priority:          PriorityUrgent,
		// Empty when the order case was never created: the concern must
		// not wait for it.
		RelatedReference: d.Refs.CaseReference,
		CorrelationID:    r.Source.CorrelationID,
		Fields:           f,
		Notes:            []Note{{Text: text}},
	}
}

var (
	statusTexts = map[model.OrderStatus]string{
		model.StatusAccepted:            "Order accepted by the provider",
		model.StatusScheduled:           "Delivery scheduled",
		model.StatusOutForDelivery:      "Equipment out for delivery",
		model.StatusDelivered:           "Equipment delivered",
		model.StatusInstalled:           "Equipment installed",
		model.StatusFailedDelivery:      "Delivery failed",
		model.StatusCollectionRequested: "Collection of the equipment requested",
		model.StatusCollected:           "Equipment collected",
		model.StatusCancelled:           "Order cancelled",
	}
	// Labels of the codes the hub knows; any other code is shown with its
	// hyphens as spaces.
	failureLabels = map[string]string{
		"no-access": "no access", "refused": "refused at the door", "wrong-address": "wrong address",
		"not-ready": "home not ready", "equipment-unavailable": "equipment unavailable",
	}
	issueLabels      = map[string]string{model.IssueFailedInstallation: "failed installation"}
	collectionLabels = map[string]string{
		model.CollectionNoLongerNeeded: "no longer needed", model.CollectionMoved: "the person has moved",
		model.CollectionDied: "the person has died",
	}
)

// statusText is an order status event as a sentence.
func statusText(ev *model.Event) string {
	head, ok := statusTexts[ev.Status]
	if !ok {
		head = "Order status: " + string(ev.Status)
	}
	if ev.ScheduledDate != "" {
		if t, err := time.Parse(time.DateOnly, ev.ScheduledDate); err == nil {
			head += " for " + t.Format("Monday 2 January 2006")
		}
	}
	labels := failureLabels
	if ev.Status == model.StatusCollectionRequested {
		labels = collectionLabels
	}
	return withDetail(head, label(ev.Reason.Code, labels), ev.Reason.Display, ev.Description)
}

// withDetail is "head: reason (reason text). description", leaving out what
// is empty.
func withDetail(head, reason, reasonText, description string) string {
	reasonText = strings.TrimSpace(reasonText)
	same := func(a, b string) bool {
		return strings.EqualFold(strings.ReplaceAll(a, "-", " "), strings.ReplaceAll(b, "-", " "))
	}
	switch {
	case reason != "" && reasonText != "" && same(reason, reasonText):
		head += ": " + reasonText // the sender's own words for the code
	case reason != "" && reasonText != "":
		head += ": " + reason + " (" + reasonText + ")"
	case reason != "":
		head += ": " + reason
	case reasonText != "":
		head += ": " + reasonText
	}
	if description = strings.TrimSpace(description); description != "" {
		head += ". " + description
	}
	return head
}

func label(code string, labels map[string]string) string {
	if l, ok := labels[code]; ok {
		return l
	}
	return strings.ReplaceAll(code, "-", " ")
}

// reporter names who raised a concern: the provider, unless it was the NHS.
func reporter(from string) string {
	if from == "nhs" {
		return "the NHS"
	}
	return "the equipment provider"
}
