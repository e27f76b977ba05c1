package hub

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// AdminTokenEnv names the environment variable holding the admin API's
// bearer token. Without it the admin API is not served at all.
const AdminTokenEnv = "ICESHUB_ADMIN_TOKEN"

// adminMaxBody bounds an admin request body: a reason and a name.
const adminMaxBody = 16 << 10

// mountAdmin adds the admin API to mux, every route behind the bearer
// token:
//
//	GET  /admin/dlq                  open dead letters (?all=true: every one)
//	GET  /admin/dlq/{id}             one dead letter with the delivery it carried
//	POST /admin/dlq/{id}/replay      {"by": "...", "reason": "..."} both optional
//	POST /admin/dlq/{id}/discard     {"by": "...", "reason": "..."} reason required
//	GET  /admin/held                 messages held for review (?all=true: resolved ones too)
//	POST /admin/held/{id}/route      {"by", "reason", "council"} all required
//	POST /admin/held/{id}/release    {"by", "reason", "permissionRecordedBy", "permissionRecordedAt", "evidence"}
//	                                 by, permissionRecordedBy and evidence required
//	POST /admin/held/{id}/close      {"by", "reason"} both required
//	GET  /admin/stats                statistics of the service, disclosure-controlled
//	                                 (?from=YYYY-MM&to=YYYY-MM[&by=...][&format=csv|json|markdown])
//	POST /admin/stats/publish        {"month": "YYYY-MM"} an ended month's statistics to the
//	                                 commissioners that have not had it (routes.Publisher.PublishEnded)
//
// Errors use the JSON error body of the partner contracts.
func mountAdmin(mux *http.ServeMux, token string, dlq *DLQActions, held *routes.Held, rules stats.Rules, publisher *routes.Publisher, logger *slog.Logger) {
	a := &admin{want: sha256.Sum256([]byte(token)), dlq: dlq, holds: held, rules: rules, publisher: publisher, log: logger.With("component", "admin")}
	mux.Handle("GET /admin/dlq", a.auth(a.list))
	mux.Handle("GET /admin/dlq/{id}", a.auth(a.show))
	mux.Handle("POST /admin/dlq/{id}/replay", a.auth(a.replay))
	mux.Handle("POST /admin/dlq/{id}/discard", a.auth(a.discard))
	mux.Handle("GET /admin/held", a.auth(a.held))
	mux.Handle("GET /admin/stats", a.auth(a.statsHandler))
	mux.Handle("POST /admin/stats/publish", a.auth(a.publishStats))
	mux.Handle("POST /admin/held/{id}/route", a.auth(a.routeHeld))
	mux.Handle("POST /admin/held/{id}/release", a.auth(a.releaseHeld))
	mux.Handle("POST /admin/held/{id}/close", a.auth(a.closeHeld))
	// Anything else under /admin/ is a 404 in the same format, and still
	// needs the token, so that the API's shape is not disclosed.
	mux.Handle("/admin/", a.auth(func(w http.ResponseWriter, _ *http.Request) {
		writeJSONError(w, http.StatusNotFound, "not-found", "no such admin endpoint", nil)
	}))
}

type admin struct {
	want  [sha256.Size]byte
	dlq   *DLQActions
	holds *routes.Held
	// rules is the disclosure control of GET /admin/stats.
	rules stats.Rules
	// publisher publishes an ended month's statistics by hand.
	publisher *routes.Publisher
	log       *slog.Logger
}

