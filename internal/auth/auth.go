// Package auth guards the hub's inbound HTTP endpoints: it authenticates the
// partner calling (mutual TLS with a pinned client certificate, a signed JWT
// bearer token, or an HMAC-SHA256 signed webhook), limits its rate, checks
// that it may call this endpoint, and puts who it is in the request's
// context (PartnerFrom) for the handler, which checks the kind of message
// (MaySend) and whether the message is the partner's to send.
//
// Secure by default: a partner without inbound credentials cannot call the
// hub at all; only an explicit insecure development mode lets requests
// without credentials through, and it says so loudly on every request.
//
// Refusals are answered 401 (no or invalid credentials), 403 (authenticated
// but not allowed here), 429 (over the partner's rate, with Retry-After) or
// 503 (the replay store could not be consulted: fail closed)
// by an ErrorWriter the caller supplies, so that a FHIR endpoint answers an
// OperationOutcome and a JSON endpoint {code, message}. Every refusal is
// counted (Counter) and logged with the partner id, route, status and a
// reason code: never a token, a signature, a key, a header value or a body.
//
// Partner credentials never grant access to the operator API: that has its
// own credentials and does not use this package's identity.
package auth

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Modes of inbound authentication, as configured per partner.
const (
	// ModeNone: the partner has no inbound credentials and cannot call the
	// hub (unless the hub runs in insecure development mode).
	ModeNone = "none"
	// ModeMTLS: the partner presents a TLS client certificate whose SHA-256
	// fingerprint (of the certificate or of its public key) is pinned.
	ModeMTLS = "mtls"
	// ModeJWT: the partner sends "Authorization: Bearer <JWT>" signed with
	// its configured key (RS256, ES256 or HS256).
	ModeJWT = "jwt"
	// ModeHMAC: the partner signs each request body with a shared secret
	// (X-ICES-Timestamp, X-ICES-Signature).
	ModeHMAC = "hmac"
)

// Partner is who is calling: the identity Wrap puts in the request context.
type Partner struct {
	// ID is the partner id of the configuration ("provider",
	// "council-cwac"); InsecureDevID for an unauthenticated request let
	// through in insecure development mode.
	ID string
	// Kind is the partner kind (provider, council, nhs); empty in insecure
	// development mode.
	Kind string
	// Mode is how the partner proved who it is (ModeMTLS, ModeJWT,
	// ModeHMAC), or ModeNone in insecure development mode.
	Mode string
	// Insecure is true when nobody was authenticated: the hub runs in
	// insecure development mode and the request carried no credentials.
	Insecure bool
	// ODSCodes are the ODS codes of the organisations an nhs partner
	// speaks for (its configured ods_codes): the referrals it may change
	// are those it sent or whose sender or requester is one of them.
	ODSCodes []string

	messages []string
}

// InsecureDevID is the partner id of unauthenticated requests let through in
// insecure development mode.
const InsecureDevID = "insecure-dev"

// MaySend reports whether the partner may send messages of kind (a model
// kind: "order-status", "complaint", "referral"...), as its configured
// inbound.messages says. Handlers call it as soon as they know the kind,
// before they read any state, and refuse with 403 (Forbid) when it is
// false. In insecure development mode every kind is allowed.
func (p Partner) MaySend(kind string) bool {
	return p.Insecure || slices.Contains(p.messages, kind)
}

type partnerKey struct{}

// WithPartner returns ctx carrying p. Wrap does this; tests of handlers use
// it to stand in for Wrap.
func WithPartner(ctx context.Context, p Partner) context.Context {
	return context.WithValue(ctx, partnerKey{}, p)
}

// PartnerFrom returns the partner Wrap authenticated for this request, and
// false when the request did not pass through Wrap.
func PartnerFrom(ctx context.Context) (Partner, bool) {
	p, ok := ctx.Value(partnerKey{}).(Partner)
	return p, ok
}

// MaySend reports whether the partner of ctx may send messages of kind;
// false when ctx holds no partner.
func MaySend(ctx context.Context, kind string) bool {
	p, ok := PartnerFrom(ctx)
	return ok && p.MaySend(kind)
}

// verdict is what a handler behind Wrap decided about a request it refused
// after authentication (a kind the partner may not send, a referral that
// is not its own), so that Wrap counts the request once, under the
// outcome it really had, and logs why.
type verdict struct {
	mu      sync.Mutex
	outcome string
	reason  string
}

