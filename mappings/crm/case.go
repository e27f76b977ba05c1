// Package crm maps the hub's canonical model to the council case API the hub
// defines (adapters/crm/openapi.yaml) and back. It is pure: no I/O, no
// logging, no clock.
//
// CaseUpdate receives the council's minimised copy (model.Delivery), never
// the full record, and maps exactly what the copy holds into named case
// fields: a field the copy does not hold is absent from the case. It never
// changes its input.
package crm

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/iceshub/iceshub/internal/model"
)

// Case types, statuses and notes the hub uses.
const (
	// CaseTypeEquipmentOrder is the case type of an ICES equipment order.
	CaseTypeEquipmentOrder = "ices-equipment-order"
	// StatusOrderPlaced: the hub has placed the order with the provider.
	StatusOrderPlaced = "order-placed"
	// TitleEquipmentOrder is the case title. It holds no personal data,
	// because titles show in case lists and notifications.
	TitleEquipmentOrder = "ICES equipment order placed"
	// NoteOrderPlaced is the case's first note.
	NoteOrderPlaced = "Equipment order placed with the provider"
)

// Named case fields. Each is present only when the hub's copy holds it.
const (
	FieldNHSNumber                 = "nhsNumber"
	FieldPseudonym                 = "pseudonym"        // a pseudonym of the NHS number, never an NHS number
	FieldPseudonymSystem           = "pseudonymSystem"  // the identifier system of the pseudonym
	FieldAgeBand                   = "ageBand"          // such as "75-84", instead of birthDate
	FieldPersonName                = "personName"       // the full name as written, or prefix, given and family names joined
	FieldPersonFamilyName          = "personFamilyName" //
	FieldPersonGivenNames          = "personGivenNames" // space-separated
	FieldBirthDate                 = "birthDate"        // YYYY, YYYY-MM or YYYY-MM-DD, as the referrer sent it
	FieldGender                    = "gender"
	FieldAddress                   = "address" // lines, city and district, comma-separated, without the postcode
	FieldPostcode                  = "postcode"
	FieldPersonContacts            = "personContacts" // "system (use): value", semicolon-separated
	FieldRequesterOrganisationODS  = "requesterOrganisationOds"
	FieldRequesterOrganisationName = "requesterOrganisationName"
	FieldRequesterPractitioner     = "requesterPractitioner"
	FieldRequesterContacts         = "requesterContacts"
	FieldPriority                  = "priority" // routine, urgent, asap or stat
	FieldDeliverySetting           = "deliverySetting"
	FieldDeliverySettingName       = "deliverySettingName"
	FieldAccessNotes               = "accessNotes"
	FieldEquipmentLineCount        = "equipmentLineCount" // decimal
	FieldEquipmentSummary          = "equipmentSummary"   // "quantity x description", semicolon-separated
	FieldReferralReceivedAt        = "referralReceivedAt" // RFC 3339, UTC

	// Fields of a safeguarding case, beside the person's.
	FieldSafeguardingCategory     = "safeguardingCategory"     // a code such as self-neglect, when the provider gave one
	FieldSafeguardingCategoryText = "safeguardingCategoryText" // the provider's words for it
	FieldConcernRaisedAt          = "concernRaisedAt"          // RFC 3339, UTC
	FieldReportedBy               = "reportedBy"               // partner id of who raised it
	FieldOrderReference           = "orderReference"           // the provider's order reference
)

// CaseFieldNames returns every named field a case may hold, sorted.
func CaseFieldNames() []string {
	names := []string{
		FieldNHSNumber, FieldPseudonym, FieldPseudonymSystem, FieldAgeBand, FieldPersonName, FieldPersonFamilyName, FieldPersonGivenNames, FieldBirthDate, FieldGender,
		FieldAddress, FieldPostcode, FieldPersonContacts, FieldRequesterOrganisationODS, FieldRequesterOrganisationName,
		FieldRequesterPractitioner, FieldRequesterContacts, FieldPriority, FieldDeliverySetting, FieldDeliverySettingName,
		FieldAccessNotes, FieldEquipmentLineCount, FieldEquipmentSummary, FieldReferralReceivedAt,
		FieldSafeguardingCategory, FieldSafeguardingCategoryText, FieldConcernRaisedAt, FieldReportedBy, FieldOrderReference,
	}
	slices.Sort(names)
	return names
}

