package fhir

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	"github.com/iceshub/iceshub/internal/postcode"
)

// Identifier systems, code systems and extensions the hub reads. The
// example.org ones are the hub's own conventions, documented in the
// CapabilityStatement; senders use them where FHIR and UK Core have no
// element for the thing.
const (
	// ODSSystem is the identifier system of ODS organisation codes.
	ODSSystem = "https://fhir.nhs.uk/Id/ods-organization-code"
	// CatalogueSystem is the code system of the ICES equipment catalogue.
	// A DeviceRequest coding in this system is preferred over any other.
	CatalogueSystem = "https://example.org/ices/catalogue"
	// DeliverySettingSystem codes the kind of place equipment goes to, in
	// Location.type of a Location that ServiceRequest.locationReference
	// names. Its codes are the canonical model's setting kinds: home,
	// care-home, school, supported-living, custodial, other.
	DeliverySettingSystem = "https://example.org/ices/delivery-setting"
	// V3RoleCodeSystem is HL7 v3 RoleCode; in Location.type its code PTRES
	// (patient's residence) means home and NCCF (nursing or custodial care
	// facility) means care home.
	V3RoleCodeSystem = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
	// AccessNotesExtension is a ServiceRequest extension whose valueString
	// holds notes on access to the property (key safe, steps, parking) for
	// the people who deliver. Free text anywhere else is treated as
	// clinical.
	AccessNotesExtension = "https://example.org/ices/StructureDefinition/access-notes"
	// QuantityParameterCode is the DeviceRequest.parameter code that
	// carries the quantity of an equipment line, in any code system
	// (conventionally DeviceParameterSystem). SNOMED CT 246205007
	// |Quantity| and a code.text of "quantity" are accepted too.
	QuantityParameterCode = "quantity"
	// DeviceParameterSystem is the hub's code system for
	// DeviceRequest.parameter codes.
	DeviceParameterSystem = "https://example.org/ices/device-request-parameter"
	// MaxQuantity is the largest quantity one equipment line may ask for.
	MaxQuantity = 1000

	loincSystem      = "http://loinc.org"
	snomedSystem     = "http://snomed.info/sct"
	loincBodyWeight  = "29463-7"
	snomedBodyWeight = "27113001"
	snomedQuantity   = "246205007"
)

