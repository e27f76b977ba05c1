package model

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// PseudonymSystem is the identifier system of a pseudonymised NHS number
// (Person.Pseudonym): a keyed HMAC-SHA256 of the number, hex encoded. It is
// deliberately not the NHS number system, so that nobody mistakes a
// pseudonym for an NHS number.
const PseudonymSystem = "https://example.org/ices/Id/pseudonym"

// FieldLabel returns how a disclosed field is recorded (Delivery.Fields and
// the disclosure record): the field name when it is disclosed as is (as is ""
// or "keep"), otherwise the name with the transform in brackets, as in
// "person.birthDate(year)".
func FieldLabel(field, as string) string {
	if as == "" || as == "keep" {
		return field
	}
	return field + "(" + as + ")"
}

// ParseFieldLabel splits a label made by FieldLabel into the field name and
// the transform ("keep" when there is none).
func ParseFieldLabel(label string) (field, as string) {
	if i := strings.IndexByte(label, '('); i > 0 && strings.HasSuffix(label, ")") {
		return label[:i], label[i+1 : len(label)-1]
	}
	return label, "keep"
}

// SentLabels returns the disclosure record of one payload: the labels of
// named (a copy's Delivery.Fields, as FieldLabel writes them) whose field
// sent reports the payload holds, in named's order, each with the
// transform named gives it. Never nil, so that a payload holding none of
// them is recorded as an empty list. An outbound mapping calls it with a
// sent that looks at what it encoded, never at what the route allows.
func SentLabels(named []string, sent func(field string) bool) []string {
	out := make([]string, 0, len(named))
	for _, label := range named {
		if f, _ := ParseFieldLabel(label); sent(f) {
			out = append(out, label)
		}
	}
	return out
}

// Class is the data protection class of a canonical field.
type Class string

const (
	// ClassNone holds no personal data (codes, counts, organisation ids).
	ClassNone Class = "none"
	// ClassPersonal is personal data (UK GDPR Art 4(1)).
	ClassPersonal Class = "personal"
	// ClassSpecial is special category data (UK GDPR Art 9): health,
	// mobility, weight, clinical notes. A route that discloses one must name
	// an Article 9 basis.
	ClassSpecial Class = "special"
)

// Field is one entry of the field catalogue: a name that policies use, its
// class, and how to copy it from a full referral into a recipient's copy.
type Field struct {
	Name        string
	Class       Class
	Description string
	// Copy copies this field, and nothing else, from src into dst.
	Copy func(dst, src *Referral) `json:"-"`
}

// referralFields is the catalogue of disclosable referral fields. ID, Source
// and ReceivedAt are not listed: they carry no personal data and every copy
// keeps them so that a partner can quote the hub's reference.
var referralFields = []Field{
	{"person.nhsNumber", ClassPersonal, "NHS number", func(d, s *Referral) { d.Person.NHSNumber = s.Person.NHSNumber }},
	{"person.name", ClassPersonal, "name of the person", func(d, s *Referral) { d.Person.Name = cloneName(s.Person.Name) }},
	{"person.birthDate", ClassPersonal, "date of birth", func(d, s *Referral) { d.Person.BirthDate = s.Person.BirthDate }},
	{"person.gender", ClassPersonal, "administrative gender", func(d, s *Referral) { d.Person.Gender = s.Person.Gender }},
	{"person.address", ClassPersonal, "full postal address including postcode", func(d, s *Referral) {
		d.Person.Address = Address{Lines: slices.Clone(s.Person.Address.Lines), City: s.Person.Address.City, District: s.Person.Address.District, Postcode: s.Person.Address.Postcode}
	}},
	{"person.postcode", ClassPersonal, "postcode only", func(d, s *Referral) { d.Person.Address.Postcode = s.Person.Address.Postcode }},
	{"person.telecom", ClassPersonal, "phone numbers and email addresses of the person", func(d, s *Referral) { d.Person.Telecom = slices.Clone(s.Person.Telecom) }},
	{"requester.practitioner", ClassPersonal, "name of the prescriber", func(d, s *Referral) { d.Requester.PractitionerName = s.Requester.PractitionerName }},
	{"requester.organisation", ClassNone, "ODS code and name of the requesting organisation", func(d, s *Referral) {
		d.Requester.OrganisationODS, d.Requester.OrganisationName = s.Requester.OrganisationODS, s.Requester.OrganisationName
	}},
	{"requester.contact", ClassPersonal, "work contact details of the prescriber", func(d, s *Referral) { d.Requester.Contact = slices.Clone(s.Requester.Contact) }},
	{"priority", ClassNone, "urgency of the order", func(d, s *Referral) { d.Priority = s.Priority }},
	{"deliverySetting", ClassPersonal, "kind and name of the place of delivery (never offence details)", func(d, s *Referral) { d.DeliverySetting = s.DeliverySetting }},
	{"accessNotes", ClassPersonal, "free-text notes on access to the property", func(d, s *Referral) { d.AccessNotes = s.AccessNotes }},
	{"equipment", ClassSpecial, "equipment lines: code, description, quantity, notes (reveal mobility needs)", func(d, s *Referral) { d.Equipment = slices.Clone(s.Equipment) }},
	{"clinical.reasons", ClassSpecial, "reasons for the referral", func(d, s *Referral) { d.Clinical.Reasons = slices.Clone(s.Clinical.Reasons) }},
	{"clinical.conditions", ClassSpecial, "conditions and diagnoses", func(d, s *Referral) { d.Clinical.Conditions = slices.Clone(s.Clinical.Conditions) }},
	{"clinical.weight", ClassSpecial, "body weight, for safe working loads", func(d, s *Referral) {
		if s.Clinical.Weight != nil {
			w := *s.Clinical.Weight
			d.Clinical.Weight = &w
		}
	}},
	{"clinical.observations", ClassSpecial, "other observations", func(d, s *Referral) { d.Clinical.Observations = slices.Clone(s.Clinical.Observations) }},
	{"clinical.notes", ClassSpecial, "free-text clinical notes", func(d, s *Referral) { d.Clinical.Notes = slices.Clone(s.Clinical.Notes) }},

	// What happened to the referral (Referral.Event, flows F2 to F8). Its
	// ids, kind, times and order status are operational (EventSkeleton);
	// these are disclosed only when named.
	{"event.scheduledDate", ClassNone, "date delivery or collection is booked for", func(d, s *Referral) {
		if s.Event != nil {
			d.Event.ScheduledDate = s.Event.ScheduledDate
		}
	}},
	{"event.reason", ClassPersonal, "why: failed delivery reason, equipment issue type, cancellation or collection reason (can reveal a death or a move)", func(d, s *Referral) {
		if s.Event != nil {
			d.Event.Reason = s.Event.Reason
		}
	}},
	{"event.description", ClassSpecial, "free text of an equipment issue, safeguarding concern or amendment (can describe health and care needs)", func(d, s *Referral) {
		if s.Event != nil {
			d.Event.Description = s.Event.Description
		}
	}},
	{"complaint.category", ClassPersonal, "category of a complaint about the service", func(d, s *Referral) {
		if c := complaintOf(d, s); c != nil {
			c.Category = s.Event.Complaint.Category
		}
	}},
	{"complaint.summary", ClassPersonal, "summary of a complaint", func(d, s *Referral) {
		if c := complaintOf(d, s); c != nil {
			c.Summary = s.Event.Complaint.Summary
		}
	}},
	{"complaint.contact", ClassPersonal, "how to contact the complainant, only when the council allows it", func(d, s *Referral) {
		if c := complaintOf(d, s); c != nil && s.Event.Complaint.ContactAllowed {
			c.Contact = slices.Clone(s.Event.Complaint.Contact)
		}
	}},
	{"complaint.reply", ClassPersonal, "the provider's reply to a complaint", func(d, s *Referral) {
		if c := complaintOf(d, s); c != nil {
			c.Reply = s.Event.Complaint.Reply
		}
	}},
}