// CreateCaseRequest is the body of POST /cases.
type CreateCaseRequest struct {
	CaseType string `json:"caseType"`
	// ExternalReference is the hub's referral id; the council quotes it in
	// anything it sends back, and may search by it.
	ExternalReference string `json:"externalReference"`
	Status            string `json:"status"`
	Title             string `json:"title"`
	// Priority is "urgent" for a case that must be looked at the same day
	// (a safeguarding concern); absent for a routine one.
	Priority string `json:"priority,omitempty"`
	// RelatedReference is the council's reference of a case this one is
	// about: the equipment order case of a safeguarding concern.
	RelatedReference string `json:"relatedReference,omitempty"`
	// CorrelationID is the NHS sender's X-Correlation-ID, carried through.
	CorrelationID string `json:"correlationId,omitempty"`
	// Fields are the case's named fields (see the Field constants).
	Fields map[string]string `json:"fields,omitempty"`
	Notes  []Note            `json:"notes,omitempty"`
}

// Note is a case note.
type Note struct {
	Text string `json:"text"`
}

// Errors returned by CaseUpdate; each is wrapped with detail.
var (
	// ErrUnsupportedKind: the case contract has no request for this kind
	// of message.
	ErrUnsupportedKind = errors.New("crm: unsupported message kind")
	// ErrFieldNotCarried: the copy names a canonical field the case
	// contract has no place for (clinical details are never put on a
	// council case).
	ErrFieldNotCarried = errors.New("crm: field not carried by the case contract")
	// ErrInvalidCopy: the copy lacks what every case needs.
	ErrInvalidCopy = errors.New("crm: invalid delivery copy")
)

// carried lists the canonical fields a case can carry.
var carried = []string{
	"accessNotes", "deliverySetting", "equipment", "person.address", "person.birthDate", "person.gender",
	"person.name", "person.nhsNumber", "person.postcode", "person.telecom", "priority",
	"requester.contact", "requester.organisation", "requester.practitioner",
}

// Fields returns the canonical fields a case can carry, sorted. A route to a
// council naming any other field is a configuration error.
func Fields() []string { return slices.Clone(carried) }

// CaseUpdate maps the council's minimised copy of a referral to a new case
// recording that the equipment order was placed. It returns an error
// wrapping ErrUnsupportedKind, ErrFieldNotCarried or ErrInvalidCopy when the
// copy cannot become a case; such a copy never will, so the error is
// permanent.
func CaseUpdate(d model.Delivery) (CreateCaseRequest, error) {
	if d.Kind != model.KindReferral {
		return CreateCaseRequest{}, fmt.Errorf("%w %q", ErrUnsupportedKind, d.Kind)
	}
	for _, label := range d.Fields {
		if f, _ := model.ParseFieldLabel(label); !slices.Contains(carried, f) {
			return CreateCaseRequest{}, fmt.Errorf("%w: %s", ErrFieldNotCarried, f)
		}
	}
	r := d.Referral
	if strings.TrimSpace(r.ID) == "" {
		return CreateCaseRequest{}, fmt.Errorf("%w: no referral id", ErrInvalidCopy)
	}
	if err := notCarried(r, false); err != nil {
		return CreateCaseRequest{}, err
	}

	f := referralFields(r)
	c := CreateCaseRequest{
		CaseType:          CaseTypeEquipmentOrder,
		ExternalReference: r.ID,
		Status:            StatusOrderPlaced,
		Title:             TitleEquipmentOrder,
		CorrelationID:     r.Source.CorrelationID,
		Notes:             []Note{{Text: NoteOrderPlaced}},
	}
	if len(f) > 0 {
		c.Fields = f
	}
	return c, nil
}