// referral maps the ServiceRequest in sr, and everything it references,
// into ref.
func (p *parser) referral(sr *entry, ref *model.Referral) {
	s := decoded[r4.ServiceRequest](p, sr, keepServiceRequest...)
	ref.Source.ServiceRequestID = nonEmpty(sr.id, sr.fullURL)

	if st, ok := code(sr, "status", true, p.is); ok && st != "active" {
		p.is.errorf(IssueBusinessRule, sr.res("status"), "ServiceRequest.status must be active for a referral or an amendment, or revoked or entered-in-error for a cancellation")
	}
	code(sr, "intent", true, p.is)
	ref.Priority = model.PriorityRoutine
	if pr, ok := code(sr, "priority", false, p.is); ok {
		ref.Priority = model.Priority(pr)
	}
	if deref(s.DoNotPerform) {
		p.is.errorf(IssueNotSupported, sr.res("doNotPerform"), "ServiceRequest.doNotPerform is true; the hub takes orders to do something")
	}

	// The person.
	var patient *entry
	if has(sr, "subject") {
		patient = p.follow(&s.Subject, sr.res("subject"), "ServiceRequest.subject", true, "Patient")
	} else if !p.is.failedAt(sr.res("subject")) {
		p.is.errorf(IssueRequired, sr.res("subject"), "ServiceRequest.subject is required: it must reference the Patient")
	}
	if patient != nil {
		ref.Person = p.person(patient)
	}
	// The person's express permission to share, from a Consent about them.
	ref.Permission = p.permission(patient)

	// The prescriber.
	switch {
	case s.Requester != nil:
		ref.Requester = p.requester(s.Requester, sr.res("requester"))
	case !p.is.failedAt(sr.res("requester")):
		p.is.errorf(IssueRequired, sr.res("requester"), "ServiceRequest.requester is required: equipment is ordered by a prescriber")
	}
	// The requesting organisation is the requester's when it names one
	// with an ODS code (an Organization, a PractitionerRole's
	// organization), else the MessageHeader's sender: BaRS senders name
	// the prescriber, a Practitioner, as requester and their organisation
	// only as the sender. Code and name are taken together, so that they
	// always describe one organisation.
	if ref.Requester.OrganisationODS == "" && p.sender.ods != "" {
		ref.Requester.OrganisationODS, ref.Requester.OrganisationName = p.sender.ods, p.sender.name
	}
	if ref.Source.SenderODS == "" {
		ref.Source.SenderODS = ref.Requester.OrganisationODS
	}

	ref.DeliverySetting = p.deliverySetting(sr, s)
	ref.AccessNotes = accessNotes(s.Extension)

	// The equipment lines: every DeviceRequest in the bundle.
	for _, dr := range p.b.ofType("DeviceRequest") {
		if item, ok := p.equipment(dr, patient); ok {
			ref.Equipment = append(ref.Equipment, item)
		}
	}
	if !has(sr, "reasonCode") && !has(sr, "reasonReference") && len(p.b.ofType("DeviceRequest")) == 0 {
		p.is.errorf(IssueBusinessRule, sr.res(), "the referral has neither a reason (ServiceRequest.reasonCode or reasonReference) nor an equipment line (DeviceRequest)")
	}
	if n := len(p.b.ofType("DeviceRequest")); n > 0 && len(p.withdrawn) == n {
		p.is.errorf(IssueBusinessRule, p.withdrawn[0], "every equipment line is withdrawn: to cancel the order, send its ServiceRequest with status revoked")
	}

	ref.Clinical = p.clinical(sr, s, patient)
}

// person maps the Patient in e.
func (p *parser) person(e *entry) model.Person {
	pt := decoded[r4.Patient](p, e, keepPatient...)
	var out model.Person

	// NHS number: required, checked, one only.
	out.NHSNumber = p.nhsNumber(e, pt, true)

	if i, ok := pickName(pt.Name); ok {
		n := pt.Name[i]
		out.Name = model.HumanName{Text: deref(n.Text), Prefix: n.Prefix, Given: n.Given, Family: deref(n.Family)}
	}
	if out.Name.IsZero() && !p.is.failedAt(e.res("name")) {
		p.is.errorf(IssueRequired, e.res("name"), "the Patient has no name")
	}

	if has(e, "birthDate") && !p.is.failedAt(e.res("birthDate")) {
		if bd := deref(pt.BirthDate); validDate(bd) {
			out.BirthDate = bd
		} else {
			p.is.errorf(IssueValue, e.res("birthDate"), "Patient.birthDate is not a valid date (YYYY, YYYY-MM or YYYY-MM-DD)")
		}
	}
	if g, ok := code(e, "gender", false, p.is); ok {
		out.Gender = g
	}
	if deref(pt.DeceasedBoolean) || has(e, "deceasedDateTime") {
		at := "deceasedBoolean"
		if has(e, "deceasedDateTime") {
			at = "deceasedDateTime"
		}
		p.is.errorf(IssueBusinessRule, e.res(at), "the Patient is recorded as deceased; a new equipment referral cannot be accepted")
	}

	// Address: the home address, which must have a UK postcode.
	if i, ok := pickAddress(pt.Address); ok {
		a := pt.Address[i]
		out.Address = model.Address{Lines: a.Line, City: deref(a.City), District: deref(a.District)}
		if len(a.Line) == 0 && deref(a.Text) != "" {
			out.Address.Lines = []string{deref(a.Text)}
		}
		pc := strings.TrimSpace(deref(a.PostalCode))
		expr := e.res(fmt.Sprintf("address[%d]", i), "postalCode")
		if pc == "" {
			p.is.errorf(IssueRequired, expr, "the Patient's home address has no postcode")
		} else if n, ok := postcode.Normalise(pc); ok {
			out.Address.Postcode = n
		} else {
			p.is.errorf(IssueValue, expr, "the Patient's postcode is not a well-formed UK postcode")
		}
	} else if !p.is.failedAt(e.res("address")) && !p.anyErrorUnder(e.res("address")) {
		p.is.errorf(IssueRequired, e.res("address"), "the Patient has no home address to deliver to")
	}
	out.Telecom = contacts(pt.Telecom, true)
	return out
}

