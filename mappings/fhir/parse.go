package fhir

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/iceshub/iceshub/internal/model"
)

// Parsed is a referral read from a bundle the hub accepts.
type Parsed struct {
	// Referral is the canonical referral. ID, ReceivedAt and
	// Source.CorrelationID are left empty: they belong to the request, not
	// to the bundle, and are the caller's to set.
	Referral model.Referral
	// BundleType is the Bundle.type: "message", "transaction" or "batch".
	BundleType string
	// Event is the eventCoding of the request's MessageHeader, for the
	// response message; zero for a transaction or batch.
	Event model.Coded
	// Entries lists the entries of a transaction or batch Bundle in order,
	// so that a response can answer each one; nil for a message.
	Entries []Entry
	// Issues holds the warnings and information found in an accepted
	// bundle: references that resolve to nothing in elements the hub reads
	// but can do without, unknown resource types, and the like. It never
	// holds an error.
	Issues []Issue

	// Kind is what the bundle asks of the hub: model.KindReferral for an
	// active ServiceRequest (a new referral, or an amendment when the hub
	// already holds a referral with that ServiceRequest id, which only the
	// caller can tell), model.KindCancellation for a ServiceRequest whose
	// status is revoked or entered-in-error, model.KindCollection for a
	// ServiceRequest coded as a collection request (RequestKindSystem).
	Kind model.Kind
	// Change is, for a cancellation or a collection request, the event it
	// asks for: Kind, Status, Reason and Description are set; the ids and
	// times are the caller's. Nil for a referral. For these kinds only
	// Referral.Source of Referral is filled in.
	Change *model.Event
	// Target names the referral the bundle is about.
	Target Target
	// Paths gives the FHIRPath of the elements a caller may refuse the
	// bundle at after parsing (an unknown ServiceRequest, another
	// person's NHS number).
	Paths Paths
	// Timestamp is Bundle.timestamp; zero when absent or not an instant.
	Timestamp time.Time
	// Withdrawn, for a referral, are the paths of its DeviceRequests whose
	// status is revoked or entered-in-error: lines the requester took back,
	// left out of Referral.Equipment. Only an amendment may carry them
	// (the line is withdrawn from an order the hub holds); the caller
	// refuses them in a new referral.
	Withdrawn []string `json:",omitempty"`
}

// Target names the referral a bundle is about, as the hub recorded it.
type Target struct {
	// ServiceRequestID is the ServiceRequest id exactly as a referral
	// records it in model.Source.ServiceRequestID: the logical id, else the
	// entry's fullUrl. For a referral or a cancellation it is the bundle's
	// own ServiceRequest; for a collection request, the one its basedOn
	// names. Empty when the collection request names the referral by
	// ReferralID instead.
	ServiceRequestID string `json:"serviceRequestId,omitempty"`
	// ReferralID is the hub's referral id, when a collection request names
	// it (ServiceRequest.basedOn.identifier, system ReferralIDSystem).
	ReferralID string `json:"referralId,omitempty"`
	// NHSNumber is the Patient's NHS number, when the bundle gives one.
	NHSNumber string `json:"nhsNumber,omitempty"`
}

// Paths are FHIRPath expressions, counted from the Bundle, of elements of
// the bundle's ServiceRequest and Patient; empty when not in the bundle.
type Paths struct {
	// ServiceRequest is the ServiceRequest resource.
	ServiceRequest string
	// ID is where the ServiceRequest's id was read: its id, else its
	// entry's fullUrl.
	ID string
	// Status is ServiceRequest.status.
	Status string
	// Code is ServiceRequest.code.
	Code string
	// BasedOn is the ServiceRequest.basedOn of a collection request.
	BasedOn string
	// NHSNumber is the Patient identifier value the NHS number was read
	// from.
	NHSNumber string
}

