// Package fhir maps FHIR R4 referral bundles, as NHS systems send them, to
// the canonical model.Referral, and cancellations and collection requests
// to the model.Event they ask for. It is pure: no I/O, no logging, no clock.
//
// ParseMessage reads a message Bundle (as for $process-message) and
// ParseTransaction a transaction or batch Bundle. Both check what the
// golang-fhir-models types cannot (they validate nothing): the resourceType
// of every entry, the required elements and codes of the resources the hub
// uses, that references resolve inside the bundle, that the Patient has a
// valid NHS number, and that the referral has a reason or an equipment line.
// Every problem becomes an Issue, in the shape of an OperationOutcome
// issue, with a FHIRPath expression counted from the Bundle.
//
// The reader is strict about what the hub uses and tolerant about the rest:
//
//   - A JSON object anywhere in the body that repeats a member name, the
//     names compared after unescaping and without regard to case (as
//     encoding/json matches names to fields; jsonlimit.SameName), makes
//     the body unreadable (ErrNotBundle), with one issue at the FHIRPath
//     of the object and the name in the diagnostics (only when it is a
//     plain identifier, jsonlimit.ShownName). FHIR JSON forbids it, and
//     readers disagree on which value counts: this one keeps the last, a
//     gateway may have checked the first. It is found while the body is
//     read, at no extra pass.
//   - Only the resources reached from the referral are decoded (the
//     MessageHeader, the ServiceRequest and what its subject, requester,
//     locationReference, reasonReference and supportingInfo reference, every
//     DeviceRequest and the Device it names, and a body weight Observation
//     of the Patient), and of those only the elements the hub reads. An
//     invalid element anywhere else is ignored, so BaRS examples whose
//     Observation.note is an object or whose MessageHeader.destination has
//     no endpoint are read without complaint.
//   - A reference in ServiceRequest.subject or requester, DeviceRequest
//     subject or codeReference, or MessageHeader.focus must resolve to a
//     Bundle entry of the right type: by fullUrl (urn:uuid:, urn:oid: or an
//     absolute URL) or as a relative Type/id. A bare id is no reference.
//     An unresolvable reference in any other element the hub reads
//     (reasonReference, supportingInfo, locationReference, MessageHeader
//     sender, PractitionerRole practitioner and organization) is a warning
//     and the element is ignored; in elements the hub does not read it is
//     not even looked at.
//   - A modifierExtension on a resource the hub uses is an error: its
//     meaning cannot be ignored safely.
//   - Identifier systems of NHS numbers and ODS codes are compared without
//     regard to case, since senders write ".../id/ods-organization-code".
//
// The bundle's ServiceRequest also says what kind of message it is
// (Parsed.Kind): an active one is a referral (or, when the hub already
// holds its id, an amendment, which the caller decides, with the same
// checks); one whose status is revoked or entered-in-error is a
// cancellation of the referral with that ServiceRequest id; one coded
// RequestKindSystem collection is a collection request for the referral
// its basedOn names. A cancellation or collection request needs only the
// ServiceRequest and the Patient it is for, whose NHS number, when given,
// must be valid: the referral it names was checked when it came.
//
// Diagnostics never quote a value from the bundle, so an issue can be
// logged and returned without disclosing personal data.
package fhir
