package crm

import (
	"fmt"
	"maps"
	"slices"

	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	mapping "github.com/iceshub/iceshub/mappings/crm"
)

// ReceivedCase is one request the Simulator received and what it answered.
type ReceivedCase = partnersim.Received[mapping.CreateCaseRequest]

// Simulator is an in-memory council case system implementing openapi.yaml's
// POST /cases, for the demo and tests. It is an http.Handler; mount it at
// the council's base URL. Run one per council.
//
// It checks the bearer token (see RequireToken), Content-Type, the
// Idempotency-Key header and the case itself (known case type and status,
// known named fields), records
// every request (Received), answers a repeated Idempotency-Key with the
// original case reference without creating a second case (Stats().Created
// counts distinct cases, Stats().Requests every request), and fails on
// demand (FailNext, SetFailure, ClearFailure). It is safe for concurrent
// use.
type Simulator struct {
	*partnersim.Sim[mapping.CreateCaseRequest]
}

// NewSimulator returns a Simulator with no cases that requires no token.
func NewSimulator() *Simulator {
	return &Simulator{partnersim.New(partnersim.Contract[mapping.CreateCaseRequest]{
		Path:        CasesPath,
		InvalidCode: "invalid-case",
		Validate:    validateCase,
		Reference:   func(n int) string { return fmt.Sprintf("CASE-%06d", n) },
		Answer: func(ref string) any {
			return mapping.CaseCreated{CaseReference: ref, Status: "open"}
		},
	})}
}

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

// statusesByType lists the case types the contract defines and the
// statuses a case of each type may be created with.
var statusesByType = map[string][]string{
	mapping.CaseTypeEquipmentOrder: {mapping.StatusOrderPlaced},
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