type verdictKey struct{}

// Forbid records that the handler refused the request of ctx with 403 for
// reason (a short code such as "message_kind" or "not_owner", never a
// value from the request): Wrap then counts it as OutcomeForbidden for its
// partner, not as accepted, and logs the reason. The handler still writes
// its own answer. Outside Wrap it does nothing.
func Forbid(ctx context.Context, reason string) {
	if v, ok := ctx.Value(verdictKey{}).(*verdict); ok {
		v.mu.Lock()
		v.outcome, v.reason = OutcomeForbidden, reason
		v.mu.Unlock()
	}
}

// Error is a refusal: the status to answer, a stable code and a message for
// the caller. Neither ever holds a credential or personal data.
type Error struct {
	Status int
	// Code is a stable machine-readable reason: unauthenticated, forbidden,
	// rate_limited, payload_too_large, unsupported_media_type, invalid_json.
	Code    string
	Message string
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
	// reason is the short reason logged and counted ("expired", "replay").
	reason string
}

func (e *Error) Error() string {
	return "auth: " + strconv.Itoa(e.Status) + " " + e.Code + ": " + e.Message
}

// Refusal codes.
const (
	CodeUnauthenticated      = "unauthenticated"
	CodeForbidden            = "forbidden"
	CodeRateLimited          = "rate_limited"
	CodePayloadTooLarge      = "payload_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeInvalidJSON          = "invalid_json"
	// CodeUnavailable: the hub cannot decide just now (its replay store
	// failed); 503 with Retry-After.
	CodeUnavailable = "unavailable"
)

func refuse(status int, code, reason, message string) *Error {
	return &Error{Status: status, Code: code, Message: message, reason: reason}
}

// ErrorWriter writes a refusal in the endpoint's own error format. Wrap sets
// WWW-Authenticate (401) and Retry-After (429) before calling it.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, e *Error)

// JSONError writes e as the JSON error body of the hub's JSON APIs:
// {"code": ..., "message": ...}.
func JSONError(w http.ResponseWriter, _ *http.Request, e *Error) {
	setRetryAfter(w, e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	b, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{e.Code, e.Message})
	_, _ = w.Write(append(b, '\n'))
}

// setRetryAfter sets Retry-After from e, in whole seconds rounded up.
func setRetryAfter(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
}

// Counter counts inbound decisions; the hub's is the Prometheus counter
// iceshub_inbound_requests_total (internal/metrics). It must be safe for
// concurrent use.
type Counter interface {
	// Inc adds one for partner (a configured id, InsecureDevID, or
	// "unknown" when nobody was authenticated) and outcome: accepted,
	// unauthenticated, forbidden, rate_limited, insecure_dev, unavailable.
	Inc(partner, outcome string)
}

// Outcomes counted.
const (
	OutcomeAccepted        = "accepted"
	OutcomeUnauthenticated = "unauthenticated"
	OutcomeForbidden       = "forbidden"
	OutcomeRateLimited     = "rate_limited"
	OutcomeInsecureDev     = "insecure_dev"
	// OutcomeUnavailable: refused because the replay store failed.
	OutcomeUnavailable = "unavailable"
)

// UnknownPartner is counted for requests nobody could be authenticated for.
const UnknownPartner = "unknown"

// Selector says whether an authenticated partner may call this request at
// all, before the partner's own list of endpoints is consulted: the
// endpoint's own rule (only NHS partners at /fhir; only the council named in
// the path at /crm/{council}/events). Both must allow a request.
type Selector func(r *http.Request, p Partner) bool

// OfKind allows partners of the given kinds.
func OfKind(kinds ...string) Selector {
	return func(_ *http.Request, p Partner) bool { return slices.Contains(kinds, p.Kind) }
}

// PathPartner allows only the partner whose id is the request's path value
// name (a {name} wildcard of the http.ServeMux pattern), so that a council
// may post only to its own /crm/{council}/events.
func PathPartner(name string) Selector {
	return func(r *http.Request, p Partner) bool { return r.PathValue(name) != "" && r.PathValue(name) == p.ID }
}

// All allows a request only when every selector does.
func All(sels ...Selector) Selector {
	return func(r *http.Request, p Partner) bool {
		for _, s := range sels {
			if !s(r, p) {
				return false
			}
		}
		return true
	}
}
