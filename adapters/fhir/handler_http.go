// Package fhir is the hub's FHIR R4 edge for NHS systems. Its Handler takes
// referrals and equipment orders as message Bundles (POST
// /fhir/$process-message) or transaction and batch Bundles (POST /fhir),
// checks them with mappings/fhir, hands each accepted referral to an
// Acceptor that stores it durably, and only then answers 200. It serves the
// CapabilityStatement at GET /fhir/metadata.
//
// The same endpoints take what the NHS asks of a referral the hub holds
// (flows F2 and F8): a cancellation, a collection request, and an
// amendment (an active referral whose ServiceRequest id the hub already
// holds). These are events, handed to Config.Events once Config.Finder has
// told the edge what the hub holds; see event_http.go.
//
// Every error is an OperationOutcome (application/fhir+json) whose issues
// carry severity, code, diagnostics and a FHIRPath expression: 400 for a
// body that is not a Bundle or a bad header, 404, 405, 413, 415, 422 for a
// Bundle the hub cannot accept (or a change to a referral it does not
// hold), 403 and 409 for a change the referral does not allow, 503 with
// Retry-After when the hub could not store an acceptable referral or
// change, and 500 only for a fault of the hub itself.
// Bad input never causes a 5xx.
//
// Logs hold ids, outcomes and counts; never a payload, name, NHS number,
// postcode, date of birth or phone number.
package fhir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/logging"
	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// Acceptor stores an accepted referral durably, exactly once per
// idempotency key, and returns the answer to give the sender: the
// submission's own on first acceptance, the stored one for a duplicate.
// *intake.Service implements it.
type Acceptor interface {
	AcceptReferral(ctx context.Context, sub intake.Submission) (intake.Outcome, error)
}

var _ Acceptor = (*intake.Service)(nil)

// Defaults for Config fields left at their zero value.
const (
	DefaultMaxBodyBytes int64 = 1 << 20
	DefaultRetryAfter         = 30 * time.Second
)

// ContentType is the media type of every answer.
const ContentType = "application/fhir+json"

// ReferralIDSystem is the identifier system of the hub's referral id. A
// success answer carries the id as Bundle.identifier with this system (and
// in the text of its OperationOutcome); partners and the NHS quote it, as
// a collection request may in ServiceRequest.basedOn.identifier.
const ReferralIDSystem = fhirmap.ReferralIDSystem

// Config configures a Handler. The zero value is usable.
type Config struct {
	// MaxBodyBytes limits a request body; a larger one is answered 413.
	// Zero means DefaultMaxBodyBytes; negative is an error.
	MaxBodyBytes int64
	// Clock gives the time a referral is received. Nil means time.Now.
	Clock func() time.Time
	// NewID returns a new UUID for a referral and for the resources of an
	// answer. Nil means intake.NewID (time-ordered).
	NewID func() string
	// RetryAfter is sent with 503 when the hub could not store a referral.
	// Zero means DefaultRetryAfter; negative is an error.
	RetryAfter time.Duration
	// BaseURL is the hub's FHIR base as senders see it, such as
	// "https://iceshub.example.org/fhir"; it names the hub in the source
	// endpoint of response messages. Empty means the base is derived from
	// the request's Host.
	BaseURL string
	// Finder tells the edge which referrals the hub holds, so that an
	// active referral whose ServiceRequest id it holds is taken as an
	// amendment. Nil means every active referral is a new one.
	Finder ReferralFinder
	// Events takes cancellations, collection requests and amendments. Nil
	// means they are refused, 422 not-supported; referrals are taken
	// either way.
	Events EventAcceptor
	// RequesterRequired refuses, 422 at ServiceRequest.requester, a
	// referral whose requesting organisation has no ODS code (neither the
	// requester nor the MessageHeader's sender names one): set it when a
	// route sends to the requester, which is found by that code, so that
	// the prescriber is told at once rather than never hearing back.
	RequesterRequired bool
}

