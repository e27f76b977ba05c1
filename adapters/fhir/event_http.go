package fhir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// ReferralFinder finds the record of a referral the hub holds. The edge
// uses it to tell an amendment (an active referral whose ServiceRequest id
// the hub holds) from a new referral, and to refuse a message about a
// referral that names another person. The store implements it.
type ReferralFinder interface {
	FindReferral(ctx context.Context, l intake.Lookup) (intake.Record, bool, error)
}

// EventAcceptor stores an event about a referral durably, exactly once per
// idempotency key, or refuses it with an error wrapping
// intake.ErrUnknownReferral, ErrImpossibleTransition, ErrConflict or
// ErrNotYours. *intake.Events implements it.
type EventAcceptor interface {
	AcceptEvent(ctx context.Context, sub intake.EventSubmission) (intake.Outcome, error)
}

var _ EventAcceptor = (*intake.Events)(nil)

// EventFrom is the model.Event.From of every event the FHIR edge takes.
const EventFrom = "nhs"

// what names a kind of message in answers and diagnostics.
func what(k model.Kind) string {
	switch k {
	case model.KindCollection:
		return "collection request"
	case "":
		return "referral"
	}
	return string(k)
}

// submitEvent hands a cancellation or a collection request to the event
// acceptor and writes its answer.
func (h *Handler) submitEvent(w http.ResponseWriter, r *http.Request, route string, rec *request, requestID string, p *fhirmap.Parsed, sender intake.Sender) error {
	kind := p.Kind
	if h.cfg.Events == nil {
		at := p.Paths.Status
		if kind == model.KindCollection {
			at = p.Paths.Code
		}
		return notSupported(kind, at)
	}
	find := intake.Lookup{ServiceRequestID: p.Target.ServiceRequestID}
	if find.ServiceRequestID == "" {
		find.ReferralID = p.Target.ReferralID
	}
	// The person the message names, when it names one, must be the
	// referral's: an NHS number that differs means the message is about
	// someone else, whatever ServiceRequest it quotes.
	var stored *intake.Record
	if h.cfg.Finder != nil {
		s, found, err := h.cfg.Finder.FindReferral(r.Context(), find)
		if err != nil {
			return h.unavailable(what(kind), err)
		}
		if found {
			// Ownership first: whether the referral names this person is
			// not the business of a sender that may not touch it.
			if err := sender.MayTouch(s); err != nil {
				return notYours(r.Context(), "not_owner", kind, p, err)
			}
			stored = &s
			rec.referralID = s.Referral.ID
			if p.Target.NHSNumber != "" && s.Referral.Person.NHSNumber != p.Target.NHSNumber {
				return anotherPerson(kind, p.Paths.NHSNumber)
			}
		}
	}

	ev := *p.Change
	ev.ID = h.cfg.NewID()
	ev.From = EventFrom
	ev.FromEventID = nonEmpty(p.Referral.Source.MessageID, p.Referral.Source.BundleID)
	ev.ReceivedAt = h.cfg.Clock().UTC()
	ev.OccurredAt = p.Timestamp.UTC()
	if p.Timestamp.IsZero() {
		ev.OccurredAt = ev.ReceivedAt
	}
	keys, keyIssues := keysFor(requestID, p, eventFingerprint(p.Target, &ev), "event:"+ev.ID, what(kind))
	a := answer{
		referralID: intake.ReferralIDPlaceholder,
		received:   ev.ReceivedAt,
		summary:    what(kind) + " accepted for the hub's referral " + intake.ReferralIDPlaceholder + "; the hub's event id is " + ev.ID,
	}
	if kind == model.KindCollection {
		// The collection request is a new request about the referral.
		a.created, a.location = true, "ServiceRequest/"+ev.ID
	}
	return h.acceptEvent(w, r, rec, p, stored, intake.EventSubmission{
		Keys:     keys,
		Event:    ev,
		Find:     find,
		Sender:   sender,
		Response: intake.Response{Status: http.StatusOK, ContentType: ContentType, Body: h.answer(r, route, p, a, append(p.Issues, keyIssues...))},
	})
}

