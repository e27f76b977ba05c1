package crm

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	mapping "github.com/iceshub/iceshub/mappings/crm"
)

// ReceivedCase is one request the Simulator received and what it answered.
type ReceivedCase = partnersim.Received[mapping.CreateCaseRequest]

// ReceivedNote is one note request the Simulator received.
type ReceivedNote = partnersim.Received[mapping.AddNoteRequest]

// Simulator is an in-memory council case system implementing openapi.yaml,
// for the demo and tests: POST /cases and POST /cases/{caseReference}/notes.
// It is an http.Handler; mount it at the council's base URL. Run one per
// council.
//
// Each endpoint checks the bearer token (see RequireToken), Content-Type,
// the Idempotency-Key header and the body (known case type, status and
// named fields; known note type and fields), records every request,
// answers a repeated Idempotency-Key with the original answer without
// creating anything, and refuses (404) a note on a case it does not know:
// one it created, or one made known with KnowCase (a complaint case the
// council opened itself). The embedded Sim is the cases endpoint
// (Received, Created, Stats and Cases are about cases); Note is the notes
// endpoint. Failures injected with FailNext, SetFailure or FailWhen apply
// to both; Journal lists every request in the order answered. It is safe
// for concurrent use.
type Simulator struct {
	*partnersim.Sim[mapping.CreateCaseRequest]
	Note *partnersim.Sim[mapping.AddNoteRequest]

	handler http.Handler
}

// NewSimulator returns a Simulator with no cases that requires no token.
func NewSimulator() *Simulator {
	p := partnersim.NewPartner()
	s := &Simulator{
		Sim: partnersim.NewOn(p, partnersim.Contract[mapping.CreateCaseRequest]{
			Path:        CasesPath,
			InvalidCode: "invalid-case",
			Validate:    validateCase,
			Reference:   func(n int) string { return fmt.Sprintf("CASE-%06d", n) },
			Answer: func(ref string) any {
				return mapping.CaseCreated{CaseReference: ref, Status: "open"}
			},
		}),
		Note: partnersim.NewOn(p, partnersim.Contract[mapping.AddNoteRequest]{
			Path:        mapping.NotesPath,
			InvalidCode: "invalid-note",
			Validate:    validateNote,
			Reference:   func(n int) string { return fmt.Sprintf("NOTE-%06d", n) },
			Answer:      func(ref string) any { return mapping.NoteAdded{NoteID: ref} },
			Check: func(params map[string]string, _ *mapping.AddNoteRequest) *partnersim.Refusal {
				if !p.Known(params["caseReference"]) {
					return &partnersim.Refusal{Status: http.StatusNotFound, Code: "unknown-case", Message: "no case is known by this reference"}
				}
				return nil
			},
		}),
	}
	s.handler = partnersim.Route(s.Sim, s.Note)
	return s
}

// ServeHTTP passes the request to the endpoint its path names; any other
// path is answered 404 (and recorded) by the cases endpoint.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// KnowCase makes ref a case the council has, so that notes on it are
// accepted: a complaint case the council opened itself.
func (s *Simulator) KnowCase(ref string) { s.Partner().Remember(ref) }

// Journal returns every request to either endpoint, in the order answered.
func (s *Simulator) Journal() []partnersim.Entry { return s.Partner().Journal() }

// Cases returns the distinct cases created, in order: one per
// Idempotency-Key accepted, however often it was sent.
func (s *Simulator) Cases() []mapping.CreateCaseRequest {
	created := s.Created()
	out := make([]mapping.CreateCaseRequest, 0, len(created))
	for _, r := range created {
		out = append(out, r.Body)
	}
	return out
}

// Notes returns the distinct notes added to the case ref, in order.
func (s *Simulator) Notes(ref string) []mapping.AddNoteRequest {
	var out []mapping.AddNoteRequest
	for _, r := range s.Note.Created() {
		if params, _ := partnersim.Params(mapping.NotesPath, r.Path); params["caseReference"] == ref {
			out = append(out, r.Body)
		}
	}
	return out
}

// statusesByType lists the case types the contract defines and the
// statuses a case of each type may be created with.
var statusesByType = map[string][]string{
	mapping.CaseTypeEquipmentOrder: {mapping.StatusOrderPlaced},
	mapping.CaseTypeSafeguarding:   {mapping.StatusConcernRaised},
}

// validateCase is the case contract's validation (openapi.yaml). Messages
// name the element, never its value.
func validateCase(_ string, c *mapping.CreateCaseRequest) []partnersim.Problem {
	var p []partnersim.Problem
	add := func(field, msg string) { p = append(p, partnersim.Problem{Field: field, Message: msg}) }
	statuses, known := statusesByType[c.CaseType]
	switch {
	case c.CaseType == "":
		add("caseType", "required")
	case !known:
		add("caseType", "unknown case type")
	case !slices.Contains(statuses, c.Status):
		add("status", "not a status this case type can be created with")
	}
	if c.ExternalReference == "" {
		add("externalReference", "required")
	}
	switch {
	case c.Priority != "" && c.Priority != mapping.PriorityUrgent && c.Priority != "routine":
		add("priority", "must be urgent or routine")
	case c.CaseType == mapping.CaseTypeSafeguarding && c.Priority != mapping.PriorityUrgent:
		add("priority", "a safeguarding case is urgent")
	}
	if c.Title == "" || len(c.Title) > 200 {
		add("title", "required, at most 200 characters")
	}
	names := mapping.CaseFieldNames()
	for _, name := range slices.Sorted(maps.Keys(c.Fields)) {
		if !slices.Contains(names, name) {
			add("fields."+name, "unknown field")
		} else if c.Fields[name] == "" {
			add("fields."+name, "must not be empty")
		}
	}
	if n := c.Fields[mapping.FieldNHSNumber]; n != "" && nhsnumber.Check(n) != nil {
		add("fields."+mapping.FieldNHSNumber, "must be a valid 10-digit NHS number")
	}
	for i, n := range c.Notes {
		if n.Text == "" {
			add(fmt.Sprintf("notes[%d].text", i), "required")
		}
	}
	return p
}

var orderStatuses = []string{"accepted", "scheduled", "out-for-delivery", "delivered", "installed", "failed-delivery",
	"collection-requested", "collected", "cancelled"}

// validateNote is the note contract's validation (openapi.yaml). Messages
// name the element, never its value.
func validateNote(_ string, n *mapping.AddNoteRequest) []partnersim.Problem {
	var p []partnersim.Problem
	add := func(field, msg string) { p = append(p, partnersim.Problem{Field: field, Message: msg}) }
	if !slices.Contains(mapping.NoteTypes(), n.Type) {
		add("type", "unknown note type")
	}
	if n.ExternalReference == "" {
		add("externalReference", "required")
	}
	if n.Text == "" {
		add("text", "required")
	}
	if _, err := time.Parse(time.RFC3339, n.OccurredAt); err != nil {
		add("occurredAt", "required, RFC 3339")
	}
	if n.Status != "" && !slices.Contains(orderStatuses, n.Status) {
		add("status", "unknown order status")
	}
	names := mapping.NoteFieldNames()
	for _, name := range slices.Sorted(maps.Keys(n.Fields)) {
		if !slices.Contains(names, name) {
			add("fields."+name, "unknown field")
		} else if n.Fields[name] == "" {
			add("fields."+name, "must not be empty")
		}
	}
	return p
}
