package legacy

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/iceshub/iceshub/internal/model"
)

// Cancellations and collection requests (flows F2 and F8): what the NHS
// asks of a referral the hub already holds. Like the referral's, these
// conventions are the hub's own where FHIR and UK Core have no element for
// the thing, and are documented in the CapabilityStatement.
const (
	// ReferralIDSystem is the identifier system of the hub's referral id:
	// the hub's answer to a referral carries it as Bundle.identifier, and a
	// collection request may quote it in ServiceRequest.basedOn.identifier.
	ReferralIDSystem = "https://example.org/ices/Id/referral"
	// RequestKindSystem codes, in ServiceRequest.code, what a
	// ServiceRequest asks of the hub: RequestKindReferral (the default
	// when no coding in this system is given) or RequestKindCollection.
	RequestKindSystem     = "https://example.org/ices/CodeSystem/request-kind"
	RequestKindReferral   = "referral"
	RequestKindCollection = "collection"
	// CollectionReasonSystem codes why equipment is to be collected, in
	// the reasonCode of a collection request: model.CollectionNoLongerNeeded,
	// model.CollectionMoved or model.CollectionDied.
	CollectionReasonSystem = "https://example.org/ices/CodeSystem/collection-reason"
	// CancellationReasonExtension is a ServiceRequest extension whose
	// valueCodeableConcept says why a referral is cancelled (any code
	// system). Without it, the ServiceRequest's note is the reason.
	CancellationReasonExtension = "https://example.org/ices/StructureDefinition/cancellation-reason"
	// CancellationReasonSystem is the hub's code system of cancellation
	// reasons; its code CancelledInError is the reason of a ServiceRequest
	// whose status is entered-in-error.
	CancellationReasonSystem = "https://example.org/ices/CodeSystem/cancellation-reason"
	CancelledInError         = "entered-in-error"
)

// collectionReasons are the codes of CollectionReasonSystem.
var collectionReasons = []string{model.CollectionNoLongerNeeded, model.CollectionMoved, model.CollectionDied}

// The elements of a ServiceRequest read for a cancellation and for a
// collection request, and of its Patient: the referral's strict checks
// (requester, address, reason or equipment) do not apply, since the hub
// already holds the referral.
var (
	keepCancellation    = []string{"id", "extension", "status", "intent", "subject", "note"}
	keepCollection      = []string{"id", "status", "intent", "code", "basedOn", "subject", "reasonCode", "note"}
	keepPatientIdentity = []string{"id", "identifier"}
)

// requestKind tells what the ServiceRequest in sr asks: a collection when
// ServiceRequest.code has the coding RequestKindSystem collection, a
// cancellation when its status is revoked or entered-in-error, otherwise a
// referral. It peeks at the raw JSON, so that a code the hub does not use
// can never make a referral fail; the mapping of each kind checks the
// elements it reads. A coding in RequestKindSystem with an unknown code
// is an error.
func (p *parser) requestKind(sr *entry) model.Kind {
	var cc r4.CodeableConcept
	if json.Unmarshal(sr.raw["code"], &cc) == nil {
		for i, c := range cc.Coding {
			if deref(c.System) != RequestKindSystem {
				continue
			}
			switch deref(c.Code) {
			case RequestKindCollection:
				return model.KindCollection
			case RequestKindReferral:
			default:
				p.is.errorf(IssueInvalid, sr.res("code", fmt.Sprintf("coding[%d]", i), "code"), "a ServiceRequest.code coding in %s must be one of the codes %s, %s", RequestKindSystem, RequestKindReferral, RequestKindCollection)
			}
		}
	}
	if st, _ := jsonString(sr.raw["status"]); st == "revoked" || st == "entered-in-error" {
		return model.KindCancellation
	}
	return model.KindReferral
}