// auth checks "Authorization: Bearer <token>", the scheme in any case (RFC
// 7235). Both sides are hashed first so that the comparison takes the same
// time whatever the length of what was sent.
func (a *admin) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := auth.BearerCredentials(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], a.want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="iceshub-admin"`)
			writeJSONError(w, http.StatusUnauthorized, "unauthorised", "a valid admin bearer token is required",
				[]partnersim.Problem{{Field: "Authorization", Message: "missing or wrong bearer token"}})
			return
		}
		next(w, r)
	})
}

func (a *admin) list(w http.ResponseWriter, r *http.Request) {
	dls, err := a.dlq.store.DeadLetters(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSONOK(w, map[string]any{"deadLetters": DeadLetterViews(dls, r.URL.Query().Get("all") == "true")})
}

func (a *admin) show(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	d, err := a.dlq.store.DeadLetter(r.Context(), id)
	if err != nil {
		a.fail(w, err)
		return
	}
	writeJSONOK(w, ViewOf(d))
}

// decision is the body of a replay or discard.
type decision struct {
	By     string `json:"by"`
	Reason string `json:"reason"`
}

func (a *admin) replay(w http.ResponseWriter, r *http.Request) {
	id, dec, ok := readDecision(w, r)
	if !ok {
		return
	}
	d, err := a.dlq.Replay(r.Context(), id, operatorOf(dec), dec.Reason)
	if err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info("dead letter replayed", "dead_letter_id", id, "partner", d.Recipient, "kind", d.Kind, "idempotency_key", d.IdempotencyKey)
	writeJSONOK(w, map[string]any{"id": id, "state": store.ActionReplayed, "partner": d.Recipient, "kind": d.Kind, "idempotencyKey": d.IdempotencyKey})
}

func (a *admin) discard(w http.ResponseWriter, r *http.Request) {
	id, dec, ok := readDecision(w, r)
	if !ok {
		return
	}
	if strings.TrimSpace(dec.Reason) == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid-request", "a discard needs a reason",
			[]partnersim.Problem{{Field: "reason", Message: "required"}})
		return
	}
	if err := a.dlq.Discard(r.Context(), id, operatorOf(dec), dec.Reason); err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info("dead letter discarded", "dead_letter_id", id)
	writeJSONOK(w, map[string]any{"id": id, "state": store.ActionDiscarded})
}

func (a *admin) held(w http.ResponseWriter, r *http.Request) {
	list := a.dlq.store.Held
	if r.URL.Query().Get("all") == "true" {
		list = a.dlq.store.AllHeld
	}
	held, err := list(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	if held == nil {
		held = []store.Hold{}
	}
	writeJSONOK(w, map[string]any{"held": held})
}

// operatorOf is who a decision is recorded as: the admin API, and the name
// the caller gave, which the shared token cannot prove.
func operatorOf(d decision) string {
	if n := strings.TrimSpace(d.By); n != "" {
		return "admin-api:" + OneLine(n, 100)
	}
	return "admin-api"
}

func (a *admin) fail(w http.ResponseWriter, err error) {
	status, code := dlqStatus(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		a.log.Error("admin request failed", "error", err)
		msg = "the hub could not complete the request"
	}
	writeJSONError(w, status, code, msg, nil)
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeJSONError(w, http.StatusBadRequest, "invalid-request", "the id must be a positive number",
			[]partnersim.Problem{{Field: "id", Message: "must be a positive number"}})
		return 0, false
	}
	return id, true
}

// readDecision reads the dead letter id of the path and an optional JSON
// body {by, reason}; an empty body is an empty decision.
func readDecision(w http.ResponseWriter, r *http.Request) (int64, decision, bool) {
	var d decision
	id, ok := pathID(w, r)
	if !ok {
		return 0, d, false
	}
	ok = readBody(w, r, &d, "the body must be a JSON object with optional by and reason strings", "not a JSON object of by and reason")
	return id, d, ok
}

// readBody reads an optional JSON object into v, refusing unknown fields;
// an empty body leaves v as it is. what and problem describe a bad body.
func readBody(w http.ResponseWriter, r *http.Request, v any, what, problem string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, adminMaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "too-large", "the request body is too large", nil)
		} else {
			writeJSONError(w, http.StatusBadRequest, "invalid-request", "the request body could not be read", nil)
		}
		return false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return true
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid-request", what,
			[]partnersim.Problem{{Field: "body", Message: problem}})
		return false
	}
	return true
}

func writeJSONOK(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

// heldDecision is the body of a held message's route, release or close.
type heldDecision struct {
	By                   string `json:"by"`
	Reason               string `json:"reason"`
	Council              string `json:"council,omitempty"`
	PermissionRecordedBy string `json:"permissionRecordedBy,omitempty"`
	PermissionRecordedAt string `json:"permissionRecordedAt,omitempty"`
	Evidence             string `json:"evidence,omitempty"`
}

// readHeldDecision reads the body of a resolution of a held message and
// checks that it names what action needs: always who decides (the token
// is shared, so the name is what the record has of the person); a reason
// for route and close; the council for route; the permission record for
// release.
func readHeldDecision(w http.ResponseWriter, r *http.Request, action string) (int64, heldDecision, time.Time, bool) {
	var d heldDecision
	id, ok := pathID(w, r)
	if !ok {
		return 0, d, time.Time{}, false
	}
	if !readBody(w, r, &d, "the body must be a JSON object of by, reason, council, permissionRecordedBy, permissionRecordedAt and evidence strings",
		"not a JSON object of the resolution's fields") {
		return 0, d, time.Time{}, false
	}
	var problems []partnersim.Problem
	need := func(field, value string) {
		if strings.TrimSpace(value) == "" {
			problems = append(problems, partnersim.Problem{Field: field, Message: "required"})
		}
	}
	need("by", d.By)
	switch action {
	case store.ActionRouted:
		need("reason", d.Reason)
		need("council", d.Council)
	case store.ActionClosed:
		need("reason", d.Reason)
	case store.ActionReleased:
		need("permissionRecordedBy", d.PermissionRecordedBy)
		need("evidence", d.Evidence)
	}
	at, err := ParsePermissionTime(d.PermissionRecordedAt)
	if err != nil {
		problems = append(problems, partnersim.Problem{Field: "permissionRecordedAt", Message: "RFC 3339 or YYYY-MM-DD"})
	}
	if len(problems) > 0 {
		writeJSONError(w, http.StatusBadRequest, "invalid-request", "the resolution lacks what it needs", problems)
		return 0, d, time.Time{}, false
	}
	return id, d, at, true
}

func (a *admin) routeHeld(w http.ResponseWriter, r *http.Request) {
	id, d, _, ok := readHeldDecision(w, r, store.ActionRouted)
	if !ok {
		return
	}
	res, err := a.holds.Route(r.Context(), id, d.Council, operatorOf(decision{By: d.By}), d.Reason)
	a.resolvedHeld(w, res, err)
}

func (a *admin) releaseHeld(w http.ResponseWriter, r *http.Request) {
	id, d, at, ok := readHeldDecision(w, r, store.ActionReleased)
	if !ok {
		return
	}
	perm := store.PermissionRecord{RecordedBy: OneLine(d.PermissionRecordedBy, 200), RecordedAt: at, Evidence: OneLine(d.Evidence, 200)}
	res, err := a.holds.Release(r.Context(), id, perm, operatorOf(decision{By: d.By}), d.Reason)
	a.resolvedHeld(w, res, err)
}

func (a *admin) closeHeld(w http.ResponseWriter, r *http.Request) {
	id, d, _, ok := readHeldDecision(w, r, store.ActionClosed)
	if !ok {
		return
	}
	res, err := a.holds.Close(r.Context(), id, operatorOf(decision{By: d.By}), d.Reason)
	a.resolvedHeld(w, res, err)
}

// resolvedHeld answers a resolution: what it did, or why not.
func (a *admin) resolvedHeld(w http.ResponseWriter, res routes.Resolved, err error) {
	if err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info("held message resolved", "held_id", res.ID, "status", res.Action, "partner", res.Recipient, "kind", res.Kind,
		"count", len(res.IdempotencyKeys))
	writeJSONOK(w, res)
}
