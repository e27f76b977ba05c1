package provider

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	mapping "github.com/iceshub/iceshub/mappings/provider"
)

// ReceivedOrder is one request the Simulator received and what it answered.
type ReceivedOrder = partnersim.Received[mapping.OrderRequest]

// Simulator is an in-memory provider implementing openapi.yaml, for the
// demo and tests: POST /orders, POST /orders/{orderReference}/cancellation,
// /amendments and /collections, and POST /complaints. It is an
// http.Handler; mount it at the provider's base URL.
//
// Each endpoint checks the bearer token (see RequireToken), Content-Type,
// the Idempotency-Key header and the body, records every request, answers
// a repeated Idempotency-Key with the original answer without creating
// anything, and refuses (404) a change to, or a complaint about, an order
// it never placed. The embedded Sim is the orders endpoint (Received,
// Created, Stats and Orders are about orders); Cancellation, Amendment,
// Collection and Complaint are the others. Failures injected with FailNext,
// SetFailure or FailWhen apply to every endpoint; Journal lists every
// request to any endpoint in the order answered. It is safe for concurrent
// use.
type Simulator struct {
	*partnersim.Sim[mapping.OrderRequest]
	Cancellation *partnersim.Sim[mapping.CancellationRequest]
	Amendment    *partnersim.Sim[mapping.OrderRequest]
	Collection   *partnersim.Sim[mapping.CollectionRequest]
	Complaint    *partnersim.Sim[mapping.ComplaintRequest]

	handler http.Handler
}

// NewSimulator returns a Simulator with no orders that requires no token.
func NewSimulator() *Simulator {
	p := partnersim.NewPartner()
	ack := func(ref string) any { return mapping.Acknowledgement{Reference: ref, Status: "received"} }
	knownOrder := func(params map[string]string) *partnersim.Refusal {
		if !p.Known(params["orderReference"]) {
			return &partnersim.Refusal{Status: http.StatusNotFound, Code: "unknown-order", Message: "no order is known by this reference"}
		}
		return nil
	}
	s := &Simulator{
		Sim: partnersim.NewOn(p, partnersim.Contract[mapping.OrderRequest]{
			Path:        OrdersPath,
			InvalidCode: "invalid-order",
			Validate:    validateOrder,
			Reference:   func(n int) string { return fmt.Sprintf("ORD-%06d", n) },
			Answer: func(ref string) any {
				return mapping.OrderAccepted{OrderReference: ref, Status: "received"}
			},
		}),
		Cancellation: partnersim.NewOn(p, partnersim.Contract[mapping.CancellationRequest]{
			Path:        mapping.CancellationPath,
			InvalidCode: "invalid-cancellation",
			Validate:    validateCancellation,
			Reference:   func(n int) string { return fmt.Sprintf("CAN-%06d", n) },
			Answer:      ack,
			Check: func(params map[string]string, _ *mapping.CancellationRequest) *partnersim.Refusal {
				return knownOrder(params)
			},
		}),
		Amendment: partnersim.NewOn(p, partnersim.Contract[mapping.OrderRequest]{
			Path:        mapping.AmendmentsPath,
			InvalidCode: "invalid-amendment",
			Validate:    validateOrder,
			Reference:   func(n int) string { return fmt.Sprintf("AMD-%06d", n) },
			Answer:      ack,
			Check:       func(params map[string]string, _ *mapping.OrderRequest) *partnersim.Refusal { return knownOrder(params) },
		}),
		Collection: partnersim.NewOn(p, partnersim.Contract[mapping.CollectionRequest]{
			Path:        mapping.CollectionsPath,
			InvalidCode: "invalid-collection",
			Validate:    validateCollection,
			Reference:   func(n int) string { return fmt.Sprintf("COL-%06d", n) },
			Answer:      ack,
			Check: func(params map[string]string, _ *mapping.CollectionRequest) *partnersim.Refusal {
				return knownOrder(params)
			},
		}),
		Complaint: partnersim.NewOn(p, partnersim.Contract[mapping.ComplaintRequest]{
			Path:        mapping.ComplaintsPath,
			InvalidCode: "invalid-complaint",
			Validate:    validateComplaint,
			Reference:   func(n int) string { return fmt.Sprintf("CMP-%06d", n) },
			Answer:      ack,
			Check: func(_ map[string]string, c *mapping.ComplaintRequest) *partnersim.Refusal {
				return knownOrder(map[string]string{"orderReference": c.OrderReference})
			},
		}),
	}
	s.handler = partnersim.Route(s.Sim, s.Cancellation, s.Amendment, s.Collection, s.Complaint)
	return s
}

