package provider

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	mapping "github.com/iceshub/iceshub/mappings/provider"
)

// ReceivedOrder is one request the Simulator received and what it answered.
type ReceivedOrder = partnersim.Received[mapping.OrderRequest]

// Simulator is an in-memory provider implementing openapi.yaml's POST
// /orders, for the demo and tests. It is an http.Handler; mount it at the
// provider's base URL.
//
// It checks the bearer token (see RequireToken), Content-Type, the
// Idempotency-Key header and the order itself, records every request
// (Received), answers a repeated Idempotency-Key with the original order
// reference without creating a second order (Stats().Created counts
// distinct orders, Stats().Requests every request), and fails on demand
// (FailNext, SetFailure, ClearFailure). It is safe for concurrent use.
type Simulator struct {
	*partnersim.Sim[mapping.OrderRequest]
}

// NewSimulator returns a Simulator with no orders that requires no token.
func NewSimulator() *Simulator {
	return &Simulator{partnersim.New(partnersim.Contract[mapping.OrderRequest]{
		Path:        OrdersPath,
		InvalidCode: "invalid-order",
		Validate:    validateOrder,
		Reference:   func(n int) string { return fmt.Sprintf("ORD-%06d", n) },
		Answer: func(ref string) any {
			return mapping.OrderAccepted{OrderReference: ref, Status: "received"}
		},
	})}
}

// Orders returns the distinct orders placed, in order: one per
// Idempotency-Key accepted, however often it was sent.
func (s *Simulator) Orders() []mapping.OrderRequest {
	created := s.Created()
	out := make([]mapping.OrderRequest, 0, len(created))
	for _, r := range created {
		out = append(out, r.Body)
	}
	return out
}

var (
	priorities = map[string]bool{"routine": true, "urgent": true, "asap": true, "stat": true}
	settings   = map[string]bool{"home": true, "care-home": true, "school": true, "supported-living": true, "custodial": true, "other": true}
	systems    = map[string]bool{"phone": true, "sms": true, "email": true, "fax": true, "pager": true, "url": true, "other": true}
	birthDate  = regexp.MustCompile(`^\d{4}(-\d{2}(-\d{2})?)?$`)
)

// validateOrder is the order contract's validation (openapi.yaml). Messages
// name the element, never its value.
func validateOrder(key string, o *mapping.OrderRequest) []partnersim.Problem {
	var p []partnersim.Problem
	add := func(field, msg string) { p = append(p, partnersim.Problem{Field: field, Message: msg}) }
	if o.HubReference == "" {
		add("hubReference", "required")
	}
	switch {
	case o.IdempotencyKey == "":
		add("idempotencyKey", "required")
	case o.IdempotencyKey != key:
		add("idempotencyKey", "must equal the Idempotency-Key header")
	}
	if o.Priority != "" && !priorities[o.Priority] {
		add("priority", "must be routine, urgent, asap or stat")
	}
	if len(o.Items) == 0 {
		add("items", "at least one equipment line is required")
	}
	for i, it := range o.Items {
		at := "items[" + strconv.Itoa(i) + "]"
		if it.Quantity < 1 {
			add(at+".quantity", "must be at least 1")
		}
		if it.Code == "" && it.Description == "" {
			add(at, "needs a code or a description")
		}
	}
	if o.Person != nil {
		if n := o.Person.NHSNumber; n != "" && nhsnumber.Check(n) != nil {
			add("person.nhsNumber", "must be a valid 10-digit NHS number")
		}
		if b := o.Person.BirthDate; b != "" && !birthDate.MatchString(b) {
			add("person.birthDate", "must be YYYY, YYYY-MM or YYYY-MM-DD")
		}
		if n := o.Person.Name; n != nil && n.Text == "" && n.Family == "" && len(n.Given) == 0 {
			add("person.name", "must not be empty when present")
		}
		p = append(p, validateContacts("person.contacts", o.Person.Contacts)...)
	}
	if d := o.Delivery; d != nil {
		if d.Setting != nil && d.Setting.Kind != "" && !settings[d.Setting.Kind] {
			add("delivery.setting.kind", "unknown kind of setting")
		}
	}
	if s := o.SafeWorkingLoad; s != nil && s.BodyWeight != nil {
		if v, err := s.BodyWeight.Value.Float64(); err != nil || v <= 0 {
			add("safeWorkingLoad.bodyWeight.value", "must be a positive number")
		}
	}
	if r := o.Requester; r != nil {
		p = append(p, validateContacts("requester.contacts", r.Contacts)...)
	}
	return p
}

func validateContacts(at string, cs []mapping.Contact) []partnersim.Problem {
	var p []partnersim.Problem
	for i, c := range cs {
		if c.Value == "" {
			p = append(p, partnersim.Problem{Field: at + "[" + strconv.Itoa(i) + "].value", Message: "required"})
		}
		if c.System != "" && !systems[c.System] {
			p = append(p, partnersim.Problem{Field: at + "[" + strconv.Itoa(i) + "].system", Message: "unknown contact system"})
		}
	}
	return p
}
