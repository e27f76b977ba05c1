// Package provider maps the hub's canonical model to the provider order API
// the hub defines (adapters/provider/openapi.yaml) and back. It is pure: no
// I/O, no logging, no clock.
//
// Order receives one recipient's minimised copy (model.Delivery), never the
// full record, and maps exactly what the copy holds: an element the copy
// does not hold is left out of the order, never filled in or guessed. It
// never changes its input.
package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/iceshub/iceshub/internal/model"
)

// OrderRequest is the body of POST /orders: a new equipment order. Every
// element except hubReference, idempotencyKey and items is optional and is
// absent when the hub's copy does not hold it.
type OrderRequest struct {
	// HubReference is the hub's referral id; the provider quotes it in
	// everything it sends back.
	HubReference string `json:"hubReference"`
	// IdempotencyKey repeats the Idempotency-Key header.
	IdempotencyKey string `json:"idempotencyKey"`
	// CorrelationID is the NHS sender's X-Correlation-ID, carried through.
	CorrelationID string `json:"correlationId,omitempty"`
	// ReceivedAt is when the hub accepted the referral (RFC 3339, UTC), the
	// start of the service's delivery timescales.
	ReceivedAt string `json:"receivedAt,omitempty"`
	// Priority is a FHIR request priority: routine, urgent, asap or stat.
	Priority        string           `json:"priority,omitempty"`
	Person          *Person          `json:"person,omitempty"`
	Delivery        *DeliveryDetails `json:"delivery,omitempty"`
	Items           []Item           `json:"items,omitempty"`
	SafeWorkingLoad *SafeWorkingLoad `json:"safeWorkingLoad,omitempty"`
	Clinical        *Clinical        `json:"clinical,omitempty"`
	Requester       *Requester       `json:"requester,omitempty"`
}

// Person is the person the equipment is for.
//
// When the hub's policy pseudonymises the NHS number, NHSNumber is absent and
// Pseudonym carries the pseudonym with its own identifier system; when it
// generalises the date of birth to an age band, AgeBand replaces BirthDate.
type Person struct {
	NHSNumber string      `json:"nhsNumber,omitempty"`
	Pseudonym *Identifier `json:"pseudonym,omitempty"`
	Name      *Name       `json:"name,omitempty"`
	BirthDate string      `json:"birthDate,omitempty"`
	AgeBand   string      `json:"ageBand,omitempty"`
	Gender    string      `json:"gender,omitempty"`
	Contacts  []Contact   `json:"contacts,omitempty"`
}

// Identifier is an identifier with its system, such as a pseudonym of the
// NHS number (system https://example.org/ices/Id/pseudonym).
type Identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