// ServeHTTP passes the request to the endpoint its path names; any other
// path is answered 404 (and recorded) by the orders endpoint.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Journal returns every request to any endpoint, in the order answered.
func (s *Simulator) Journal() []partnersim.Entry { return s.Partner().Journal() }

// Orders returns the distinct orders placed, in order: one per
// Idempotency-Key accepted, however often it was sent.
func (s *Simulator) Orders() []mapping.OrderRequest { return bodies(s.Created()) }

// Cancellations returns the distinct cancellations received, in order.
func (s *Simulator) Cancellations() []mapping.CancellationRequest {
	return bodies(s.Cancellation.Created())
}

// Amendments returns the distinct amendments received, in order.
func (s *Simulator) Amendments() []mapping.OrderRequest { return bodies(s.Amendment.Created()) }

// Collections returns the distinct collection requests received, in order.
func (s *Simulator) Collections() []mapping.CollectionRequest { return bodies(s.Collection.Created()) }

// Complaints returns the distinct complaints received, in order.
func (s *Simulator) Complaints() []mapping.ComplaintRequest { return bodies(s.Complaint.Created()) }

func bodies[T any](created []partnersim.Received[T]) []T {
	out := make([]T, 0, len(created))
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

func validateCancellation(_ string, c *mapping.CancellationRequest) []partnersim.Problem {
	var p []partnersim.Problem
	add := func(field, msg string) { p = append(p, partnersim.Problem{Field: field, Message: msg}) }
	if c.ReferralID == "" {
		add("referralId", "required")
	}
	if _, err := time.Parse(time.RFC3339, c.CancelledAt); err != nil {
		add("cancelledAt", "required, RFC 3339")
	}
	if r := c.Reason; r != nil && r.Code == "" && r.Text == "" {
		add("reason", "needs a code or a text when present")
	}
	return p
}

var collectionReasons = map[string]bool{"no-longer-needed": true, "moved": true, "died": true}

func validateCollection(_ string, c *mapping.CollectionRequest) []partnersim.Problem {
	var p []partnersim.Problem
	add := func(field, msg string) { p = append(p, partnersim.Problem{Field: field, Message: msg}) }
	if c.ReferralID == "" {
		add("referralId", "required")
	}
	if c.RequestedBy == "" {
		add("requestedBy", "required")
	}
	if _, err := time.Parse(time.RFC3339, c.RequestedAt); err != nil {
		add("requestedAt", "required, RFC 3339")
	}
	if r := c.Reason; r != nil {
		if r.Code == "" && r.Text == "" {
			add("reason", "needs a code or a text when present")
		} else if r.Code != "" && !collectionReasons[r.Code] {
			add("reason.code", "must be no-longer-needed, moved or died")
		}
	}
	return p
}

func validateComplaint(_ string, c *mapping.ComplaintRequest) []partnersim.Problem {
	var p []partnersim.Problem
	add := func(field, msg string) { p = append(p, partnersim.Problem{Field: field, Message: msg}) }
	for field, v := range map[string]string{"complaintReference": c.ComplaintReference, "council": c.Council,
		"orderReference": c.OrderReference, "referralId": c.ReferralID} {
		if v == "" {
			add(field, "required")
		}
	}
	if _, err := time.Parse(time.RFC3339, c.RaisedAt); err != nil {
		add("raisedAt", "required, RFC 3339")
	}
	p = append(p, validateContacts("contact", c.Contact)...)
	slices.SortFunc(p, func(a, b partnersim.Problem) int { return strings.Compare(a.Field, b.Field) })
	return p
}