// cancellation maps a ServiceRequest whose status is revoked or
// entered-in-error: the referral recorded with the same ServiceRequest id
// is cancelled. The reason is the CancellationReasonExtension's concept,
// else the text of ServiceRequest.note; entered-in-error always gives the
// reason CancelledInError. The notes are the description when the reason
// is coded.
func (p *parser) cancellation(sr *entry, out *Parsed) {
	s := decoded[r4.ServiceRequest](p, sr, keepCancellation...)
	st, _ := code(sr, "status", true, p.is)
	code(sr, "intent", true, p.is)
	out.Target.ServiceRequestID = nonEmpty(sr.id, sr.fullURL)
	if out.Target.ServiceRequestID == "" {
		p.is.errorf(IssueRequired, sr.res("id"), "a cancellation names the referral it cancels by the id of its ServiceRequest: ServiceRequest.id (or the entry's fullUrl) is required")
	}
	out.Referral.Source.ServiceRequestID = out.Target.ServiceRequestID
	out.Target.NHSNumber = p.eventPatient(sr, s)

	ev := &model.Event{Kind: model.KindCancellation, Status: model.StatusCancelled}
	notes := noteText(s.Note)
	var reason model.Coded
	isCoded := false
	for i, x := range s.Extension {
		if x.Url != CancellationReasonExtension || isCoded {
			continue
		}
		if x.ValueCodeableConcept != nil {
			reason, isCoded = coded(*x.ValueCodeableConcept)
		}
		if !isCoded {
			p.is.errorf(IssueRequired, sr.res(fmt.Sprintf("extension[%d]", i), "valueCodeableConcept"), "the cancellation reason extension needs a valueCodeableConcept with a code or text")
		}
	}
	switch {
	case st == "entered-in-error":
		ev.Reason = model.Coded{System: CancellationReasonSystem, Code: CancelledInError, Display: "Entered in error"}
		ev.Description = notes
	case isCoded:
		ev.Reason, ev.Description = reason, notes
	default:
		ev.Reason = model.Coded{Display: notes}
	}
	out.Change = ev
}

// collection maps a collection request: an active ServiceRequest coded
// RequestKindSystem collection whose basedOn names the referral's
// ServiceRequest and whose reasonCode says why, in
// CollectionReasonSystem. Its notes are the description.
func (p *parser) collection(sr *entry, out *Parsed) {
	s := decoded[r4.ServiceRequest](p, sr, keepCollection...)
	if st, ok := code(sr, "status", true, p.is); ok && st != "active" {
		p.is.errorf(IssueBusinessRule, sr.res("status"), "a collection request must be active: the hub cannot withdraw one once sent")
	}
	code(sr, "intent", true, p.is)
	out.Target.NHSNumber = p.eventPatient(sr, s)
	out.Referral.Source.ServiceRequestID = nonEmpty(sr.id, sr.fullURL)

	out.Paths.BasedOn = sr.res("basedOn[0]")
	switch {
	case len(s.BasedOn) == 0:
		if !p.anyErrorUnder(sr.res("basedOn")) {
			p.is.errorf(IssueRequired, sr.res("basedOn"), "a collection request needs basedOn: a reference to the ServiceRequest of the referral whose equipment is collected (ServiceRequest/<id>), or the hub's referral id as identifier (system %s)", ReferralIDSystem)
		}
	case len(s.BasedOn) > 1:
		p.is.errorf(IssueNotSupported, sr.res("basedOn[1]"), "a collection request is based on one referral; the hub takes one per message")
	default:
		p.basedOn(sr, &s.BasedOn[0], out.Paths.BasedOn, &out.Target)
	}

	ev := &model.Event{Kind: model.KindCollection, Status: model.StatusCollectionRequested, Description: noteText(s.Note)}
	found := false
	for i, cc := range s.ReasonCode {
		for j, c := range cc.Coding {
			if deref(c.System) != CollectionReasonSystem || found {
				continue
			}
			if k := deref(c.Code); !slices.Contains(collectionReasons, k) {
				p.is.errorf(IssueInvalid, sr.res(fmt.Sprintf("reasonCode[%d]", i), fmt.Sprintf("coding[%d]", j), "code"), "a collection reason in %s must be one of the codes %s", CollectionReasonSystem, strings.Join(collectionReasons, ", "))
				continue
			}
			found = true
			ev.Reason = model.Coded{System: CollectionReasonSystem, Code: deref(c.Code), Display: nonEmpty(deref(c.Display), strings.TrimSpace(deref(cc.Text)))}
		}
	}
	if !found && !p.anyErrorUnder(sr.res("reasonCode")) {
		p.is.errorf(IssueRequired, sr.res("reasonCode"), "a collection request needs a reasonCode with a coding in %s: %s", CollectionReasonSystem, strings.Join(collectionReasons, ", "))
	}
	out.Change = ev
}

// serviceRequestRef is a reference to a ServiceRequest outside the bundle:
// relative ServiceRequest/id or an absolute URL ending so, optionally with
// a version.
var serviceRequestRef = regexp.MustCompile(`^(?:https?://[^?#]+/)?ServiceRequest/([A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$`)