// Name is a person's name; Text is the full name as the referrer wrote it.
type Name struct {
	Text   string   `json:"text,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
	Given  []string `json:"given,omitempty"`
	Family string   `json:"family,omitempty"`
}

// Contact is a phone number, email address or similar.
type Contact struct {
	// System is phone, sms, email or other (FHIR ContactPoint.system).
	System string `json:"system,omitempty"`
	Value  string `json:"value"`
	// Use is home, work, mobile, temp or old.
	Use string `json:"use,omitempty"`
}

// DeliveryDetails says where and how to deliver.
type DeliveryDetails struct {
	Address     *Address `json:"address,omitempty"`
	Setting     *Setting `json:"setting,omitempty"`
	AccessNotes string   `json:"accessNotes,omitempty"`
}

// Address is the delivery address. It may hold only a postcode.
type Address struct {
	Lines    []string `json:"lines,omitempty"`
	City     string   `json:"city,omitempty"`
	District string   `json:"district,omitempty"`
	Postcode string   `json:"postcode,omitempty"`
}

// Setting is the kind of place and, for a care home or school, its name.
type Setting struct {
	// Kind is home, care-home, school, supported-living, custodial or other.
	Kind string `json:"kind,omitempty"`
	Name string `json:"name,omitempty"`
}

// Item is one equipment line.
type Item struct {
	LineID      string `json:"lineId,omitempty"`
	Code        string `json:"code,omitempty"`
	System      string `json:"system,omitempty"`
	Description string `json:"description,omitempty"`
	Quantity    int    `json:"quantity"`
	Notes       string `json:"notes,omitempty"`
}

// SafeWorkingLoad holds what the provider needs to choose equipment with a
// safe working load.
type SafeWorkingLoad struct {
	BodyWeight *Measurement `json:"bodyWeight,omitempty"`
}

// Measurement is a measured quantity. Value is a JSON number, written
// exactly as the referrer sent it.
type Measurement struct {
	Value json.Number `json:"value"`
	Unit  string      `json:"unit,omitempty"`
	Code  *Coding     `json:"code,omitempty"`
}

// Coding is a coded concept.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// Observation is a clinical observation as the referrer sent it.
type Observation struct {
	Code  *Coding `json:"code,omitempty"`
	Value string  `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// Clinical is clinical context, sent only when the hub's policy gives it to
// the provider.
type Clinical struct {
	Reasons      []Coding      `json:"reasons,omitempty"`
	Conditions   []Coding      `json:"conditions,omitempty"`
	Observations []Observation `json:"observations,omitempty"`
	Notes        []string      `json:"notes,omitempty"`
}

// Requester is the prescriber and their organisation.
type Requester struct {
	Organisation *Organisation `json:"organisation,omitempty"`
	Practitioner string        `json:"practitioner,omitempty"`
	Contacts     []Contact     `json:"contacts,omitempty"`
}

// Organisation is an NHS organisation.
type Organisation struct {
	ODSCode string `json:"odsCode,omitempty"`
	Name    string `json:"name,omitempty"`
}

// Errors returned by Order; each is wrapped with detail.
var (
	// ErrUnsupportedKind: the provider contract has no request for this
	// kind of message.
	ErrUnsupportedKind = errors.New("provider: unsupported message kind")
	// ErrFieldNotCarried: the copy names a canonical field the provider
	// contract has no place for.
	ErrFieldNotCarried = errors.New("provider: field not carried by the order contract")
	// ErrInvalidCopy: the copy lacks what every order needs, or holds a
	// value the contract cannot carry.
	ErrInvalidCopy = errors.New("provider: invalid delivery copy")
)

// carried lists the canonical fields the order contract can carry.
var carried = []string{
	"accessNotes", "clinical.conditions", "clinical.notes", "clinical.observations", "clinical.reasons",
	"clinical.weight", "deliverySetting", "equipment", "person.address", "person.birthDate", "person.gender",
	"person.name", "person.nhsNumber", "person.postcode", "person.telecom", "priority",
	"requester.contact", "requester.organisation", "requester.practitioner",
}

// Fields returns the canonical fields an order can carry, sorted. A route to
// the provider naming any other field is a configuration error.
func Fields() []string { return slices.Clone(carried) }

// Order maps one minimised copy of a referral to a provider order. It
// returns an error wrapping ErrUnsupportedKind, ErrFieldNotCarried or
// ErrInvalidCopy when the copy cannot become an order; such a copy never
// will, so the error is permanent.
func Order(d model.Delivery) (OrderRequest, error) {
	if d.Kind != model.KindReferral {
		return OrderRequest{}, fmt.Errorf("%w %q", ErrUnsupportedKind, d.Kind)
	}
	if err := checkFields(d.Fields, carried); err != nil {
		return OrderRequest{}, err
	}
	return order(d)
}

// order maps the referral in d, whose kind and fields were checked, to an
// order: a new one or an amendment.
func order(d model.Delivery) (OrderRequest, error) {
	r := d.Referral
	if strings.TrimSpace(r.ID) == "" {
		return OrderRequest{}, fmt.Errorf("%w: no referral id", ErrInvalidCopy)
	}
	if strings.TrimSpace(d.IdempotencyKey) == "" {
		return OrderRequest{}, fmt.Errorf("%w: no idempotency key", ErrInvalidCopy)
	}

	o := OrderRequest{
		HubReference:   r.ID,
		IdempotencyKey: d.IdempotencyKey,
		CorrelationID:  r.Source.CorrelationID,
		Priority:       string(r.Priority),
		Person:         person(r.Person),
		Delivery:       deliveryDetails(r),
		Items:          items(r.Equipment),
		Requester:      requester(r.Requester),
	}
	if !r.ReceivedAt.IsZero() {
		o.ReceivedAt = r.ReceivedAt.UTC().Format(timeFormat)
	}
	if w := r.Clinical.Weight; w != nil {
		v, err := number(w.Value)
		if err != nil {
			return OrderRequest{}, fmt.Errorf("%w: body weight is not a number", ErrInvalidCopy)
		}
		o.SafeWorkingLoad = &SafeWorkingLoad{BodyWeight: &Measurement{Value: v, Unit: w.Unit, Code: coding(w.Code)}}
	}
	o.Clinical = clinical(r.Clinical)
	return o, nil
}

// holds reports whether the order holds the canonical field f: what
// Outbound records as disclosed (Request.Fields), read from the order it
// built, never from the route.
func (o OrderRequest) holds(f string) bool {
	p, dd, q, c := o.Person, o.Delivery, o.Requester, o.Clinical
	switch f {
	case "person.nhsNumber":
		return p != nil && (p.NHSNumber != "" || p.Pseudonym != nil)
	case "person.name":
		return p != nil && p.Name != nil
	case "person.birthDate":
		return p != nil && (p.BirthDate != "" || p.AgeBand != "")
	case "person.gender":
		return p != nil && p.Gender != ""
	case "person.telecom":
		return p != nil && len(p.Contacts) > 0
	case "person.address":
		return dd != nil && dd.Address != nil
	case "person.postcode":
		return dd != nil && dd.Address != nil && dd.Address.Postcode != ""
	case "deliverySetting":
		return dd != nil && dd.Setting != nil
	case "accessNotes":
		return dd != nil && dd.AccessNotes != ""
	case "priority":
		return o.Priority != ""
	case "equipment":
		return len(o.Items) > 0
	case "clinical.weight":
		return o.SafeWorkingLoad != nil
	case "clinical.reasons":
		return c != nil && len(c.Reasons) > 0
	case "clinical.conditions":
		return c != nil && len(c.Conditions) > 0
	case "clinical.observations":
		return c != nil && len(c.Observations) > 0
	case "clinical.notes":
		return c != nil && len(c.Notes) > 0
	case "requester.organisation":
		return q != nil && q.Organisation != nil
	case "requester.practitioner":
		return q != nil && q.Practitioner != ""
	case "requester.contact":
		return q != nil && len(q.Contacts) > 0
	}
	return false
}

func person(p model.Person) *Person {
	out := Person{
		NHSNumber: p.NHSNumber,
		BirthDate: p.BirthDate,
		AgeBand:   p.AgeBand,
		Gender:    p.Gender,
		Contacts:  contacts(p.Telecom),
	}
	if p.Pseudonym != "" {
		out.Pseudonym = &Identifier{System: p.PseudonymSystem, Value: p.Pseudonym}
	}
	if !p.Name.IsZero() {
		out.Name = &Name{Text: p.Name.Text, Prefix: slices.Clone(p.Name.Prefix), Given: slices.Clone(p.Name.Given), Family: p.Name.Family}
	}
	if out.NHSNumber == "" && out.Pseudonym == nil && out.Name == nil && out.BirthDate == "" && out.AgeBand == "" && out.Gender == "" && len(out.Contacts) == 0 {
		return nil
	}
	return &out
}

func deliveryDetails(r model.Referral) *DeliveryDetails {
	out := DeliveryDetails{AccessNotes: r.AccessNotes}
	if a := r.Person.Address; !a.IsZero() {
		out.Address = &Address{Lines: slices.Clone(a.Lines), City: a.City, District: a.District, Postcode: a.Postcode}
	}
	if s := r.DeliverySetting; s.Kind != "" || s.Name != "" {
		out.Setting = &Setting{Kind: string(s.Kind), Name: s.Name}
	}
	if out.Address == nil && out.Setting == nil && out.AccessNotes == "" {
		return nil
	}
	return &out
}

func items(in []model.EquipmentItem) []Item {
	if len(in) == 0 {
		return nil
	}
	out := make([]Item, 0, len(in))
	for _, e := range in {
		out = append(out, Item{LineID: e.LineID, Code: e.Code, System: e.System, Description: e.Description, Quantity: e.Quantity, Notes: e.Notes})
	}
	return out
}

func requester(r model.Requester) *Requester {
	out := Requester{Practitioner: r.PractitionerName, Contacts: contacts(r.Contact)}
	if r.OrganisationODS != "" || r.OrganisationName != "" {
		out.Organisation = &Organisation{ODSCode: r.OrganisationODS, Name: r.OrganisationName}
	}
	if out.Organisation == nil && out.Practitioner == "" && len(out.Contacts) == 0 {
		return nil
	}
	return &out
}

func clinical(c model.Clinical) *Clinical {
	out := Clinical{
		Reasons:    codings(c.Reasons),
		Conditions: codings(c.Conditions),
		Notes:      slices.Clone(c.Notes),
	}
	for _, o := range c.Observations {
		out.Observations = append(out.Observations, Observation{Code: coding(o.Code), Value: o.Value, Unit: o.Unit})
	}
	if len(out.Reasons) == 0 && len(out.Conditions) == 0 && len(out.Observations) == 0 && len(out.Notes) == 0 {
		return nil
	}
	return &out
}

func contacts(in []model.ContactPoint) []Contact {
	var out []Contact
	for _, c := range in {
		if c.Value == "" {
			continue
		}
		out = append(out, Contact{System: c.System, Value: c.Value, Use: c.Use})
	}
	return out
}

func coding(c model.Coded) *Coding {
	if c == (model.Coded{}) {
		return nil
	}
	return &Coding{System: c.System, Code: c.Code, Display: c.Display}
}

func codings(in []model.Coded) []Coding {
	var out []Coding
	for _, c := range in {
		if p := coding(c); p != nil {
			out = append(out, *p)
		}
	}
	return out
}

// number returns s as a JSON number if it is a finite decimal.
func number(s string) (json.Number, error) {
	s = strings.TrimSpace(s)
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return "", err
	}
	// ParseFloat accepts forms JSON does not ("+1", "1.", "0x1p3", "Inf").
	if !json.Valid([]byte(s)) {
		return "", fmt.Errorf("not a JSON number")
	}
	return json.Number(s), nil
}