// Handler is the FHIR edge. It is safe for concurrent use.
type Handler struct {
	cfg    Config
	accept Acceptor
	log    *slog.Logger
	// unavailable summarises the 503s of a store that cannot take writes:
	// one error line per interval, the rest at debug level.
	unavailableLines logging.Repeats
}

// New returns a Handler that hands accepted referrals to acceptor and logs
// to logger. It returns an error for a nil acceptor or logger or an invalid
// Config.
func New(cfg Config, acceptor Acceptor, logger *slog.Logger) (*Handler, error) {
	if acceptor == nil {
		return nil, errors.New("fhir adapter: nil acceptor")
	}
	if logger == nil {
		return nil, errors.New("fhir adapter: nil logger")
	}
	switch {
	case cfg.MaxBodyBytes < 0:
		return nil, fmt.Errorf("fhir adapter: MaxBodyBytes %d is negative", cfg.MaxBodyBytes)
	case cfg.MaxBodyBytes == 0:
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	switch {
	case cfg.RetryAfter < 0:
		return nil, fmt.Errorf("fhir adapter: RetryAfter %v is negative", cfg.RetryAfter)
	case cfg.RetryAfter == 0:
		cfg.RetryAfter = DefaultRetryAfter
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.NewID == nil {
		cfg.NewID = intake.NewID
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	h := &Handler{cfg: cfg, accept: acceptor, log: logger.With("component", "fhir")}
	h.unavailableLines.Now = cfg.Clock
	return h, nil
}

// The routes, by name; logs name the route, never the path as sent.
const (
	routeProcessMessage = "process-message"
	routeTransaction    = "transaction"
	routeMetadata       = "metadata"
	routeUnknown        = "unknown"
)

// ServeHTTP serves POST /fhir/$process-message, POST /fhir and GET
// /fhir/metadata. Every answer carries X-Correlation-ID: the request's, or
// a new one when the request has none.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &request{start: h.cfg.Clock()}
	rw := &recorder{ResponseWriter: w}
	corr, corrErr := correlationID(r.Header.Get("X-Correlation-ID"))
	if corr == "" {
		corr = h.cfg.NewID()
	}
	rec.correlationID = corr
	rw.Header().Set("X-Correlation-ID", corr)

	defer func() {
		if p := recover(); p != nil {
			rec.err = h.panicked(p)
			if !rw.wrote {
				h.writeError(rw, rec.err)
			}
		}
		h.logRequest(rec, rw.status)
	}()

	var route string
	var allow string
	switch strings.TrimRight(r.URL.Path, "/") {
	case "/fhir/$process-message":
		route, allow = routeProcessMessage, "POST"
	case "/fhir":
		route, allow = routeTransaction, "POST"
	case "/fhir/metadata":
		route, allow = routeMetadata, "GET, HEAD"
	default:
		route = routeUnknown
	}
	rec.route = route
	var err error
	switch {
	case route == routeUnknown:
		err = errorf(http.StatusNotFound, fhirmap.IssueNotFound, "http.url", "no such endpoint: the hub serves POST /fhir/$process-message, POST /fhir and GET /fhir/metadata")
	case !slices.Contains(strings.Split(allow, ", "), r.Method):
		rw.Header().Set("Allow", allow)
		err = errorf(http.StatusMethodNotAllowed, fhirmap.IssueNotSupported, "http.method", "method not allowed here; allowed: %s", allow)
	case corrErr != nil:
		err = corrErr
	case route == routeMetadata:
		h.metadata(rw, r)
		return
	default:
		err = h.submit(rw, r, route, rec)
	}
	if err != nil {
		rec.err = err
		h.writeError(rw, err)
	}
}

// request is what is logged about one request.
type request struct {
	start                 time.Time
	route                 string
	kind                  model.Kind
	correlationID         string
	requestID, referralID string
	duplicate             bool
	issues                []fhirmap.Issue
	err                   error
}

// recorder remembers whether and what was written.
type recorder struct {
	http.ResponseWriter
	wrote  bool
	status int
}

func (rw *recorder) WriteHeader(status int) {
	if !rw.wrote {
		rw.wrote, rw.status = true, status
	}
	rw.ResponseWriter.WriteHeader(status)
}

func (rw *recorder) Write(b []byte) (int, error) {
	if !rw.wrote {
		rw.WriteHeader(http.StatusOK)
	}
	return rw.ResponseWriter.Write(b)
}

var correlationIDPattern = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)

// correlationID checks an X-Correlation-ID: up to 128 visible ASCII
// characters. An empty one is absent. A bad one is replaced, and refused.
func correlationID(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || correlationIDPattern.MatchString(v) {
		return v, nil
	}
	return "", errorf(http.StatusBadRequest, fhirmap.IssueValue, "http.X-Correlation-ID", "the X-Correlation-ID header must be 1 to 128 visible ASCII characters")
}

// submit handles a POST of a Bundle on route: checks, parses, maps, hands
// the referral to the acceptor and writes its answer.
func (h *Handler) submit(w http.ResponseWriter, r *http.Request, route string, rec *request) error {
	requestID, parsed, err := h.readBundle(w, r, route, rec)
	if err != nil {
		return err
	}
	// Whether this partner may send this kind at all is decided before
	// anything is read from the store.
	sender, err := permit(r.Context(), parsed.Kind, &parsed)
	if err != nil {
		return err
	}
	if parsed.Change != nil {
		return h.submitEvent(w, r, route, rec, requestID, &parsed, sender)
	}
	return h.submitReferral(w, r, route, rec, requestID, &parsed, sender)
}

// readBundle checks a POST's headers, reads its body and parses the Bundle
// in it, noting on rec what is logged of the request.
func (h *Handler) readBundle(w http.ResponseWriter, r *http.Request, route string, rec *request) (string, fhirmap.Parsed, error) {
	if err := checkContentType(r.Header.Get("Content-Type")); err != nil {
		return "", fhirmap.Parsed{}, err
	}
	requestID := strings.TrimSpace(r.Header.Get("X-Request-ID"))
	if requestID != "" {
		if u, err := uuid.Parse(requestID); err != nil || len(requestID) != 36 {
			return "", fhirmap.Parsed{}, errorf(http.StatusBadRequest, fhirmap.IssueValue, "http.X-Request-ID", "the X-Request-ID header must be a UUID")
		} else {
			requestID = u.String() // lower case, so that retries match however they are written
		}
	}
	rec.requestID = requestID

	body, err := h.readBody(w, r)
	if err != nil {
		return "", fhirmap.Parsed{}, err
	}
	if err := checkJSONShape(body); err != nil {
		return "", fhirmap.Parsed{}, err
	}
	parsed, err := parse(body, route == routeProcessMessage)
	if err != nil {
		var ve *fhirmap.ValidationError
		if errors.As(err, &ve) {
			rec.issues = ve.Issues
		}
		return "", fhirmap.Parsed{}, err
	}
	rec.issues = parsed.Issues
	rec.kind = parsed.Kind
	return requestID, parsed, nil
}

// submitReferral takes a referral parsed from the request: a new one, an
// amendment of one the hub holds, or a resend; refused when the sender may
// not touch the referral it names or speak for its organisations.
func (h *Handler) submitReferral(w http.ResponseWriter, r *http.Request, route string, rec *request, requestID string, parsed *fhirmap.Parsed, sender intake.Sender) error {
	if h.cfg.RequesterRequired && parsed.Referral.Requester.OrganisationODS == "" {
		return errorf(http.StatusUnprocessableEntity, fhirmap.IssueRequired, nonEmpty(parsed.Paths.ServiceRequest, "ServiceRequest")+".requester",
			"the requesting organisation has no ODS code: name it (identifier system %s) on ServiceRequest.requester (an Organization, or a PractitionerRole with an organization) or on MessageHeader.sender; the hub sends the requester its status updates by that code", fhirmap.ODSSystem)
	}
	ref := parsed.Referral
	ref.ID = h.cfg.NewID()
	ref.ReceivedAt = h.cfg.Clock().UTC()
	ref.Source.CorrelationID = rec.correlationID
	ref.Source.SentBy = sender.Partner
	rec.referralID = ref.ID

	// A referral whose ServiceRequest the hub holds already is an
	// amendment, unless it says what the stored one says: then it is a
	// resend, which the idempotency keys make a duplicate. Either way it
	// touches the stored referral, so only a sender that may touch that
	// one gets further: another trust is refused as if the id were unknown
	// to the hub, not answered with the first sender's stored answer.
	held := false
	if h.cfg.Finder != nil && ref.Source.ServiceRequestID != "" {
		stored, found, err := h.cfg.Finder.FindReferral(r.Context(), intake.Lookup{ServiceRequestID: ref.Source.ServiceRequestID})
		if err != nil {
			return h.unavailable("referral", err)
		}
		held = found
		if found {
			if err := sender.MayTouch(stored); err != nil {
				return notYours(r.Context(), "not_owner", model.KindAmendment, parsed, err)
			}
		}
		if found && fingerprint(&stored.Referral) != fingerprint(&ref) {
			rec.kind = model.KindAmendment
			if err := mayAmend(r.Context(), parsed); err != nil {
				return err
			}
			return h.submitAmendment(w, r, route, rec, requestID, parsed, ref, stored, sender)
		}
	}
	if len(parsed.Withdrawn) > 0 && !held {
		return errorf(http.StatusUnprocessableEntity, fhirmap.IssueBusinessRule, parsed.Withdrawn[0],
			"the hub holds no referral with this ServiceRequest id, so no line can be withdrawn from it: every line of a new referral must be active (a revoked DeviceRequest withdraws a line from an order the hub holds)")
	}
	if err := sender.MayCreate(ref.Source.SenderODS, ref.Requester.OrganisationODS); err != nil {
		auth.Forbid(r.Context(), "organisation")
		e := errorf(http.StatusForbidden, issueForbidden, organisationPath(parsed, &ref, sender),
			"the referral's sending or requesting organisation is not one this partner is registered to send for at the hub (by ODS code): send it from that organisation's own connection, or ask the hub's operator to add the code; nothing was accepted")
		e.Err = err
		return e
	}

	keys, keyIssues := idempotencyKeys(requestID, parsed, &ref)
	issues := append(parsed.Issues, keyIssues...)
	a := answer{referralID: ref.ID, received: ref.ReceivedAt, summary: "referral accepted; the hub's referral id is " + ref.ID, created: true}
	out, err := h.accept.AcceptReferral(r.Context(), intake.Submission{
		Keys:     keys,
		Referral: ref,
		Response: intake.Response{Status: http.StatusOK, ContentType: ContentType, Body: h.answer(r, route, parsed, a, issues)},
	})
	if err != nil {
		return h.unavailable("referral", err)
	}
	return h.reply(w, rec, out)
}

// unavailable is the answer when the hub could not store what was sent
// (what: "referral", "cancellation", ...): 503 with Retry-After.
func (h *Handler) unavailable(what string, err error) *httpError {
	e := errorf(http.StatusServiceUnavailable, issueTransient, "Bundle", "the hub could not store the %s; nothing was accepted: send the same request again later", what)
	e.RetryAfter = int(h.cfg.RetryAfter.Round(time.Second) / time.Second)
	e.Err = err
	return e
}

// reply writes the answer an acceptor returned: the submission's own, or
// the stored one for a duplicate.
func (h *Handler) reply(w http.ResponseWriter, rec *request, out intake.Outcome) error {
	resp := out.Response
	if resp.Status == 0 || len(resp.Body) == 0 {
		return asError(fmt.Errorf("acceptor returned an empty response (duplicate %v)", out.Duplicate))
	}
	rec.duplicate = out.Duplicate
	if out.Duplicate {
		rec.referralID = "" // the stored answer names the first referral, not this one
	}
	if resp.ContentType != "" {
		w.Header().Set("Content-Type", resp.ContentType)
	}
	w.WriteHeader(resp.Status)
	_, _ = w.Write(resp.Body)
	return nil
}

// parse runs the mapping. A panic in it is a fault of the hub, never of the
// sender: it becomes a 500 and is logged by ServeHTTP.
func parse(body []byte, message bool) (fhirmap.Parsed, error) {
	if message {
		return fhirmap.ParseMessage(body)
	}
	return fhirmap.ParseTransaction(body)
}

// checkContentType accepts application/fhir+json and application/json, with
// an optional charset (UTF-8) and fhirVersion (4.0) parameter.
func checkContentType(ct string) error {
	if strings.TrimSpace(ct) == "" {
		return errorf(http.StatusUnsupportedMediaType, fhirmap.IssueNotSupported, "http.Content-Type", "the Content-Type header is missing: send application/fhir+json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "application/fhir+json" && mt != "application/json") {
		return errorf(http.StatusUnsupportedMediaType, fhirmap.IssueNotSupported, "http.Content-Type", "unsupported Content-Type: the hub reads FHIR JSON only (application/fhir+json)")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return errorf(http.StatusUnsupportedMediaType, fhirmap.IssueNotSupported, "http.Content-Type", "unsupported charset: FHIR JSON is UTF-8")
	}
	if v, ok := params["fhirversion"]; ok && v != "4.0" && !strings.HasPrefix(v, "4.0.") {
		return errorf(http.StatusUnsupportedMediaType, fhirmap.IssueNotSupported, "http.Content-Type", "unsupported fhirVersion: the hub speaks FHIR R4 (4.0)")
	}
	return nil
}

// readBody reads the body up to the limit.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := errorf(http.StatusRequestEntityTooLarge, issueTooLong, "Bundle", "the request body is larger than the hub accepts (%d bytes)", h.cfg.MaxBodyBytes)
	if r.ContentLength > h.cfg.MaxBodyBytes {
		return nil, tooLarge
	}
	// Sized by Content-Length when given: one allocation for the body
	// rather than a buffer doubled up to it (a sixth of all bytes the hub
	// allocated in the steady bench).
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	body := buf.Bytes()
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge
	case err != nil:
		e := errorf(http.StatusBadRequest, fhirmap.IssueStructure, "Bundle", "the request body could not be read")
		e.Err = err
		return nil, e
	}
	return body, nil
}