// nhsNumber reads the NHS number of the Patient pt in e: every identifier
// in the NHS number system must hold a valid number, and the same one.
// Without any, it is an error when required. It records in p.nhsAt where
// the number was read, for refusals made after parsing.
func (p *parser) nhsNumber(e *entry, pt *r4.Patient, required bool) string {
	nhs := ""
	found := false
	for i, id := range pt.Identifier {
		if !strings.EqualFold(deref(id.System), nhsnumber.System) {
			continue
		}
		expr := e.res(fmt.Sprintf("identifier[%d]", i), "value")
		n := nhsnumber.Normalise(deref(id.Value))
		if n == "" {
			p.is.errorf(IssueRequired, expr, "the NHS number identifier has no value")
			continue
		}
		if err := nhsnumber.Check(n); err != nil {
			// nhsnumber's errors name the fault, never the number.
			p.is.errorf(IssueValue, expr, "%s", err.Error())
			continue
		}
		found = true
		switch {
		case nhs == "":
			nhs, p.nhsAt = n, expr
		case nhs != n:
			p.is.errorf(IssueBusinessRule, expr, "the Patient has two different NHS numbers")
		}
	}
	if required && !found && !p.is.failedAt(e.res("identifier")) && !p.anyErrorUnder(e.res("identifier")) {
		p.is.errorf(IssueRequired, e.res("identifier"), "the Patient has no NHS number (an identifier with system %s)", nhsnumber.System)
	}
	return nhs
}

// anyErrorUnder reports whether an error was reported at expr or inside it.
func (p *parser) anyErrorUnder(expr string) bool {
	for _, i := range p.is.list {
		if i.IsError() && (i.Expression == expr || strings.HasPrefix(i.Expression, expr+".") || strings.HasPrefix(i.Expression, expr+"[")) {
			return true
		}
	}
	return false
}

// pickName picks the official name, else the usual one, else the first that
// is not old.
func pickName(names []r4.HumanName) (int, bool) {
	best, rank := -1, 0
	for i, n := range names {
		r := 2
		if n.Use != nil {
			switch n.Use.Code() {
			case "official":
				r = 4
			case "usual":
				r = 3
			case "old", "anonymous":
				r = 0
			default:
				r = 1
			}
		}
		if r > rank {
			best, rank = i, r
		}
	}
	return best, best >= 0
}

// pickAddress picks the home address, else the first that is neither old
// nor billing; a postal-only address (a PO box) is never picked, since
// equipment is delivered.
func pickAddress(addrs []r4.Address) (int, bool) {
	best, rank := -1, 0
	for i, a := range addrs {
		if a.Type != nil && a.Type.Code() == "postal" {
			continue
		}
		r := 1
		if a.Use != nil {
			switch a.Use.Code() {
			case "home":
				r = 3
			case "temp":
				r = 2
			case "old", "billing":
				r = 0
			}
		}
		if r > rank {
			best, rank = i, r
		}
	}
	return best, best >= 0
}

func validDate(s string) bool {
	if !isFHIRDate(s) {
		return false
	}
	if len(s) == 10 {
		_, err := time.Parse(time.DateOnly, s)
		return err == nil
	}
	return true
}