// Entry is one entry of a transaction or batch Bundle.
type Entry struct {
	ResourceType string
	// Method is the request method, POST or PUT.
	Method string
	// URL is the request URL as sent: a type ("Patient") for POST,
	// Type/id for PUT.
	URL     string
	FullURL string
	// ID is the resource id as sent, if any.
	ID string
	// Referral is true for the entry holding the referral's ServiceRequest.
	Referral bool
}

// ParseMessage reads a FHIR R4 message Bundle as sent to $process-message:
// Bundle.type "message", a MessageHeader as the first entry, whose focus
// references the referral's ServiceRequest.
//
// It returns the referral, or an error that is always a *ValidationError
// carrying every issue found: one that unwraps to ErrNotBundle when body is
// not JSON or not a Bundle at all, to ErrInvalid when it is a Bundle the
// hub cannot accept. It reads body and nothing else; it is safe for
// concurrent use.
func ParseMessage(body []byte) (Parsed, error) { return parse(body, true) }

// ParseTransaction reads a FHIR R4 transaction or batch Bundle as sent to
// the base endpoint: entries with request.method POST or PUT, holding one
// ServiceRequest, the Patient it is for and the DeviceRequests of the
// order. A batch is read like a transaction: the hub accepts the whole
// referral or nothing. Errors are as for ParseMessage.
func ParseTransaction(body []byte) (Parsed, error) { return parse(body, false) }

func parse(body []byte, message bool) (Parsed, error) {
	is := &issues{}
	b, notBundle := readBundle(body, is)
	if notBundle {
		return Parsed{}, &ValidationError{Kind: ErrNotBundle, Issues: is.sorted()}
	}
	defer b.t.release()
	p := &parser{b: b, is: is, cache: map[*entry]any{}}
	out := Parsed{BundleType: b.typ}
	out.Referral.Source.BundleID = b.id
	var sr *entry
	if message {
		sr = p.message(&out)
	} else {
		sr = p.transaction(&out)
	}
	out.Kind = model.KindReferral
	if sr != nil {
		out.Paths = Paths{ServiceRequest: sr.res(), ID: sr.res("id"), Status: sr.res("status"), Code: sr.res("code")}
		if sr.id == "" {
			out.Paths.ID = sr.expr + ".fullUrl"
		}
		switch out.Kind = p.requestKind(sr); out.Kind {
		case model.KindCancellation:
			p.cancellation(sr, &out)
		case model.KindCollection:
			p.collection(sr, &out)
		default:
			p.referral(sr, &out.Referral)
			out.Target = Target{ServiceRequestID: out.Referral.Source.ServiceRequestID, NHSNumber: out.Referral.Person.NHSNumber}
		}
		out.Paths.NHSNumber = p.nhsAt
	}
	out.Timestamp = p.timestamp(out.Change != nil)
	out.Withdrawn = p.withdrawn
	p.unknownTypes()
	if is.hasErrors() {
		return Parsed{}, &ValidationError{Kind: ErrInvalid, Issues: byEntry(is.sorted())}
	}
	out.Issues = byEntry(is.sorted())
	return out, nil
}

// byEntry orders issues by severity, then by the bundle entry they are in,
// keeping the order found within an entry.
func byEntry(list []Issue) []Issue {
	sort.SliceStable(list, func(i, j int) bool {
		ei, ej := list[i].IsError(), list[j].IsError()
		if ei != ej {
			return ei
		}
		return entryIndex(list[i].Expression) < entryIndex(list[j].Expression)
	})
	return list
}

var entryIndexRE = regexp.MustCompile(`^Bundle\.entry\[(\d+)\]`)

func entryIndex(expr string) int {
	if m := entryIndexRE.FindStringSubmatch(expr); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return -1
}

// parser holds the state of one parse.
type parser struct {
	b     *bundle
	is    *issues
	cache map[*entry]any // decoded resources, so each is checked once
	nhsAt string         // where the Patient's NHS number was read
	// sender is the organisation of MessageHeader.sender (an
	// Organization, or a PractitionerRole's organization), when known.
	sender org
	// withdrawn are the DeviceRequests revoked or entered in error.
	withdrawn []string
}

