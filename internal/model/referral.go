// Package model is the canonical model of iceshub: the shape every partner's
// wire format is mapped into and out of. It depends on nothing else in the hub.
//
// Every field that can carry information about a person is listed in the field
// catalogue (fields.go) with its data protection class, so that minimisation
// can name what a recipient may receive and deny everything else.
package model

import "time"

// Kind names a kind of message travelling through the hub.
type Kind string

const (
	// KindReferral is a new NHS referral / equipment order (flow F1).
	KindReferral Kind = "referral"
)

// Priority is the urgency the requester gave the referral, using the FHIR
// request-priority codes so that no meaning is lost in mapping.
type Priority string

const (
	PriorityRoutine Priority = "routine"
	PriorityUrgent  Priority = "urgent"
	PriorityASAP    Priority = "asap"
	PriorityStat    Priority = "stat"
)

// SettingKind says what sort of place the equipment goes to. A custodial
// setting is recorded as a setting only: never offence or conviction details.
type SettingKind string

const (
	SettingHome          SettingKind = "home"
	SettingCareHome      SettingKind = "care-home"
	SettingSchool        SettingKind = "school"
	SettingSupported     SettingKind = "supported-living"
	SettingCustodial     SettingKind = "custodial"
	SettingOther         SettingKind = "other"
	SettingUnknownOrNone SettingKind = ""
)

// Referral is one accepted NHS referral and equipment order.
//
// ID, Source and ReceivedAt are operational identifiers that hold no personal
// data; every other field but Permission is disclosed only when a recipient's
// field list names it (see the field catalogue). Permission is not in the
// catalogue and is never copied to a recipient: the hub reads it from the
// full record to decide whether a route that requires the person's express
// permission may send at all.
type Referral struct {
	ID         string    `json:"id"`
	Source     Source    `json:"source"`
	ReceivedAt time.Time `json:"receivedAt"`

	Person          Person          `json:"person"`
	Requester       Requester       `json:"requester"`
	Priority        Priority        `json:"priority,omitempty"`
	DeliverySetting DeliverySetting `json:"deliverySetting"`
	AccessNotes     string          `json:"accessNotes,omitempty"`
	Equipment       []EquipmentItem `json:"equipment,omitempty"`
	Clinical        Clinical        `json:"clinical"`

	// Permission is the person's express permission to share (a "Shared
	// Agreement"), or nil when the referral records none: unknown, which a
	// route that requires permission treats as not given.
	Permission *Permission `json:"permission,omitempty"`

	// Event, in a message about the referral after it was accepted (flows
	// F2 to F8), is what happened to it; nil in the referral itself.
	Event *Event `json:"event,omitempty"`
}

// PermissionSourceFHIRConsent is the Permission.Source of a permission read
// from a FHIR Consent resource.
const PermissionSourceFHIRConsent = "fhir-consent"

// PermissionSourceOperator is the Permission.Source of a permission an
// operator recorded to release a held copy; it stands for the referral's
// later messages until an amendment brings a permission of its own.
const PermissionSourceOperator = "operator-recorded"

// Permission records whether the person gave, or refused, express permission
// to share their referral, and where that was read from. It holds no
// personal data: codes and a date only.
type Permission struct {
	// Given is true for express permission and false for an explicit
	// refusal or withdrawal.
	Given bool `json:"given"`
	// Source says where the record came from, such as
	// PermissionSourceFHIRConsent.
	Source string `json:"source"`
	// Scope is the code of the consent's scope as sent
	// ("patient-privacy"), when known.
	Scope string `json:"scope,omitempty"`
	// Policy is the code of the consent's policy rule as sent ("OPTIN"),
	// when known.
	Policy string `json:"policy,omitempty"`
	// Recorded is the date the permission was recorded (YYYY-MM-DD), when
	// known.
	Recorded string `json:"recorded,omitempty"`
}

// Source identifies where a referral came from, in the sender's own terms, so
// that replies and later messages can be matched back to it.
type Source struct {
	// BundleID is the id of the FHIR Bundle that carried the referral.
	BundleID string `json:"bundleId,omitempty"`
	// MessageID is the MessageHeader id for FHIR messaging, empty for a
	// transaction or batch Bundle.
	MessageID string `json:"messageId,omitempty"`
	// ServiceRequestID is the logical id (or fullUrl) of the ServiceRequest.
	ServiceRequestID string `json:"serviceRequestId,omitempty"`
	// SenderODS is the ODS code of the sending organisation, when known.
	SenderODS string `json:"senderOds,omitempty"`
	// SentBy is the id of the partner that sent the referral, as the hub
	// authenticated it: with SenderODS and the requester's organisation,
	// what says who may change the referral later.
	SentBy string `json:"sentBy,omitempty"`
	// CorrelationID is the X-Correlation-ID the sender supplied, carried
	// through to every partner.
	CorrelationID string `json:"correlationId,omitempty"`
}