// contacts maps contact points that have a value. Without personal, those
// marked home are left out: a prescriber's work contact only.
func contacts(cps []r4.ContactPoint, personal bool) []model.ContactPoint {
	var out []model.ContactPoint
	for _, c := range cps {
		if deref(c.Value) == "" {
			continue
		}
		use := ""
		if c.Use != nil {
			use = c.Use.Code()
		}
		if !personal && use == "home" {
			continue
		}
		sys := ""
		if c.System != nil {
			sys = c.System.Code()
		}
		out = append(out, model.ContactPoint{System: sys, Value: deref(c.Value), Use: use})
	}
	return out
}

// org is what the hub takes from an Organization.
type org struct {
	ods, name string
	telecom   []r4.ContactPoint
}

// organisationOf returns the organisation of a sender or requester: the
// Organization itself, or the organization of a PractitionerRole.
func (p *parser) organisationOf(e *entry) org {
	switch e.resourceType {
	case "Organization":
		return p.organisation(e)
	case "PractitionerRole":
		pr := decoded[r4.PractitionerRole](p, e, keepPractitionerRole...)
		if pr.Organization != nil {
			if t := p.follow(pr.Organization, e.res("organization"), "PractitionerRole.organization", false, "Organization"); t != nil {
				return p.organisation(t)
			}
		}
	}
	return org{}
}

// organisation maps an Organization. A malformed ODS code is a warning: the
// referral is still taken, but replies cannot be routed by it.
func (p *parser) organisation(e *entry) org {
	o := decoded[r4.Organization](p, e, keepOrganization...)
	out := org{name: deref(o.Name), telecom: o.Telecom}
	for i, id := range o.Identifier {
		if !strings.EqualFold(deref(id.System), ODSSystem) {
			continue
		}
		v := strings.ToUpper(strings.TrimSpace(deref(id.Value)))
		if !isODSCode(v) {
			p.is.warnf(IssueValue, e.res(fmt.Sprintf("identifier[%d]", i), "value"), "the ODS code is not 3 to 10 letters and digits; ignored")
			continue
		}
		out.ods = v
		break
	}
	return out
}

// requester maps ServiceRequest.requester: a Practitioner, a
// PractitionerRole (its practitioner and organization) or an Organization;
// or, without a reference, an identifier with an ODS code.
func (p *parser) requester(ref *r4.Reference, expr string) model.Requester {
	var out model.Requester
	if deref(ref.Reference) == "" && ref.Identifier != nil && strings.EqualFold(deref(ref.Identifier.System), ODSSystem) {
		if v := strings.ToUpper(strings.TrimSpace(deref(ref.Identifier.Value))); isODSCode(v) {
			out.OrganisationODS = v
			out.OrganisationName = deref(ref.Display)
			return out
		}
	}
	t := p.follow(ref, expr, "ServiceRequest.requester", true, "Practitioner", "PractitionerRole", "Organization")
	if t == nil {
		return out
	}
	var tel []r4.ContactPoint
	switch t.resourceType {
	case "Practitioner":
		pr := decoded[r4.Practitioner](p, t, keepPractitioner...)
		out.PractitionerName = displayName(pr.Name)
		tel = pr.Telecom
	case "PractitionerRole":
		role := decoded[r4.PractitionerRole](p, t, keepPractitionerRole...)
		tel = role.Telecom
		if role.Practitioner != nil {
			if pe := p.follow(role.Practitioner, t.res("practitioner"), "PractitionerRole.practitioner", false, "Practitioner"); pe != nil {
				pr := decoded[r4.Practitioner](p, pe, keepPractitioner...)
				out.PractitionerName = displayName(pr.Name)
				tel = append(tel, pr.Telecom...)
			}
		}
		o := p.organisationOf(t)
		out.OrganisationODS, out.OrganisationName = o.ods, o.name
	case "Organization":
		o := p.organisation(t)
		out.OrganisationODS, out.OrganisationName = o.ods, o.name
		tel = o.telecom
	}
	out.Contact = contacts(tel, false)
	return out
}