// decoded decodes e as a T, once.
func decoded[T any](p *parser, e *entry, keep ...string) *T {
	if v, ok := p.cache[e].(*T); ok {
		return v
	}
	v := new(T)
	decode(e, v, p.is, keep...)
	if has(e, "modifierExtension") {
		p.is.errorf(IssueNotSupported, e.res("modifierExtension"), "%s has a modifierExtension, which the hub does not understand and so cannot safely ignore", e.resourceType)
	}
	p.cache[e] = v
	return v
}

// The elements of each resource type that the hub reads; no other element
// is decoded, so no other element can make a referral fail.
var (
	keepMessageHeader    = []string{"id", "eventCoding", "focus", "sender"}
	keepServiceRequest   = []string{"id", "extension", "status", "intent", "priority", "doNotPerform", "subject", "requester", "reasonCode", "reasonReference", "supportingInfo", "locationReference", "note"}
	keepPatient          = []string{"id", "identifier", "name", "telecom", "gender", "birthDate", "address", "deceasedBoolean", "deceasedDateTime"}
	keepDeviceRequest    = []string{"id", "status", "intent", "codeCodeableConcept", "codeReference", "parameter", "subject", "note"}
	keepDevice           = []string{"id", "type", "deviceName"}
	keepPractitioner     = []string{"id", "name", "telecom"}
	keepPractitionerRole = []string{"id", "practitioner", "organization", "telecom"}
	keepOrganization     = []string{"id", "identifier", "name", "telecom"}
	keepLocation         = []string{"id", "name", "type"}
	keepCondition        = []string{"id", "code", "verificationStatus"}
	keepObservation      = []string{"id", "status", "code", "subject", "valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger"}
)

// message checks the message-specific parts of the bundle and returns the
// entry of the referral's ServiceRequest, or nil.
func (p *parser) message(out *Parsed) *entry {
	p.bundleType("message")
	if len(p.b.entries) == 0 {
		p.is.errorf(IssueRequired, "Bundle.entry", "a message Bundle needs entries, starting with a MessageHeader")
		return nil
	}
	e := p.b.entries[0]
	switch {
	case !e.raw.ok():
		p.is.errorf(IssueRequired, e.expr+".resource", "the first entry of a message Bundle must hold a MessageHeader")
		return nil
	case e.resourceType == "":
		return nil // reported by readBundle
	case e.resourceType != "MessageHeader":
		p.is.errorf(IssueInvalid, e.res("resourceType"), "the first entry of a message Bundle must be a MessageHeader, not %s", typeName(e))
		return nil
	}
	mh := decoded[r4.MessageHeader](p, e, keepMessageHeader...)

	// The message id: MessageHeader.id, else the uuid of its fullUrl.
	id := deref(mh.Id)
	if u, ok := strings.CutPrefix(e.fullURL, "urn:uuid:"); id == "" && ok {
		id = u
	}
	switch {
	case id == "":
		p.is.errorf(IssueRequired, e.res("id"), "MessageHeader.id is required (or a urn:uuid: fullUrl for the entry)")
	case !isID(id):
		p.is.errorf(IssueValue, e.res("id"), "MessageHeader.id is not a valid FHIR id (1 to 64 letters, digits, '-' and '.')")
	default:
		out.Referral.Source.MessageID = id
	}

	switch {
	case has(e, "eventCoding"):
		if c := mh.EventCoding; deref(c.Code) != "" {
			out.Event = model.Coded{System: deref(c.System), Code: deref(c.Code), Display: deref(c.Display)}
		} else {
			p.is.errorf(IssueRequired, e.res("eventCoding", "code"), "MessageHeader.eventCoding.code is required")
		}
	case has(e, "eventUri"):
		p.is.errorf(IssueNotSupported, e.res("eventUri"), "MessageHeader.eventUri is not supported: send eventCoding")
	default:
		p.is.errorf(IssueRequired, e.res("eventCoding"), "MessageHeader.eventCoding is required")
	}

	var sr *entry
	if len(mh.Focus) == 0 && !p.is.failedAt(e.res("focus")) {
		p.is.errorf(IssueRequired, e.res("focus"), "MessageHeader.focus is required: it must reference the ServiceRequest of the referral")
	}
	var firstOther *entry
	firstOtherAt := ""
	for i := range mh.Focus {
		expr := e.res(fmt.Sprintf("focus[%d]", i))
		t := p.follow(&mh.Focus[i], expr, "MessageHeader.focus", true)
		switch {
		case t == nil:
		case t.resourceType == "ServiceRequest" && sr == nil:
			sr = t
		case t.resourceType == "ServiceRequest":
			p.is.errorf(IssueNotSupported, expr+".reference", "MessageHeader.focus references more than one ServiceRequest; the hub takes one referral per message")
		case firstOther == nil:
			firstOther, firstOtherAt = t, expr
		}
	}
	if sr == nil && firstOther != nil {
		p.is.errorf(IssueInvalid, firstOtherAt+".reference", "MessageHeader.focus must reference the ServiceRequest of the referral, not %s", typeName(firstOther))
	}

	if mh.Sender != nil {
		if t := p.follow(mh.Sender, e.res("sender"), "MessageHeader.sender", false, "Organization", "PractitionerRole", "Practitioner"); t != nil {
			p.sender = p.organisationOf(t)
			out.Referral.Source.SenderODS = p.sender.ods
		}
	}
	return sr
}