// idempotencyKeys returns the keys that make a repeated request a
// duplicate, and an information issue when there are none the sender chose.
//
// Each key is scoped by a fingerprint of the referral's content (the
// canonical referral without the hub's id and time and without the
// sender's technical ids), so that a retry, even one whose bundle was
// rebuilt with new fullUrls, gets the first answer back; but a sender that
// reuses a message id or X-Request-ID for a different referral does not
// have that referral silently swallowed as a duplicate. The BaRS examples
// share one MessageHeader id, and real senders copy examples.
//
//   - "request:<X-Request-ID>#<fingerprint>" when the header is given;
//   - "message:<MessageHeader id>#<fingerprint>" for a message;
//   - "bundle:<Bundle.id>#<fingerprint>" for a transaction or batch with
//     a Bundle.id;
//   - otherwise "referral:<new referral id>": no duplicate detection, since
//     guessing would risk dropping a second, genuine order.
func idempotencyKeys(requestID string, p *fhirmap.Parsed, ref *model.Referral) ([]string, []fhirmap.Issue) {
	return keysFor(requestID, p, fingerprint(ref), "referral:"+ref.ID, "referral")
}

// keysFor returns the idempotency keys of a request as idempotencyKeys
// describes, with fp the fingerprint of what it says, fallback the key used
// when there is none the sender chose, and what the kind of message.
func keysFor(requestID string, p *fhirmap.Parsed, fp, fallback, what string) ([]string, []fhirmap.Issue) {
	ref := &p.Referral
	var keys []string
	if requestID != "" {
		keys = append(keys, "request:"+requestID+"#"+fp)
	}
	switch {
	case p.BundleType == "message" && ref.Source.MessageID != "":
		keys = append(keys, "message:"+ref.Source.MessageID+"#"+fp)
	case p.BundleType != "message" && ref.Source.BundleID != "":
		keys = append(keys, "bundle:"+ref.Source.BundleID+"#"+fp)
	}
	if len(keys) > 0 {
		return keys, nil
	}
	return []string{fallback}, []fhirmap.Issue{{
		Severity: fhirmap.SeverityInformation, Code: fhirmap.IssueInformational, Expression: "Bundle.id",
		Diagnostics: "the request has no X-Request-ID and the Bundle no id, so a repeat of it would be taken as a new " + what,
	}}
}

