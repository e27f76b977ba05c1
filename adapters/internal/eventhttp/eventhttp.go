// Package eventhttp is what the partners' inbound event webhooks
// (adapters/provider, adapters/crm) share: reading a JSON body within limits,
// handing the parsed event to the accept-an-event use case, and answering
// in the partner contracts' error shape (partnersim.ErrorBody). Each answer
// is chosen with errors.Is / errors.As, never a type assertion, so a wrapped
// refusal still gets its 4xx.
package eventhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/logging"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/mappings/inbound"
)

// DefaultMaxBodyBytes is the largest event body read when a handler's
// configuration names none.
const DefaultMaxBodyBytes = 64 << 10

// RetryAfterSeconds is the Retry-After sent with a 503 when the hub could
// not store an event.
const RetryAfterSeconds = 5

// Acceptor is the accept-an-event use case (*intake.Events).
type Acceptor interface {
	AcceptEvent(ctx context.Context, sub intake.EventSubmission) (intake.Outcome, error)
}

// ReadBody checks the method (POST) and Content-Type (application/json) of
// r and reads its body, at most max bytes. When it returns false it has
// answered the request.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		WriteError(w, http.StatusMethodNotAllowed, "method-not-allowed", "use POST", nil)
		return nil, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		WriteError(w, http.StatusUnsupportedMediaType, "unsupported-media-type", "send application/json", nil)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body exceeds %d bytes", max), nil)
			return nil, false
		}
		WriteError(w, http.StatusBadRequest, "unreadable-body", "the body could not be read", nil)
		return nil, false
	}
	return body, true
}

// WriteInvalid answers a body the mapping refused (an *inbound.InvalidError)
// with 400: invalid-json when it is malformed, invalid-event with a problem
// per member otherwise.
func WriteInvalid(w http.ResponseWriter, err error) {
	var inv *inbound.InvalidError
	if !errors.As(err, &inv) {
		WriteError(w, http.StatusBadRequest, "invalid-event", "the event breaks the contract", nil)
		return
	}
	if inv.Malformed {
		WriteError(w, http.StatusBadRequest, "invalid-json", inv.Message, nil)
		return
	}
	problems := make([]partnersim.Problem, 0, len(inv.Problems))
	for _, p := range inv.Problems {
		problems = append(problems, partnersim.Problem{Field: p.Field, Message: p.Message})
	}
	WriteError(w, http.StatusBadRequest, "invalid-event", inv.Message, problems)
}

// MaySend checks that the partner Wrap authenticated for r may send events
// of kind (its inbound.messages). When it may not, the request is answered
// 403 kind-not-allowed (and counted as forbidden): before anything is read
// from the store, so the answer tells nothing about any referral. A request
// that did not pass through auth.Wrap is refused the same way.
func MaySend(w http.ResponseWriter, r *http.Request, kind model.Kind, log *slog.Logger) bool {
	if auth.MaySend(r.Context(), string(kind)) {
		return true
	}
	auth.Forbid(r.Context(), "message_kind")
	WriteError(w, http.StatusForbidden, "kind-not-allowed", fmt.Sprintf("this partner may not send %s events to the hub (the hub's operator decides which kinds each partner sends); nothing was stored", kind), nil)
	log.Info("event refused", "kind", kind, "status", http.StatusForbidden, "reason", "message_kind")
	return false
}

// Accept hands sub to acc and answers: the stored first answer (the event's
// own for a new event, the original for a duplicate), or the refusal.
// lookupField is the member of the body that named the referral, for a 404's
// problem.
//
// unavailable summarises the 503s of a store that cannot take writes: one
// error line per interval, the rest at debug level.
func Accept(w http.ResponseWriter, r *http.Request, acc Acceptor, sub intake.EventSubmission, lookupField string, log *slog.Logger, unavailable *logging.Repeats) {
	out, err := acc.AcceptEvent(r.Context(), sub)
	if err != nil {
		status := WriteRefusal(w, err, lookupField)
		if status == http.StatusForbidden {
			auth.Forbid(r.Context(), "not_owner")
		}
		level := slog.LevelInfo
		attrs := []any{"kind", sub.Event.Kind, "status", status, "error", err}
		if status >= 500 {
			level = slog.LevelError
			if write, omitted := unavailable.Write(); write {
				attrs = append(attrs, "similar_not_logged", omitted)
			} else {
				level = slog.LevelDebug
			}
		}
		log.Log(r.Context(), level, "event refused", attrs...)
		return
	}
	resp := out.Response
	ct := resp.ContentType
	if ct == "" {
		ct = "application/json"
	}
	w.Header().Set("Content-Type", ct)
	status := resp.Status
	if status == 0 {
		status = http.StatusAccepted
	}
	w.WriteHeader(status)
	_, _ = w.Write(resp.Body)
	log.Info("event accepted", "kind", sub.Event.Kind, "status", status, "duplicate", out.Duplicate)
}