// displayName formats a practitioner's name: its text, else prefix, given
// names and family name.
func displayName(names []r4.HumanName) string {
	i, ok := pickName(names)
	if !ok {
		return ""
	}
	n := names[i]
	if t := strings.TrimSpace(deref(n.Text)); t != "" {
		return t
	}
	parts := append(append([]string{}, n.Prefix...), n.Given...)
	if f := deref(n.Family); f != "" {
		parts = append(parts, f)
	}
	return strings.Join(parts, " ")
}

// deliverySetting reads the first Location of ServiceRequest.locationReference
// whose type carries a code the hub knows (DeliverySettingSystem, or
// V3RoleCodeSystem PTRES or NCCF). Any other Location says where the
// service was asked for, not where equipment goes, and is ignored. The
// default is home.
func (p *parser) deliverySetting(sr *entry, s *r4.ServiceRequest) model.DeliverySetting {
	for i := range s.LocationReference {
		t := p.follow(&s.LocationReference[i], sr.res(fmt.Sprintf("locationReference[%d]", i)), "ServiceRequest.locationReference", false, "Location")
		if t == nil {
			continue
		}
		loc := decoded[r4.Location](p, t, keepLocation...)
		for _, cc := range loc.Type {
			if kind, ok := settingKind(cc); ok {
				ds := model.DeliverySetting{Kind: kind}
				if kind != model.SettingHome {
					ds.Name = deref(loc.Name)
				}
				return ds
			}
		}
	}
	return model.DeliverySetting{Kind: model.SettingHome}
}

func settingKind(cc r4.CodeableConcept) (model.SettingKind, bool) {
	for _, c := range cc.Coding {
		sys, code := deref(c.System), deref(c.Code)
		switch sys {
		case DeliverySettingSystem:
			switch k := model.SettingKind(code); k {
			case model.SettingHome, model.SettingCareHome, model.SettingSchool, model.SettingSupported, model.SettingCustodial, model.SettingOther:
				return k, true
			}
		case V3RoleCodeSystem:
			switch code {
			case "PTRES":
				return model.SettingHome, true
			case "NCCF":
				return model.SettingCareHome, true
			}
		}
	}
	return "", false
}

// accessNotes returns the valueString of the AccessNotesExtension.
func accessNotes(exts []r4.Extension) string {
	for _, x := range exts {
		if x.Url == AccessNotesExtension {
			return strings.TrimSpace(deref(x.ValueString))
		}
	}
	return ""
}