// fingerprint hashes what the referral says, leaving out the hub's id and
// receive time, the correlation id and the sender's technical ids.
func fingerprint(ref *model.Referral) string {
	c := *ref
	c.ID, c.ReceivedAt, c.Source = "", time.Time{}, model.Source{}
	c.Equipment = make([]model.EquipmentItem, len(ref.Equipment))
	for i, it := range ref.Equipment {
		it.LineID = ""
		c.Equipment[i] = it
	}
	b, _ := json.Marshal(c) // a model.Referral always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// answer is what a success answer says.
type answer struct {
	// referralID is the hub's referral id, or intake.ReferralIDPlaceholder
	// for an event, whose referral the acceptor finds.
	referralID string
	received   time.Time
	// summary is the diagnostics of the information issue that opens the
	// OperationOutcome.
	summary string
	// created is true when the ServiceRequest made something new (a
	// referral, a collection request): "201 Created" in a
	// transaction-response; false for a change to the referral ("200 OK").
	created bool
	// location is the transaction-response location of the
	// ServiceRequest; empty means ServiceRequest/<referralID>.
	location string
}

// answer builds the success answer to a request on route: a response
// message or a transaction-response.
func (h *Handler) answer(r *http.Request, route string, p *fhirmap.Parsed, a answer, issues []fhirmap.Issue) []byte {
	if route == routeProcessMessage {
		return h.messageResponse(r, p, a, issues)
	}
	return h.transactionResponse(p, a, issues)
}

// messageResponse builds the response message for an accepted message: a
// MessageHeader whose response names the request's MessageHeader, code ok,
// the request's eventCoding, and whose focus is an OperationOutcome that
// gives the hub's referral id and any warnings. The referral id is also
// the response Bundle's identifier (system ReferralIDSystem).
func (h *Handler) messageResponse(r *http.Request, p *fhirmap.Parsed, a answer, issues []fhirmap.Issue) []byte {
	mhID, ooID := h.cfg.NewID(), h.cfg.NewID()
	oo := acceptedOutcome(ooID, a.summary, issues)
	mh := messageHeader{
		ResourceType: "MessageHeader",
		ID:           mhID,
		EventCoding:  coding{System: p.Event.System, Code: p.Event.Code, Display: p.Event.Display},
		Source:       messageSource{Name: "iceshub", Software: "iceshub", Endpoint: h.baseURL(r) + "/$process-message"},
		Response:     &messageResponse{Identifier: p.Referral.Source.MessageID, Code: "ok"},
		Focus:        []reference{{Reference: "urn:uuid:" + ooID}},
	}
	return marshal(bundle{
		ResourceType: "Bundle",
		ID:           h.cfg.NewID(),
		Identifier:   &identifier{System: ReferralIDSystem, Value: a.referralID},
		Type:         "message",
		Timestamp:    instant(a.received),
		Entry: []bundleEntry{
			{FullURL: "urn:uuid:" + mhID, Resource: mh},
			{FullURL: "urn:uuid:" + ooID, Resource: oo},
		},
	})
}

// transactionResponse builds the transaction-response (or batch-response):
// one entry per request entry, in order, each "201 Created" with a
// location. The ServiceRequest's location is ServiceRequest/<referral id>
// and its entry carries the OperationOutcome; a PUT entry's location is its
// request URL; any other entry gets Type/<new id>. For a change to a
// referral (a cancellation, an amendment) the ServiceRequest's entry is
// "200 OK".
func (h *Handler) transactionResponse(p *fhirmap.Parsed, a answer, issues []fhirmap.Issue) []byte {
	b := bundle{
		ResourceType: "Bundle",
		ID:           h.cfg.NewID(),
		Identifier:   &identifier{System: ReferralIDSystem, Value: a.referralID},
		Type:         p.BundleType + "-response",
		Timestamp:    instant(a.received),
	}
	for _, e := range p.Entries {
		resp := &entryResponse{Status: "201 Created", LastModified: instant(a.received)}
		switch {
		case e.Referral:
			resp.Location = nonEmpty(a.location, "ServiceRequest/"+a.referralID)
			resp.Outcome = acceptedOutcome("", a.summary, issues)
			if !a.created {
				resp.Status = "200 OK"
			}
		case e.Method == "PUT":
			resp.Location = e.URL
		default:
			resp.Location = e.ResourceType + "/" + h.cfg.NewID()
		}
		b.Entry = append(b.Entry, bundleEntry{Response: resp})
	}
	return marshal(b)
}

// acceptedOutcome is the OperationOutcome of a success: one information
// issue whose diagnostics is summary (naming the referral id), then the
// issues the hub tolerated.
func acceptedOutcome(id, summary string, issues []fhirmap.Issue) *operationOutcome {
	return issuesOutcome(id, append([]fhirmap.Issue{{
		Severity: fhirmap.SeverityInformation, Code: fhirmap.IssueInformational, Expression: "Bundle",
		Diagnostics: summary,
	}}, issues...))
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// baseURL is Config.BaseURL, or the base the request was sent to.
func (h *Handler) baseURL(r *http.Request) string {
	if h.cfg.BaseURL != "" {
		return h.cfg.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/fhir"
}

// writeError writes err as an OperationOutcome.
func (h *Handler) writeError(w http.ResponseWriter, err error) {
	e := asError(err)
	w.Header().Set("Content-Type", ContentType)
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.outcome())
}

// panicked turns a recovered panic into a 500 and logs it. Only a runtime
// error's text is logged, never another panic value, which could hold data.
func (h *Handler) panicked(p any) error {
	what := fmt.Sprintf("panic of type %T", p)
	if re, ok := p.(runtime.Error); ok {
		what = re.Error()
	}
	h.log.Error("fhir: panic while handling a request", "panic", what, "stack", string(debug.Stack()))
	return asError(errors.New(what))
}

// logRequest logs one line per request: ids, status, counts.
func (h *Handler) logRequest(rec *request, status int) {
	errs, warnings := counts(rec.issues)
	attrs := []any{
		"route", rec.route,
		"status", status,
		"correlation_id", rec.correlationID,
		"duration_ms", h.cfg.Clock().Sub(rec.start).Milliseconds(),
	}
	if rec.requestID != "" {
		attrs = append(attrs, "request_id", rec.requestID)
	}
	if rec.referralID != "" && status == http.StatusOK {
		attrs = append(attrs, "referral_id", rec.referralID)
	}
	if rec.kind != "" {
		attrs = append(attrs, "kind", string(rec.kind))
	}
	if rec.route == routeProcessMessage || rec.route == routeTransaction {
		attrs = append(attrs, "duplicate", rec.duplicate, "issue_errors", errs, "issue_warnings", warnings)
	}
	level := slog.LevelInfo
	msg := "fhir request"
	switch {
	case status >= 500:
		level = slog.LevelError
		if status == http.StatusServiceUnavailable {
			if write, omitted := h.unavailableLines.Write(); write {
				attrs = append(attrs, "similar_not_logged", omitted)
			} else {
				level = slog.LevelDebug
			}
		}
		if rec.err != nil {
			var e *httpError
			if errors.As(rec.err, &e) && e.Err != nil {
				// Causes come from the store or a runtime error; the
				// mapping's errors (which could describe a bundle) are
				// never logged, only counted.
				attrs = append(attrs, "error", e.Err.Error())
			}
		}
	case status == http.StatusOK && rec.route != routeMetadata:
		what := "referral"
		if rec.kind != "" {
			what = string(rec.kind)
		}
		msg = "fhir " + what + " accepted"
		if rec.duplicate {
			msg = "fhir " + what + " repeated: stored answer returned"
		}
	}
	h.log.Log(context.Background(), level, msg, attrs...)
}