// transaction checks the transaction-specific parts of the bundle and
// returns the entry of the referral's ServiceRequest, or nil.
func (p *parser) transaction(out *Parsed) *entry {
	p.bundleType("transaction", "batch")
	for _, e := range p.b.entries {
		if !e.hasRequest {
			if !p.is.failedAt(e.expr + ".request") {
				p.is.errorf(IssueRequired, e.expr+".request", "Bundle.entry.request is required in a %s Bundle", p.b.typ)
			}
			continue
		}
		switch e.method {
		case "POST", "PUT":
		case "":
			if !p.is.failedAt(e.expr + ".request.method") {
				p.is.errorf(IssueRequired, e.expr+".request.method", "Bundle.entry.request.method is required")
			}
		default:
			p.is.errorf(IssueNotSupported, e.expr+".request.method", "the hub accepts only POST and PUT entries")
		}
		if e.url == "" && !p.is.failedAt(e.expr+".request.url") {
			p.is.errorf(IssueRequired, e.expr+".request.url", "Bundle.entry.request.url is required")
		}
		if !e.raw.ok() && (e.method == "POST" || e.method == "PUT") {
			p.is.errorf(IssueRequired, e.expr+".resource", "a %s entry needs a resource", e.method)
		}
		if e.method == "PUT" && e.url != "" && e.resourceType != "" {
			if t, _, _ := strings.Cut(e.url, "/"); t != e.resourceType {
				p.is.errorf(IssueInvalid, e.expr+".request.url", "Bundle.entry.request.url names another resource type than the entry's resource")
			}
		}
		out.Entries = append(out.Entries, Entry{ResourceType: e.resourceType, Method: e.method, URL: e.url, FullURL: e.fullURL, ID: e.id})
	}
	srs := p.b.ofType("ServiceRequest")
	switch len(srs) {
	case 0:
		p.is.errorf(IssueRequired, "Bundle.entry", "a %s Bundle must hold the ServiceRequest of the referral", nonEmpty(p.b.typ, "transaction"))
		return nil
	case 1:
	default:
		p.is.errorf(IssueNotSupported, srs[1].res("resourceType"), "the Bundle holds more than one ServiceRequest; the hub takes one referral per Bundle")
		return nil
	}
	for i := range out.Entries {
		out.Entries[i].Referral = out.Entries[i].ResourceType == "ServiceRequest"
	}
	return srs[0]
}