// uuidURN is a urn:uuid: fullUrl.
var uuidURN = regexp.MustCompile(`^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// basedOn reads which referral a collection request is about from its
// basedOn reference at expr, into t:
//
//   - a reference to a ServiceRequest entry in the bundle: that entry's
//     id, else its fullUrl;
//   - ServiceRequest/<id>, or an absolute URL ending in it: the id;
//   - a urn:uuid: reference that is no entry: the referral's
//     ServiceRequest had no id and was recorded by that fullUrl;
//   - no reference but an identifier in ReferralIDSystem: the hub's
//     referral id, as its answer to the referral gave it.
//
// Anything else is an error: the hub does not guess.
func (p *parser) basedOn(sr *entry, ref *r4.Reference, expr string, t *Target) {
	if rt := deref(ref.Type); rt != "" && rt != "ServiceRequest" {
		p.is.errorf(IssueInvalid, expr+".type", "ServiceRequest.basedOn of a collection request must reference a ServiceRequest")
		return
	}
	r := strings.TrimSpace(deref(ref.Reference))
	if r == "" {
		if id := ref.Identifier; id != nil && deref(id.System) == ReferralIDSystem && strings.TrimSpace(deref(id.Value)) != "" {
			t.ReferralID = strings.TrimSpace(deref(id.Value))
			return
		}
		p.is.errorf(IssueRequired, expr+".reference", "ServiceRequest.basedOn needs a reference to the referral's ServiceRequest (ServiceRequest/<id>), or an identifier with the hub's referral id (system %s)", ReferralIDSystem)
		return
	}
	if e, why := p.b.resolve(r); why == resolved {
		switch {
		case e.resourceType != "ServiceRequest":
			p.is.errorf(IssueInvalid, expr+".reference", "ServiceRequest.basedOn must reference a ServiceRequest, not %s", typeName(e))
		case e == sr:
			p.is.errorf(IssueInvalid, expr+".reference", "ServiceRequest.basedOn references the collection request itself, not the referral")
		default:
			t.ServiceRequestID = nonEmpty(e.id, e.fullURL)
		}
		return
	}
	if m := serviceRequestRef.FindStringSubmatch(r); m != nil {
		t.ServiceRequestID = m[1]
		return
	}
	if uuidURN.MatchString(r) {
		t.ServiceRequestID = r
		return
	}
	p.is.errorf(IssueInvalid, expr+".reference", "ServiceRequest.basedOn must reference the referral's ServiceRequest as ServiceRequest/<id>, an absolute URL ending in ServiceRequest/<id>, or the urn:uuid: fullUrl it was sent with")
}

// eventPatient checks the Patient a cancellation or collection request is
// for: ServiceRequest.subject must reference a Patient in the bundle, whose
// NHS number, when given, must be valid. Nothing else of the Patient is
// read. It returns the NHS number, or "".
func (p *parser) eventPatient(sr *entry, s *r4.ServiceRequest) string {
	if !has(sr, "subject") {
		if !p.is.failedAt(sr.res("subject")) {
			p.is.errorf(IssueRequired, sr.res("subject"), "ServiceRequest.subject is required: it must reference the Patient")
		}
		return ""
	}
	patient := p.follow(&s.Subject, sr.res("subject"), "ServiceRequest.subject", true, "Patient")
	if patient == nil {
		return ""
	}
	pt := decoded[r4.Patient](p, patient, keepPatientIdentity...)
	return p.nhsNumber(patient, pt, false)
}

// timestamp returns Bundle.timestamp. For an event, where it is the time
// the event happened, one that is not a FHIR instant is a warning and the
// time received is used instead.
func (p *parser) timestamp(event bool) time.Time {
	if p.b.timestamp == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, p.b.timestamp)
	if err != nil || !fhirInstant.MatchString(p.b.timestamp) {
		if event {
			p.is.warnf(IssueValue, "Bundle.timestamp", "Bundle.timestamp is not a FHIR instant; the time the hub received the message is used instead")
		}
		return time.Time{}
	}
	return t
}

// fhirInstant is the FHIR instant type: a full date and time with a zone.
var fhirInstant = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)

// noteText joins the texts of notes, one per line.
func noteText(notes []r4.Annotation) string {
	var out []string
	for _, n := range notes {
		if t := strings.TrimSpace(n.Text); t != "" {
			out = append(out, t)
		}
	}
	return strings.Join(out, "\n")
}