// equipment maps one DeviceRequest into an equipment line.
func (p *parser) equipment(e *entry, patient *entry) (model.EquipmentItem, bool) {
	dr := decoded[r4.DeviceRequest](p, e, keepDeviceRequest...)
	item := model.EquipmentItem{LineID: nonEmpty(e.id, e.fullURL), Quantity: 1}

	switch st, ok := code(e, "status", false, p.is); {
	case ok && (st == "revoked" || st == "entered-in-error"):
		// A line the requester took back: an amendment of the order
		// without it, which only the caller can tell from a new referral.
		p.withdrawn = append(p.withdrawn, e.res("status"))
		return model.EquipmentItem{}, false
	case ok && st != "active":
		p.is.errorf(IssueBusinessRule, e.res("status"), "DeviceRequest.status must be active (a line ordered) or revoked (a line withdrawn from an order the hub holds) when present")
	}
	code(e, "intent", true, p.is)

	if has(e, "subject") {
		if t := p.follow(&dr.Subject, e.res("subject"), "DeviceRequest.subject", true, "Patient"); t != nil && patient != nil && t != patient {
			p.is.errorf(IssueBusinessRule, e.res("subject", "reference"), "DeviceRequest.subject must be the Patient of the ServiceRequest")
		}
	} else if !p.is.failedAt(e.res("subject")) {
		p.is.errorf(IssueRequired, e.res("subject"), "DeviceRequest.subject is required")
	}

	hasCC, hasRef := has(e, "codeCodeableConcept"), has(e, "codeReference")
	switch {
	case hasCC && hasRef:
		p.is.errorf(IssueInvalid, e.res("codeReference"), "DeviceRequest has both codeCodeableConcept and codeReference; code[x] takes one")
	case hasCC:
		if !p.is.failedAt(e.res("codeCodeableConcept")) {
			p.equipmentCode(&item, dr.CodeCodeableConcept, e.res("codeCodeableConcept"))
		}
	case hasRef:
		if t := p.follow(&dr.CodeReference, e.res("codeReference"), "DeviceRequest.codeReference", true, "Device"); t != nil {
			d := decoded[r4.Device](p, t, keepDevice...)
			if d.Type != nil {
				p.equipmentCode(&item, *d.Type, t.res("type"))
			}
			for _, n := range d.DeviceName {
				if strings.TrimSpace(n.Name) != "" {
					item.Description = n.Name
					break
				}
			}
			if item.Code == "" && item.Description == "" && !p.anyErrorUnder(t.res("type")) {
				p.is.errorf(IssueRequired, t.res("type"), "the Device of an equipment line needs a type code or a deviceName")
			}
		}
	case !p.is.failedAt(e.res("codeCodeableConcept")):
		p.is.errorf(IssueRequired, e.res("codeCodeableConcept"), "DeviceRequest.code[x] is required: codeCodeableConcept (a catalogue code) or codeReference (a Device)")
	}

	p.quantity(e, dr, &item)

	var notes []string
	for _, n := range dr.Note {
		if t := strings.TrimSpace(n.Text); t != "" {
			notes = append(notes, t)
		}
	}
	item.Notes = strings.Join(notes, "\n")
	return item, true
}

// equipmentCode takes the code of an equipment line from cc: the coding in
// CatalogueSystem, else the first coding with a code. A line with text only
// is taken with a warning; a line with neither is an error.
func (p *parser) equipmentCode(item *model.EquipmentItem, cc r4.CodeableConcept, expr string) {
	var pick *r4.Coding
	for i := range cc.Coding {
		c := &cc.Coding[i]
		if deref(c.Code) == "" {
			continue
		}
		if deref(c.System) == CatalogueSystem {
			pick = c
			break
		}
		if pick == nil {
			pick = c
		}
	}
	text := strings.TrimSpace(deref(cc.Text))
	if pick != nil {
		item.Code, item.System = deref(pick.Code), deref(pick.System)
		item.Description = nonEmpty(strings.TrimSpace(deref(pick.Display)), text)
		return
	}
	if text != "" {
		item.Description = text
		p.is.warnf(IssueRequired, expr+".coding", "the equipment line has a description but no code; the provider must match it by hand")
		return
	}
	p.is.errorf(IssueRequired, expr+".coding", "the equipment line has no code and no text")
}

// quantity reads the quantity of an equipment line from its quantity
// parameter: valueQuantity.value, or valueRange with one number. It must be
// a whole number from 1 to MaxQuantity; without the parameter it is 1.
func (p *parser) quantity(e *entry, dr *r4.DeviceRequest, item *model.EquipmentItem) {
	seen := false
	for j, prm := range dr.Parameter {
		if !isQuantityParam(prm.Code) {
			continue
		}
		expr := e.res(fmt.Sprintf("parameter[%d]", j))
		if seen {
			p.is.errorf(IssueInvalid, expr, "the equipment line has more than one quantity parameter")
			continue
		}
		seen = true
		var v *json.Number
		at := expr
		switch {
		case prm.ValueQuantity != nil:
			v, at = prm.ValueQuantity.Value, expr+".valueQuantity.value"
		case prm.ValueRange != nil:
			lo, hi := rangeValue(prm.ValueRange.Low), rangeValue(prm.ValueRange.High)
			at = expr + ".valueRange"
			switch {
			case lo != nil && hi != nil && !sameNumber(*lo, *hi):
				p.is.errorf(IssueValue, at, "the quantity range must name one number: low and high differ")
				continue
			case lo != nil:
				v = lo
			default:
				v = hi
			}
		default:
			p.is.errorf(IssueValue, expr, "the quantity parameter needs valueQuantity or valueRange")
			continue
		}
		if v == nil {
			p.is.errorf(IssueRequired, at, "the quantity parameter has no value")
			continue
		}
		n, ok := wholeNumber(*v)
		if !ok || n < 1 || n > MaxQuantity {
			p.is.errorf(IssueValue, at, "the quantity must be a whole number from 1 to %d", MaxQuantity)
			continue
		}
		item.Quantity = n
	}
}