// referralFields maps what a copy holds of the referral to named case
// fields.
func referralFields(r model.Referral) map[string]string {
	f := map[string]string{}
	set := setter(f)
	p := r.Person
	set(FieldNHSNumber, p.NHSNumber)
	if strings.TrimSpace(p.Pseudonym) != "" {
		set(FieldPseudonym, p.Pseudonym)
		set(FieldPseudonymSystem, p.PseudonymSystem)
	}
	if !p.Name.IsZero() {
		full := p.Name.Text
		if full == "" {
			full = strings.Join(slices.Concat(p.Name.Prefix, p.Name.Given, []string{p.Name.Family}), " ")
		}
		set(FieldPersonName, strings.Join(strings.Fields(full), " "))
		set(FieldPersonFamilyName, p.Name.Family)
		set(FieldPersonGivenNames, strings.Join(p.Name.Given, " "))
	}
	set(FieldBirthDate, p.BirthDate)
	set(FieldAgeBand, p.AgeBand)
	set(FieldGender, p.Gender)
	set(FieldAddress, joinNonEmpty(", ", slices.Concat(p.Address.Lines, []string{p.Address.City, p.Address.District})))
	set(FieldPostcode, p.Address.Postcode)
	set(FieldPersonContacts, contacts(p.Telecom))

	q := r.Requester
	set(FieldRequesterOrganisationODS, q.OrganisationODS)
	set(FieldRequesterOrganisationName, q.OrganisationName)
	set(FieldRequesterPractitioner, q.PractitionerName)
	set(FieldRequesterContacts, contacts(q.Contact))

	set(FieldPriority, string(r.Priority))
	set(FieldDeliverySetting, string(r.DeliverySetting.Kind))
	set(FieldDeliverySettingName, r.DeliverySetting.Name)
	set(FieldAccessNotes, r.AccessNotes)
	if len(r.Equipment) > 0 {
		set(FieldEquipmentLineCount, strconv.Itoa(len(r.Equipment)))
		lines := make([]string, 0, len(r.Equipment))
		for _, e := range r.Equipment {
			what := e.Description
			if what == "" {
				what = e.Code
			}
			lines = append(lines, fmt.Sprintf("%d x %s", e.Quantity, what))
		}
		set(FieldEquipmentSummary, strings.Join(lines, "; "))
	}
	if !r.ReceivedAt.IsZero() {
		set(FieldReferralReceivedAt, r.ReceivedAt.UTC().Format(timeFormat))
	}

	return f
}

// setter returns a function that sets a named field, trimmed, when it is
// not empty.
func setter(f map[string]string) func(name, value string) {
	return func(name, value string) {
		if v := strings.TrimSpace(value); v != "" {
			f[name] = v
		}
	}
}

// notCarried refuses a copy that holds what no case carries, whatever its
// Fields say: the copy is the truth. Clinical details never go on a council
// case; an event's free text only on a safeguarding case (withEvent).
func notCarried(r model.Referral, withEvent bool) error {
	if r.Clinical.Weight != nil || len(r.Clinical.Reasons)+len(r.Clinical.Conditions)+len(r.Clinical.Observations)+len(r.Clinical.Notes) > 0 {
		return fmt.Errorf("%w: clinical", ErrFieldNotCarried)
	}
	if e := r.Event; e != nil {
		if c := e.Complaint; c != nil && (c.Category != "" || c.Summary != "" || len(c.Contact) > 0 || (!withEvent && c.Reply != "")) {
			return fmt.Errorf("%w: complaint", ErrFieldNotCarried)
		}
		if !withEvent && (e.Description != "" || e.Reason != (model.Coded{}) || e.ScheduledDate != "") {
			return fmt.Errorf("%w: event", ErrFieldNotCarried)
		}
	}
	return nil
}

func contacts(in []model.ContactPoint) string {
	parts := make([]string, 0, len(in))
	for _, c := range in {
		if strings.TrimSpace(c.Value) == "" {
			continue
		}
		label := c.System
		if label == "" {
			label = "contact"
		}
		if c.Use != "" {
			label += " (" + c.Use + ")"
		}
		parts = append(parts, label+": "+strings.TrimSpace(c.Value))
	}
	return strings.Join(parts, "; ")
}

func joinNonEmpty(sep string, in []string) string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, sep)
}
