package fhir

import (
	"net/http"

	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// CapabilityDate is the date of the CapabilityStatement: change it with
// what the hub accepts.
const CapabilityDate = "2025-07-01"

// capabilityStatement is an R4 CapabilityStatement, with only the elements
// the hub fills.
type capabilityStatement struct {
	ResourceType   string                `json:"resourceType"` // "CapabilityStatement"
	ID             string                `json:"id"`
	Name           string                `json:"name"`
	Title          string                `json:"title"`
	Status         string                `json:"status"`
	Date           string                `json:"date"`
	Publisher      string                `json:"publisher"`
	Description    string                `json:"description"`
	Kind           string                `json:"kind"`
	Software       capabilitySoftware    `json:"software"`
	Implementation capabilityImplemented `json:"implementation"`
	FHIRVersion    string                `json:"fhirVersion"`
	Format         []string              `json:"format"`
	Rest           []capabilityRest      `json:"rest"`
}

type capabilitySoftware struct {
	Name string `json:"name"`
}

type capabilityImplemented struct {
	Description string `json:"description"`
	URL         string `json:"url,omitempty"`
}

type capabilityRest struct {
	Mode          string                `json:"mode"`
	Documentation string                `json:"documentation"`
	Resource      []capabilityResource  `json:"resource"`
	Interaction   []capabilityInteract  `json:"interaction"`
	Operation     []capabilityOperation `json:"operation"`
}

type capabilityResource struct {
	Type          string `json:"type"`
	Documentation string `json:"documentation"`
}

type capabilityInteract struct {
	Code          string `json:"code"`
	Documentation string `json:"documentation"`
}

type capabilityOperation struct {
	Name          string `json:"name"`
	Definition    string `json:"definition"`
	Documentation string `json:"documentation"`
}

// restDocumentation says, for senders, what the hub reads and how strict it
// is. Keep it in step with mappings/fhir.
const restDocumentation = `The ICES integration hub takes NHS referrals and equipment orders: one ServiceRequest per Bundle, with the Patient it is for, the prescriber (ServiceRequest.requester) and one DeviceRequest per equipment line. It accepts a referral only after storing it durably; the answer names the hub's referral id (Bundle.identifier, system ` + ReferralIDSystem + `).

**Strict about what the hub uses.** The resourceType of every entry is checked. In the resources the hub reads, required elements, codes and JSON types are checked and every problem is reported with a FHIRPath expression (422). References in ServiceRequest.subject and requester, DeviceRequest.subject and codeReference and MessageHeader.focus must resolve to a Bundle entry of the right type, by fullUrl or relative Type/id (a bare id is not a reference). The Patient needs an NHS number (` + "https://fhir.nhs.uk/Id/nhs-number" + `) with a valid modulus-11 check digit, a name and a home address with a UK postcode. ServiceRequest.status must be active for a referral (revoked or entered-in-error is a cancellation, below) and any DeviceRequest.status active. The referral needs a reason (reasonCode or reasonReference) or at least one DeviceRequest. A modifierExtension on a resource the hub reads is refused.

**Tolerant about what it does not use.** Only the elements listed per resource below are read; anything else, including elements that are invalid FHIR (Observation.note sent as an object, a MessageHeader.destination without endpoint), unknown elements, unknown resource types and resources nothing refers to, is ignored. A reference that does not resolve in ServiceRequest.reasonReference, supportingInfo or locationReference, MessageHeader.sender or PractitionerRole.practitioner or organization is a warning and is ignored. Warnings come back in the OperationOutcome of a success. Identifier systems of NHS numbers and ODS codes are compared without regard to case; NHS numbers may contain spaces or hyphens; postcodes are normalised.

**Conventions.** Equipment codes: ` + fhirmap.CatalogueSystem + ` is preferred, any coded line is accepted; a line with text only is taken with a warning. Quantity: a DeviceRequest.parameter whose code is "quantity" (any system, conventionally ` + fhirmap.DeviceParameterSystem + `) or SNOMED CT 246205007, with valueQuantity.value or a valueRange naming one number: a whole number from 1 to 1000; 1 when absent. Delivery setting: the first Location of ServiceRequest.locationReference whose type has a code in ` + fhirmap.DeliverySettingSystem + ` (home, care-home, school, supported-living, custodial, other) or v3-RoleCode PTRES (home) or NCCF (care home); any other Location is where the service was asked for and is ignored; the default is home. Access notes for the people who deliver: the ServiceRequest extension ` + fhirmap.AccessNotesExtension + ` (valueString); ServiceRequest.note is clinical. Priority: ServiceRequest.priority, routine when absent. Body weight: an Observation with LOINC 29463-7 (or SNOMED CT 27113001) and a positive valueQuantity, referenced by supportingInfo or reasonReference, or anywhere in the Bundle for the Patient.

**Changes to a referral: cancellations, amendments, collection requests.** The same endpoints take what the NHS asks of a referral the hub holds; the hub matches it by the ServiceRequest id the referral was sent with (ServiceRequest.id, else the entry's fullUrl, exactly as sent). A ServiceRequest with status revoked or entered-in-error is a cancellation of that referral: only the ServiceRequest (status, intent, subject) and the Patient it references are needed, and the Patient's NHS number, when given, must be valid and be the referral's. Its reason is the extension ` + fhirmap.CancellationReasonExtension + ` (valueCodeableConcept), else ServiceRequest.note; entered-in-error gives the reason ` + fhirmap.CancellationReasonSystem + ` ` + fhirmap.CancelledInError + `. An active referral whose ServiceRequest id the hub holds is an amendment: the whole referral as it now stands, with every check of a new referral; a Patient with another NHS number is refused (another person is never merged into a referral), as is an amendment of an order cancelled or collected (409); a resend with the same content stays a duplicate. A collection request is an active ServiceRequest whose code has the coding ` + fhirmap.RequestKindSystem + ` ` + fhirmap.RequestKindCollection + `, whose basedOn names the referral (ServiceRequest/<id>, an absolute URL ending so, the urn:uuid: fullUrl the ServiceRequest was sent with, or an identifier with the hub's referral id, system ` + ReferralIDSystem + `) and whose reasonCode has a coding in ` + fhirmap.CollectionReasonSystem + ` (no-longer-needed, moved or died); its note is passed on. Refusals: no referral with that id 422 not-found at the id or basedOn; a change the order's status does not allow (cancelling a delivered order, collecting equipment never delivered) 409 business-rule at ServiceRequest.status; the referral changed meanwhile 409 conflict (send again); a hub built without these changes answers 422 not-supported. The success answer is as for a referral, naming the referral's id and the hub's event id.

**Headers.** Content-Type application/fhir+json or application/json (charset UTF-8, fhirVersion 4.0). X-Request-ID, when sent, must be a UUID: a repeated request with the same X-Request-ID (or the same MessageHeader id, or transaction Bundle.id) and the same content gets the first answer again, byte for byte. X-Correlation-ID is echoed (one is made when absent) and carried to every partner. Bodies over the size limit get 413.`

// capability builds the CapabilityStatement.
func (h *Handler) capability(r *http.Request) capabilityStatement {
	readOnly := "Read inside a Bundle only; the hub offers no RESTful interactions on this type."
	return capabilityStatement{
		ResourceType: "CapabilityStatement",
		ID:           "iceshub",
		Name:         "IcesHubCapabilityStatement",
		Title:        "ICES integration hub: referrals and equipment orders",
		Status:       "active",
		Date:         CapabilityDate,
		Publisher:    "iceshub",
		Description:  "What the ICES integration hub accepts from NHS systems: FHIR R4 referrals and equipment orders as message Bundles ($process-message) or transaction and batch Bundles.",
		Kind:         "instance",
		Software:     capabilitySoftware{Name: "iceshub"},
		Implementation: capabilityImplemented{
			Description: "ICES integration hub FHIR endpoint",
			URL:         h.baseURL(r),
		},
		FHIRVersion: "4.0.1",
		Format:      []string{ContentType},
		Rest: []capabilityRest{{
			Mode:          "server",
			Documentation: restDocumentation,
			Resource: []capabilityResource{
				{"Bundle", "POST to $process-message: type message, MessageHeader first. POST to the base: type transaction or batch (read as one referral, all or nothing), entries POST or PUT. Read: id, type, entry.fullUrl, entry.resource, entry.request.method and url."},
				{"MessageHeader", readOnly + " Read: id (else the uuid of a urn:uuid: fullUrl), eventCoding (required; copied into the response), focus (required; must reference the ServiceRequest), sender (Organization: sender's ODS code)."},
				{"ServiceRequest", readOnly + " Read for a referral or an amendment: id, status (required, active), intent (required), priority, doNotPerform (must not be true), subject (required: the Patient), requester (required: Practitioner, PractitionerRole or Organization, or an identifier with an ODS code), reasonCode, reasonReference (Condition, Observation), supportingInfo (Observation, Condition), locationReference (Location), note, extension " + fhirmap.AccessNotesExtension + ". For a cancellation (status revoked or entered-in-error): id, status, intent, subject, note, extension " + fhirmap.CancellationReasonExtension + ". For a collection request (code " + fhirmap.RequestKindSystem + " " + fhirmap.RequestKindCollection + "): id, status (active), intent, code, basedOn (required, one), subject, reasonCode (required, " + fhirmap.CollectionReasonSystem + "), note."},
				{"Patient", readOnly + " Read for a referral: identifier (NHS number, required and checked), name (required), telecom, gender, birthDate, address (home address with postcode, required), deceased[x] (a deceased person is refused). For a cancellation or collection request: identifier only (an NHS number, when given, is checked and must be the referral's)."},
				{"DeviceRequest", readOnly + " One equipment line each. Read: id, status (active when present), intent (required), codeCodeableConcept or codeReference (Device; required), parameter (quantity), subject (required: the ServiceRequest's Patient), note."},
				{"Device", readOnly + " Read when a DeviceRequest.codeReference names it: type, deviceName."},
				{"Practitioner", readOnly + " Read: name, telecom (work contact of the prescriber)."},
				{"PractitionerRole", readOnly + " Read: practitioner, organization, telecom."},
				{"Organization", readOnly + " Read: identifier (ODS code, " + fhirmap.ODSSystem + "), name, telecom."},
				{"Location", readOnly + " Read: name, type (delivery setting)."},
				{"Condition", readOnly + " Read: code, verificationStatus (entered-in-error and refuted are skipped)."},
				{"Observation", readOnly + " Read: status (required), code (required), subject, value[x] (Quantity, CodeableConcept, string, boolean, integer)."},
			},
			Interaction: []capabilityInteract{
				{"transaction", "POST /fhir with a transaction Bundle holding one referral, cancellation, amendment or collection request; answered with a transaction-response, one entry per request entry (the ServiceRequest's 200 OK for a cancellation or amendment)."},
				{"batch", "POST /fhir with a batch Bundle holding one referral; read like a transaction (all or nothing); answered with a batch-response."},
			},
			Operation: []capabilityOperation{{
				Name:          "process-message",
				Definition:    "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
				Documentation: "POST /fhir/$process-message with a message Bundle (a referral, a cancellation, an amendment or a collection request), synchronous. Answered 200 with a response message: MessageHeader.response.identifier is the request's MessageHeader id, response.code ok, eventCoding as in the request, focus an OperationOutcome naming the hub's referral id (and, for a change to a referral, the hub's event id) and any warnings.",
			}},
		}},
	}
}

// metadata serves the CapabilityStatement.
func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(marshal(h.capability(r)))
}