// Person is the person the equipment is for.
//
// A recipient's copy holds either NHSNumber or, when its policy pseudonymises
// the NHS number, Pseudonym with PseudonymSystem set: a pseudonym is never put
// where an NHS number belongs. Likewise AgeBand ("75-84") replaces BirthDate
// when the policy generalises the date of birth to an age band.
type Person struct {
	NHSNumber string `json:"nhsNumber,omitempty"`
	// Pseudonym is a keyed pseudonym of the NHS number (see PseudonymSystem).
	Pseudonym string `json:"pseudonym,omitempty"`
	// PseudonymSystem is the identifier system of Pseudonym, never the NHS
	// number system.
	PseudonymSystem string    `json:"pseudonymSystem,omitempty"`
	Name            HumanName `json:"name"`
	BirthDate       string    `json:"birthDate,omitempty"` // YYYY, YYYY-MM or YYYY-MM-DD as sent
	// AgeBand is the person's age band on the day the copy was cut, such as
	// "75-84" or "85+".
	AgeBand string         `json:"ageBand,omitempty"`
	Gender  string         `json:"gender,omitempty"`
	Address Address        `json:"address"`
	Telecom []ContactPoint `json:"telecom,omitempty"`
}

// HumanName is a person's name; Text is the full name as the sender wrote it.
type HumanName struct {
	Text   string   `json:"text,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Given  []string `json:"given,omitempty"`
	Family string   `json:"family,omitempty"`
}

// IsZero reports whether the name holds nothing.
func (n HumanName) IsZero() bool {
	return n.Text == "" && n.Family == "" && len(n.Given) == 0 && len(n.Prefix) == 0
}

// Address is a postal address. Postcode is kept apart because councils are
// chosen by it and it can be disclosed on its own.
type Address struct {
	Lines    []string `json:"lines,omitempty"`
	City     string   `json:"city,omitempty"`
	District string   `json:"district,omitempty"`
	Postcode string   `json:"postcode,omitempty"`
}

// IsZero reports whether the address holds nothing.
func (a Address) IsZero() bool {
	return len(a.Lines) == 0 && a.City == "" && a.District == "" && a.Postcode == ""
}

// ContactPoint is a phone number, email address or similar.
type ContactPoint struct {
	System string `json:"system,omitempty"` // phone | email | other
	Value  string `json:"value"`
	Use    string `json:"use,omitempty"` // home | work | mobile
}

// Requester is the prescriber who ordered the equipment and their organisation.
type Requester struct {
	PractitionerName string         `json:"practitionerName,omitempty"`
	OrganisationODS  string         `json:"organisationOds,omitempty"`
	OrganisationName string         `json:"organisationName,omitempty"`
	Contact          []ContactPoint `json:"contact,omitempty"`
}

// DeliverySetting is where the equipment is to be delivered and installed.
type DeliverySetting struct {
	Kind SettingKind `json:"kind,omitempty"`
	// Name is the name of the setting (a care home, a school), never a
	// description of why a person is there.
	Name string `json:"name,omitempty"`
}

// EquipmentItem is one line of an equipment order.
type EquipmentItem struct {
	// LineID is the sender's id of the line (the DeviceRequest id).
	LineID      string `json:"lineId,omitempty"`
	Code        string `json:"code,omitempty"`
	System      string `json:"system,omitempty"`
	Description string `json:"description,omitempty"`
	Quantity    int    `json:"quantity"`
	Notes       string `json:"notes,omitempty"`
}

// Coded is a coded concept with its display text.
type Coded struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Observation is a measurement the requester supplied, such as body weight
// needed to choose equipment with a safe working load.
type Observation struct {
	Code  Coded  `json:"code"`
	Value string `json:"value"`
	Unit  string `json:"unit,omitempty"`
}

// Clinical is the clinical context of a referral. All of it is special
// category (health) data.
type Clinical struct {
	Reasons    []Coded `json:"reasons,omitempty"`
	Conditions []Coded `json:"conditions,omitempty"`
	// Weight is kept apart from other observations because the provider
	// needs it for safe working loads and nothing else clinical.
	Weight       *Observation  `json:"weight,omitempty"`
	Observations []Observation `json:"observations,omitempty"`
	Notes        []string      `json:"notes,omitempty"`
}