// submitAmendment hands an amendment to the event acceptor: ref is the
// referral as it now stands, stored the record of the referral it amends.
// The strict checks of a referral have been made; the person must be the
// same, and an order that is over can no longer be amended.
func (h *Handler) submitAmendment(w http.ResponseWriter, r *http.Request, route string, rec *request, requestID string, p *fhirmap.Parsed, ref model.Referral, stored intake.Record, sender intake.Sender) error {
	if h.cfg.Events == nil {
		return notSupported(model.KindAmendment, p.Paths.ID)
	}
	rec.referralID = stored.Referral.ID
	if stored.Referral.Person.NHSNumber != ref.Person.NHSNumber {
		return anotherPerson(model.KindAmendment, p.Paths.NHSNumber)
	}
	if stored.Status.Terminal() {
		return errorf(http.StatusConflict, fhirmap.IssueBusinessRule, p.Paths.Status, "the order is %s and can no longer be amended; nothing was changed", stored.Status)
	}
	ev := model.Event{
		ID:          h.cfg.NewID(),
		Kind:        model.KindAmendment,
		From:        EventFrom,
		FromEventID: nonEmpty(ref.Source.MessageID, ref.Source.BundleID),
		ReceivedAt:  ref.ReceivedAt,
		OccurredAt:  p.Timestamp.UTC(),
		Description: amended(&stored.Referral, &ref),
	}
	if p.Timestamp.IsZero() {
		ev.OccurredAt = ev.ReceivedAt
	}
	// The keys are those a referral with this content would have: a
	// resend of the original referral (its first message id, its content)
	// made after the amendment finds its own key and stays a duplicate,
	// rather than amending the referral back.
	keys, keyIssues := keysFor(requestID, p, fingerprint(&ref), "event:"+ev.ID, what(model.KindAmendment))
	a := answer{
		referralID: intake.ReferralIDPlaceholder,
		received:   ev.ReceivedAt,
		summary:    "amendment accepted for the hub's referral " + intake.ReferralIDPlaceholder + "; the hub's event id is " + ev.ID,
	}
	return h.acceptEvent(w, r, rec, p, &stored, intake.EventSubmission{
		Keys:     keys,
		Event:    ev,
		Find:     intake.Lookup{ServiceRequestID: ref.Source.ServiceRequestID},
		Amended:  &ref,
		Sender:   sender,
		Response: intake.Response{Status: http.StatusOK, ContentType: ContentType, Body: h.answer(r, route, p, a, append(p.Issues, keyIssues...))},
	})
}

// acceptEvent hands sub to the event acceptor and writes its answer, or
// the refusal: an unknown referral 422 not-found at the element that names
// it, an impossible status change 409 business-rule at
// ServiceRequest.status, a conflict 409, a referral not the sender's 403,
// and anything else 503 with Retry-After. stored, when known, is the
// record the edge found.
func (h *Handler) acceptEvent(w http.ResponseWriter, r *http.Request, rec *request, p *fhirmap.Parsed, stored *intake.Record, sub intake.EventSubmission) error {
	kind := sub.Event.Kind
	out, err := h.cfg.Events.AcceptEvent(r.Context(), sub)
	if err == nil {
		return h.reply(w, rec, out)
	}
	var e *httpError
	switch {
	case errors.Is(err, intake.ErrUnknownReferral):
		// Answered as a referral not the sender's is: the answer must not
		// tell another trust which referrals exist.
		return notYours(r.Context(), "unknown_referral", kind, p, err)
	case errors.Is(err, intake.ErrNotYours):
		return notYours(r.Context(), "not_owner", kind, p, err)
	case errors.Is(err, intake.ErrImpossibleTransition):
		// The status is the hub's, not a value from the request.
		status := "at a status where"
		if stored != nil && stored.Status != "" {
			status = string(stored.Status) + ":"
		}
		e = errorf(http.StatusConflict, fhirmap.IssueBusinessRule, p.Paths.Status, "the order is %s a %s cannot apply to it (a delivered order is not cancelled but collected; only delivered equipment is collected); nothing was changed", status, what(kind))
	case errors.Is(err, intake.ErrConflict):
		e = errorf(http.StatusConflict, issueConflict, p.Paths.ServiceRequest, "the referral changed while the %s was checked; nothing was changed: send the same request again", what(kind))
	default:
		return h.unavailable(what(kind), err)
	}
	e.Err = err
	return e
}

// permit checks that the partner auth.Wrap authenticated for ctx may send
// a message of kind (its inbound.messages), and returns it as the sender
// whose rights intake.Sender states. A request that did not pass through
// Wrap has no partner and is refused. Unauthenticated requests of insecure
// development mode may send anything about any referral.
func permit(ctx context.Context, kind model.Kind, p *fhirmap.Parsed) (intake.Sender, error) {
	if kind == "" {
		kind = model.KindReferral
	}
	partner, ok := auth.PartnerFrom(ctx)
	if !ok || !partner.MaySend(string(kind)) {
		return intake.Sender{}, kindNotAllowed(ctx, kind, p)
	}
	if partner.Insecure {
		return intake.Sender{Partner: partner.ID}, nil
	}
	return intake.Sender{Partner: partner.ID, Kind: partner.Kind, ODSCodes: partner.ODSCodes}, nil
}

// mayAmend checks that the partner of ctx may send amendments, which the
// edge learns a referral is only once it finds the ServiceRequest it names.
func mayAmend(ctx context.Context, p *fhirmap.Parsed) error {
	if auth.MaySend(ctx, string(model.KindAmendment)) {
		return nil
	}
	return kindNotAllowed(ctx, model.KindAmendment, p)
}

