package fhir

import (
	"slices"
	"strings"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/iceshub/iceshub/internal/model"
)

// Consent: the person's express permission to share ("Shared Agreement").
const (
	// V3ActCodeSystem is HL7 v3 ActCode; in Consent.policyRule its code
	// OPTIN (the person opted in) is express permission. Other policy
	// rules, such as BaRS's IMPLIED, are not.
	V3ActCodeSystem = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	// PolicyOptIn is the v3 ActCode of an opt-in consent policy.
	PolicyOptIn = "OPTIN"
)

var (
	consentStatusCodes    = []string{"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
	consentProvisionTypes = []string{"deny", "permit"}

	// keepConsent is what the hub reads of a Consent about the referral's
	// Patient; status and provision.type are read from the raw JSON.
	keepConsent = []string{"id", "scope", "patient", "dateTime", "policyRule"}
)

// permission reads the person's express permission from the Consent
// resources of the bundle whose patient is the referral's Patient:
//
//   - status rejected or inactive, or active with provision.type deny: a
//     refusal (Given false);
//   - status active with provision.type permit (and no nested provision,
//     whose exceptions the hub does not interpret), or with no
//     provision.type and a policyRule coded v3-ActCode OPTIN: permission
//     (Given true);
//   - anything else (draft, proposed, entered-in-error; an active Consent
//     that records no express decision, such as BaRS's IMPLIED or
//     patient-privacy consents): no record.
//
// When several Consents decide, a refusal wins. A Consent about another
// person, or whose patient does not resolve, is ignored with a warning;
// Consent.status and provision.type of a Consent about the Patient must be
// valid codes. The result is nil when nothing is recorded.
func (p *parser) permission(patient *entry) *model.Permission {
	if patient == nil {
		return nil
	}
	var out *model.Permission
	for _, e := range p.b.ofType("Consent") {
		if !p.consentAbout(e, patient) {
			continue
		}
		if perm := p.consent(e); perm != nil && (out == nil || (out.Given && !perm.Given)) {
			out = perm
		}
	}
	return out
}

// consentAbout reports whether the Consent in e is about patient, warning
// when it names nobody, someone not in the bundle or another Patient. It
// peeks at the raw JSON so that a Consent the hub does not use is never
// decoded.
func (p *parser) consentAbout(e *entry, patient *entry) bool {
	var peek struct {
		Patient *r4.Reference `json:"patient"`
	}
	if !peekAt(e.raw.get("patient"), &peek.Patient) {
		p.is.warnf(IssueStructure, e.res("patient"), "Consent.patient is not a Reference; the Consent was ignored")
		return false
	}
	if peek.Patient == nil {
		p.is.warnf(IssueRequired, e.res("patient"), "the Consent names no patient; it was ignored")
		return false
	}
	t := p.follow(peek.Patient, e.res("patient"), "Consent.patient", false, "Patient")
	if t == nil {
		return false
	}
	if t != patient {
		p.is.warnf(IssueBusinessRule, e.res("patient", "reference"), "the Consent is about another Patient than the referral's; it was ignored")
		return false
	}
	return true
}

// consent maps one Consent about the referral's Patient; nil when it
// records no express decision.
func (p *parser) consent(e *entry) *model.Permission {
	c := decoded[r4.Consent](p, e, keepConsent...)
	st, ok := code(e, "status", true, p.is)
	if !ok {
		return nil
	}
	perm := &model.Permission{
		Source:   model.PermissionSourceFHIRConsent,
		Scope:    firstCode(c.Scope),
		Recorded: datePart(deref(c.DateTime)),
	}
	if c.PolicyRule != nil {
		perm.Policy = firstCode(*c.PolicyRule)
	}
	switch st {
	case "rejected", "inactive":
		return perm // refused or withdrawn
	case "active":
	default:
		return nil // not (or never) in force
	}

	prov, _ := optObject(e.raw, "provision", e.res("provision"), p.is)
	pt, hasType := optString(prov, "type", e.res("provision", "type"), p.is)
	if hasType && !slices.Contains(consentProvisionTypes, pt) {
		p.is.errorf(IssueInvalid, e.res("provision", "type"), "Consent.provision.type must be one of the codes %s", strings.Join(consentProvisionTypes, ", "))
		return nil
	}
	switch {
	case pt == "deny":
		return perm
	case pt == "permit" && !prov.get("provision").isNull():
		p.is.warnf(IssueNotSupported, e.res("provision", "provision"), "the Consent permits with exceptions (nested provisions), which the hub does not interpret; it was not taken as express permission")
		return nil
	case pt == "permit":
		perm.Given = true
		return perm
	}
	if c.PolicyRule != nil && hasCoding(*c.PolicyRule, V3ActCodeSystem, PolicyOptIn) {
		perm.Given = true
		return perm
	}
	return nil
}

// firstCode returns the code of the first coding of cc that has one.
func firstCode(cc r4.CodeableConcept) string {
	for _, c := range cc.Coding {
		if s := deref(c.Code); s != "" {
			return s
		}
	}
	return ""
}

func hasCoding(cc r4.CodeableConcept, system, code string) bool {
	for _, c := range cc.Coding {
		if deref(c.System) == system && deref(c.Code) == code {
			return true
		}
	}
	return false
}

// datePart returns the YYYY-MM-DD date of a FHIR dateTime, or "" when it
// names no full date.
func datePart(dt string) string {
	if len(dt) >= 10 && validDate(dt[:10]) {
		return dt[:10]
	}
	return ""
}