// EventSkeleton returns the operational part of e that every copy keeps:
// ids, kind, reporter, times, order status and the complaint's reference
// and council, nothing that describes a person. Nil for nil.
func EventSkeleton(e *Event) *Event {
	if e == nil {
		return nil
	}
	out := &Event{ID: e.ID, Kind: e.Kind, ReferralID: e.ReferralID, From: e.From, FromEventID: e.FromEventID,
		OccurredAt: e.OccurredAt, ReceivedAt: e.ReceivedAt, Status: e.Status}
	if e.Complaint != nil {
		out.Complaint = &Complaint{Reference: e.Complaint.Reference, Council: e.Complaint.Council, ContactAllowed: e.Complaint.ContactAllowed}
	}
	return out
}

// complaintOf returns the complaint of dst's event to copy into, or nil when
// src has none. dst's event exists whenever src's does (EventSkeleton).
func complaintOf(d, s *Referral) *Complaint {
	if s.Event == nil || s.Event.Complaint == nil || d.Event == nil {
		return nil
	}
	if d.Event.Complaint == nil {
		d.Event.Complaint = &Complaint{}
	}
	return d.Event.Complaint
}

var fieldsByName = func() map[string]Field {
	m := make(map[string]Field, len(referralFields))
	for _, f := range referralFields {
		if _, dup := m[f.Name]; dup {
			panic("model: duplicate field " + f.Name) // a programming error caught by any test
		}
		m[f.Name] = f
	}
	return m
}()

// ReferralFields returns the catalogue of disclosable referral fields, sorted
// by name. The slice is a copy; callers may keep it.
func ReferralFields() []Field {
	out := slices.Clone(referralFields)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupField returns the catalogue entry for name.
func LookupField(name string) (Field, bool) {
	f, ok := fieldsByName[name]
	return f, ok
}

// ErrUnknownField is wrapped by CheckFields for a name not in the catalogue.
var ErrUnknownField = fmt.Errorf("unknown canonical field")

// CheckFields returns an error naming the first field that is not in the
// catalogue.
func CheckFields(names []string) error {
	for _, n := range names {
		if _, ok := fieldsByName[n]; !ok {
			return fmt.Errorf("%w %q (known fields: %v)", ErrUnknownField, n, FieldNames())
		}
	}
	return nil
}

// FieldNames returns the sorted names of all disclosable fields.
func FieldNames() []string {
	names := make([]string, 0, len(referralFields))
	for _, f := range referralFields {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return names
}

func cloneName(n HumanName) HumanName {
	return HumanName{Text: n.Text, Prefix: slices.Clone(n.Prefix), Given: slices.Clone(n.Given), Family: n.Family}
}