// WriteRefusal answers an error of the accept-an-event use case and returns
// the status: 404 for intake.ErrUnknownReferral, 409 for
// intake.ErrImpossibleTransition and intake.ErrConflict, 403 for
// intake.ErrNotYours, and 503 with Retry-After for anything else (the
// store failed; the sender may send the event again). The answer never
// quotes the error, which may hold references: a 409 impossible-transition
// names only order statuses (TransitionMessage).
func WriteRefusal(w http.ResponseWriter, err error, lookupField string) int {
	switch {
	case errors.Is(err, intake.ErrUnknownReferral):
		var problems []partnersim.Problem
		if lookupField != "" {
			problems = []partnersim.Problem{{Field: lookupField, Message: "no referral is known by this reference"}}
		}
		WriteError(w, http.StatusNotFound, "unknown-referral", "no referral is known by the reference given; the event was recorded, not applied", problems)
		return http.StatusNotFound
	case errors.Is(err, intake.ErrImpossibleTransition):
		WriteError(w, http.StatusConflict, "impossible-transition", TransitionMessage(err), nil)
		return http.StatusConflict
	case errors.Is(err, intake.ErrNotYours):
		WriteError(w, http.StatusForbidden, "not-yours", "the referral is not yours to report on; the event was recorded, not applied", nil)
		return http.StatusForbidden
	case errors.Is(err, intake.ErrConflict):
		WriteError(w, http.StatusConflict, "conflict", "the referral changed while the event was checked; send it again", nil)
		return http.StatusConflict
	}
	w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	WriteError(w, http.StatusServiceUnavailable, "unavailable", "the hub could not store the event; send it again later", nil)
	return http.StatusServiceUnavailable
}

// TransitionMessage is the message of a 409 impossible-transition: where the
// order stands and the statuses it may move to next (model.TransitionError),
// which are the hub's order statuses and never values from the request
// beyond the status refused.
func TransitionMessage(err error) string {
	var te *model.TransitionError
	if !errors.As(err, &te) {
		return "the order cannot move to this status from where it stands; the event was recorded, not applied"
	}
	if len(te.Allowed) == 0 {
		return fmt.Sprintf("the order is %s, which is final: no status may follow it; the event was recorded, not applied", te.From)
	}
	names := make([]string, len(te.Allowed))
	for i, s := range te.Allowed {
		names[i] = string(s)
	}
	again := ""
	if te.From != model.StatusOrdered {
		again = fmt.Sprintf(" (or %s again)", te.From)
	}
	return fmt.Sprintf("the order is %s and cannot move to %s; allowed next: %s%s; the event was recorded, not applied",
		te.From, te.To, strings.Join(names, ", "), again)
}

// WriteError writes a partnersim.ErrorBody.
func WriteError(w http.ResponseWriter, status int, code, msg string, problems []partnersim.Problem) {
	b, _ := json.Marshal(partnersim.ErrorBody{Code: code, Message: msg, Problems: problems})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Accepted returns the 202 answer stored with an event: its id and the
// referral it was about (intake.ReferralIDPlaceholder, replaced once the
// referral is found).
func Accepted(eventID string) intake.Response {
	b, _ := json.Marshal(inbound.Accepted{EventID: eventID, ReferralID: intake.ReferralIDPlaceholder, Status: "accepted"})
	return intake.Response{Status: http.StatusAccepted, ContentType: "application/json", Body: append(b, '\n')}
}