// kindNotAllowed refuses a kind of message the partner may not send: 403,
// counted as forbidden.
func kindNotAllowed(ctx context.Context, kind model.Kind, p *fhirmap.Parsed) *httpError {
	auth.Forbid(ctx, "message_kind")
	at := "Bundle"
	if p.Paths.ServiceRequest != "" {
		at = p.Paths.ServiceRequest
	}
	return errorf(http.StatusForbidden, issueForbidden, at, "this partner may not send %s messages to the hub (the hub's operator decides which kinds each partner sends); nothing was accepted", what(kind))
}

// notYours refuses a change to a referral the sender may not touch, and a
// change to a referral the hub does not hold, with the same answer (403,
// counted as forbidden), so that no sender learns from it whether another
// organisation's referral exists. reason, logged and counted, tells them
// apart for the operator.
func notYours(ctx context.Context, reason string, kind model.Kind, p *fhirmap.Parsed, cause error) *httpError {
	auth.Forbid(ctx, reason)
	at := nonEmpty(p.Paths.ID, "Bundle")
	if kind == model.KindCollection && p.Paths.BasedOn != "" {
		at = p.Paths.BasedOn
	}
	e := errorf(http.StatusForbidden, issueForbidden, at, "the hub holds no referral by this reference that this partner may change, so the %s cannot apply; nothing was changed", what(kind))
	e.Err = cause
	return e
}

// organisationPath names the element of a new referral whose organisation
// the sender does not speak for: the MessageHeader's sender when that is
// the one, else the ServiceRequest's requester.
func organisationPath(p *fhirmap.Parsed, ref *model.Referral, s intake.Sender) string {
	if ref.Source.SenderODS != "" && s.MayCreate(ref.Source.SenderODS, "") != nil && ref.Source.MessageID != "" {
		return "MessageHeader.sender"
	}
	return nonEmpty(p.Paths.ServiceRequest, "ServiceRequest") + ".requester"
}

// notSupported refuses an event kind this hub was built without.
func notSupported(k model.Kind, at string) *httpError {
	return errorf(http.StatusUnprocessableEntity, fhirmap.IssueNotSupported, nonEmpty(at, "Bundle"), "a %s is not supported by this hub; nothing was accepted", what(k))
}

// anotherPerson refuses a message whose Patient is not the person of the
// referral it names: the hub never merges two people's records.
func anotherPerson(k model.Kind, at string) *httpError {
	return errorf(http.StatusUnprocessableEntity, fhirmap.IssueBusinessRule, nonEmpty(at, "Bundle"), "the Patient's NHS number is not that of the referral this %s names: it is about another person; send a new referral with a new ServiceRequest id instead", what(k))
}

// eventFingerprint hashes what an event says and which referral it names,
// leaving out the ids and times of the request, so that a resent event
// (even in a rebuilt bundle) finds its key.
func eventFingerprint(t fhirmap.Target, ev *model.Event) string {
	b, _ := json.Marshal(struct {
		Target      fhirmap.Target
		Kind        model.Kind
		Status      model.OrderStatus
		Reason      model.Coded
		Description string
	}{t, ev.Kind, ev.Status, ev.Reason, ev.Description}) // always encodes
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// keptPermission is the permission the referral has after an amendment
// that brings now: an amendment without a permission keeps one an
// operator recorded (store.RecordedPermission), so that is no change.
func keptPermission(old, now *model.Permission) *model.Permission {
	if now == nil && old != nil && old.Source == model.PermissionSourceOperator {
		return old
	}
	return now
}

// amended names the parts of the referral an amendment changes, such as
// "amended: priority, equipment": names, never values, so the description
// holds nothing the parts themselves do not.
func amended(old, now *model.Referral) string {
	parts := []struct {
		name     string
		old, now any
	}{
		{"person", old.Person, now.Person},
		{"requester", old.Requester, now.Requester},
		{"priority", old.Priority, now.Priority},
		{"delivery setting", old.DeliverySetting, now.DeliverySetting},
		{"access notes", old.AccessNotes, now.AccessNotes},
		{"equipment", lines(old.Equipment), lines(now.Equipment)},
		{"clinical context", old.Clinical, now.Clinical},
		{"permission", old.Permission, keptPermission(old.Permission, now.Permission)},
	}
	var changed []string
	for _, p := range parts {
		a, _ := json.Marshal(p.old)
		b, _ := json.Marshal(p.now)
		if string(a) != string(b) {
			changed = append(changed, p.name)
		}
	}
	if len(changed) == 0 {
		return "amended: only the sender's identifiers changed"
	}
	return "amended: " + strings.Join(changed, ", ")
}

// lines returns equipment lines without the sender's line ids, which a
// resent bundle may renumber.
func lines(items []model.EquipmentItem) []model.EquipmentItem {
	out := make([]model.EquipmentItem, len(items))
	for i, it := range items {
		it.LineID = ""
		out[i] = it
	}
	return out
}