func rangeValue(q *r4.Quantity) *json.Number {
	if q == nil {
		return nil
	}
	return q.Value
}

func sameNumber(a, b json.Number) bool {
	x, err1 := a.Float64()
	y, err2 := b.Float64()
	return err1 == nil && err2 == nil && x == y
}

func wholeNumber(v json.Number) (int, bool) {
	if n, err := strconv.Atoi(v.String()); err == nil {
		return n, true
	}
	f, err := v.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1e9 {
		return 0, false
	}
	return int(f), true
}

// isQuantityParam reports whether a parameter code means quantity.
func isQuantityParam(cc *r4.CodeableConcept) bool {
	if cc == nil {
		return false
	}
	for _, c := range cc.Coding {
		code := deref(c.Code)
		if code == QuantityParameterCode || (deref(c.System) == snomedSystem && code == snomedQuantity) {
			return true
		}
	}
	return strings.EqualFold(strings.TrimSpace(deref(cc.Text)), QuantityParameterCode)
}

// clinical maps the clinical context: reasons, conditions, body weight,
// other observations and notes.
func (p *parser) clinical(sr *entry, s *r4.ServiceRequest, patient *entry) model.Clinical {
	var c model.Clinical
	for _, cc := range s.ReasonCode {
		if k, ok := coded(cc); ok {
			c.Reasons = append(c.Reasons, k)
		}
	}
	used := map[*entry]bool{}
	add := func(t *entry) {
		if t == nil || used[t] {
			return
		}
		used[t] = true
		switch t.resourceType {
		case "Condition":
			if k, ok := p.condition(t); ok {
				c.Conditions = append(c.Conditions, k)
			}
		case "Observation":
			p.observation(t, &c)
		}
	}
	for i := range s.ReasonReference {
		add(p.follow(&s.ReasonReference[i], sr.res(fmt.Sprintf("reasonReference[%d]", i)), "ServiceRequest.reasonReference", false))
	}
	for i := range s.SupportingInfo {
		add(p.follow(&s.SupportingInfo[i], sr.res(fmt.Sprintf("supportingInfo[%d]", i)), "ServiceRequest.supportingInfo", false))
	}
	// A body weight need not be referenced: any body weight Observation of
	// the Patient in the bundle is taken.
	if c.Weight == nil {
		for _, o := range p.b.ofType("Observation") {
			if used[o] || !p.isWeightFor(o, patient) {
				continue
			}
			add(o)
			if c.Weight != nil {
				break
			}
		}
	}
	for _, n := range s.Note {
		if t := strings.TrimSpace(n.Text); t != "" {
			c.Notes = append(c.Notes, t)
		}
	}
	return c
}

// condition maps a Condition; one entered in error or refuted is skipped.
func (p *parser) condition(e *entry) (model.Coded, bool) {
	cd := decoded[r4.Condition](p, e, keepCondition...)
	if cd.VerificationStatus != nil {
		for _, c := range cd.VerificationStatus.Coding {
			if v := deref(c.Code); v == "entered-in-error" || v == "refuted" {
				return model.Coded{}, false
			}
		}
	}
	if cd.Code == nil {
		p.is.warnf(IssueRequired, e.res("code"), "the Condition has no code; ignored")
		return model.Coded{}, false
	}
	return coded(*cd.Code)
}