// bundleType checks Bundle.type against the types an endpoint takes.
func (p *parser) bundleType(want ...string) {
	switch t := p.b.typ; {
	case t == "" || slices.Contains(want, t):
	case !slices.Contains(bundleTypeCodes, t):
		p.is.errorf(IssueInvalid, "Bundle.type", "Bundle.type must be one of the codes %s", strings.Join(bundleTypeCodes, ", "))
	case t == "message":
		p.is.errorf(IssueNotSupported, "Bundle.type", "a message Bundle must be sent to $process-message")
	case t == "transaction" || t == "batch":
		p.is.errorf(IssueNotSupported, "Bundle.type", "a %s Bundle must be sent to the base endpoint, not to $process-message", t)
	default:
		p.is.errorf(IssueNotSupported, "Bundle.type", "the hub does not accept a %s Bundle here; send a %s Bundle", t, strings.Join(want, " or "))
	}
}

// unknownTypes warns about entries whose resourceType is not an R4 type;
// they are ignored unless something the hub uses references them, in which
// case that reference has been reported already.
func (p *parser) unknownTypes() {
	for _, e := range p.b.entries {
		if e.resourceType != "" && !isResourceType(e.resourceType) {
			p.is.warnf(IssueInvalid, e.res("resourceType"), "the resourceType is not a FHIR R4 resource type; the entry was ignored")
		}
	}
}

// follow resolves a reference found at expr (what names it in
// diagnostics). For an element the hub cannot do without (required), a
// reference that is missing, does not resolve or points to a resource of a
// type not in types is an error; otherwise it is a warning and the element
// is ignored. follow returns the target entry, or nil.
func (p *parser) follow(ref *r4.Reference, expr, what string, required bool, types ...string) *entry {
	report := p.is.warnf
	if required {
		report = p.is.errorf
	}
	r := deref(ref.Reference)
	t, why := p.b.resolve(r)
	switch why {
	case noReference:
		if required {
			p.is.errorf(IssueRequired, expr+".reference", "%s has no reference to a Bundle entry", what)
		} else {
			p.is.warnf(IssueNotFound, expr+".reference", "%s has no reference to a Bundle entry; ignored", what)
		}
		return nil
	case contained:
		report(IssueNotSupported, expr+".reference", "%s references a contained resource; the hub reads only Bundle entries%s", what, ignored(required))
		return nil
	case conditional:
		report(IssueNotSupported, expr+".reference", "%s is a conditional reference, which the hub does not resolve%s", what, ignored(required))
		return nil
	case ambiguous:
		report(IssueNotFound, expr+".reference", "%s matches more than one Bundle entry%s", what, ignored(required))
		return nil
	case notInBundle:
		report(IssueNotFound, expr+".reference", "%s does not resolve to an entry of the Bundle (by fullUrl or Type/id)%s", what, ignored(required))
		return nil
	}
	if !t.raw.ok() || t.resourceType == "" {
		report(IssueNotFound, expr+".reference", "%s references an entry without a resource%s", what, ignored(required))
		return nil
	}
	if rt := deref(ref.Type); rt != "" && rt != t.resourceType {
		report(IssueInvalid, expr+".type", "%s.type does not match the type of the resource it references%s", what, ignored(required))
		return nil
	}
	if len(types) > 0 && !slices.Contains(types, t.resourceType) {
		report(IssueInvalid, expr+".reference", "%s must reference a %s, not %s%s", what, strings.Join(types, " or a "), typeName(t), ignored(required))
		return nil
	}
	return t
}

func ignored(required bool) string {
	if required {
		return ""
	}
	return "; ignored"
}

// typeName names the type of an entry's resource for a diagnostic, without
// echoing a resourceType that is not a FHIR type name.
func typeName(e *entry) string {
	if isResourceType(e.resourceType) {
		return "a " + e.resourceType
	}
	return "a resource of unknown type"
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