// observation maps an Observation into the body weight or the other
// observations. One cancelled or entered in error is skipped.
func (p *parser) observation(e *entry, c *model.Clinical) {
	o := decoded[r4.Observation](p, e, keepObservation...)
	st, ok := code(e, "status", true, p.is)
	if !has(e, "code") && !p.is.failedAt(e.res("code")) {
		p.is.errorf(IssueRequired, e.res("code"), "Observation.code is required")
		return
	}
	if !ok || st == "cancelled" || st == "entered-in-error" {
		return
	}
	k, _ := coded(o.Code)
	if isBodyWeight(o.Code) {
		if c.Weight != nil {
			return
		}
		q := o.ValueQuantity
		if q == nil || q.Value == nil {
			p.is.errorf(IssueRequired, e.res("valueQuantity"), "a body weight Observation needs valueQuantity with a value: it sets safe working loads")
			return
		}
		if f, err := q.Value.Float64(); err != nil || f <= 0 {
			p.is.errorf(IssueValue, e.res("valueQuantity", "value"), "a body weight must be a positive number")
			return
		}
		c.Weight = &model.Observation{Code: k, Value: q.Value.String(), Unit: nonEmpty(deref(q.Unit), deref(q.Code))}
		return
	}
	obs := model.Observation{Code: k}
	switch {
	case o.ValueQuantity != nil && o.ValueQuantity.Value != nil:
		obs.Value, obs.Unit = o.ValueQuantity.Value.String(), nonEmpty(deref(o.ValueQuantity.Unit), deref(o.ValueQuantity.Code))
	case o.ValueString != nil:
		obs.Value = *o.ValueString
	case o.ValueCodeableConcept != nil:
		v, _ := coded(*o.ValueCodeableConcept)
		obs.Value = nonEmpty(v.Display, v.Code)
	case o.ValueBoolean != nil:
		obs.Value = strconv.FormatBool(*o.ValueBoolean)
	case o.ValueInteger != nil:
		obs.Value = strconv.Itoa(*o.ValueInteger)
	default:
		return // no value the hub can carry
	}
	c.Observations = append(c.Observations, obs)
}

// isWeightFor reports whether the Observation in e is a body weight whose
// subject is patient (or that names no subject). It peeks at the raw JSON
// so that an Observation the hub does not use is never decoded.
func (p *parser) isWeightFor(e *entry, patient *entry) bool {
	var peek struct {
		Code    r4.CodeableConcept `json:"code"`
		Subject *r4.Reference      `json:"subject"`
	}
	codeOK := peekAt(e.raw.get("code"), &peek.Code)
	if subjectOK := peekAt(e.raw.get("subject"), &peek.Subject); !codeOK || !subjectOK || !isBodyWeight(peek.Code) {
		return false
	}
	if peek.Subject == nil {
		return true
	}
	t, _ := p.b.resolve(deref(peek.Subject.Reference))
	return t == patient
}

func isBodyWeight(cc r4.CodeableConcept) bool {
	for _, c := range cc.Coding {
		sys, code := deref(c.System), deref(c.Code)
		if (sys == loincSystem && code == loincBodyWeight) || (sys == snomedSystem && code == snomedBodyWeight) {
			return true
		}
	}
	return false
}

// coded maps a CodeableConcept: its first coding with a code, with the
// coding's display or else the concept's text; or the text alone.
func coded(cc r4.CodeableConcept) (model.Coded, bool) {
	text := strings.TrimSpace(deref(cc.Text))
	for _, c := range cc.Coding {
		if deref(c.Code) != "" {
			return model.Coded{System: deref(c.System), Code: deref(c.Code), Display: nonEmpty(deref(c.Display), text)}, true
		}
	}
	if text != "" {
		return model.Coded{Display: text}, true
	}
	return model.Coded{}, false
}
