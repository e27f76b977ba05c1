package crm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/mappings/inbound"
)

// Events a council's CRM sends to the hub (POST /crm/{council}/events).
const (
	// EventComplaintCreated: a complaint about the service was raised
	// against an order (F6).
	EventComplaintCreated = "complaint.created"
	// EventCollectionRequested: the council asks for equipment to be
	// collected (F8).
	EventCollectionRequested = "collection.requested"
)

// EventNames returns the events a council may send.
func EventNames() []string { return []string{EventComplaintCreated, EventCollectionRequested} }

// CouncilEvent is the body of POST /crm/{council}/events, in the style of
// Firmstep and Jadu CXM webhooks.
type CouncilEvent struct {
	Event string `json:"event"`
	// Timestamp is when it happened (RFC 3339 with a time zone).
	Timestamp string `json:"timestamp"`
	// Data is a ComplaintCreated or a CollectionRequested, by Event.
	Data json.RawMessage `json:"data"`
}

// ComplaintCreated is the data of complaint.created.
type ComplaintCreated struct {
	// EventID is the CRM's id of the event; when absent, the hub
	// recognises a resent event by its body.
	EventID string `json:"eventId,omitempty"`
	// ComplaintReference is the council's reference of its complaint case.
	ComplaintReference string `json:"complaintReference"`
	// OrderReference (the provider's) or CaseReference (the council's
	// case for the order) names the order complained about; one is
	// required.
	OrderReference string `json:"orderReference,omitempty"`
	CaseReference  string `json:"caseReference,omitempty"`
	Category       string `json:"category,omitempty"`
	Summary        string `json:"summary"`
	// ContactAllowed is whether the provider may contact the complainant;
	// Contact must be absent unless it is true.
	ContactAllowed bool                `json:"contactAllowed"`
	Contact        *ComplainantContact `json:"contact,omitempty"`
}

// ComplainantContact is how to reach the complainant.
type ComplainantContact struct {
	Phone string `json:"phone,omitempty"`
	Email string `json:"email,omitempty"`
}

// CollectionRequested is the data of collection.requested.
type CollectionRequested struct {
	EventID        string `json:"eventId,omitempty"`
	OrderReference string `json:"orderReference,omitempty"`
	CaseReference  string `json:"caseReference,omitempty"`
	// Reason is no-longer-needed, moved or died.
	Reason string `json:"reason"`
	Note   string `json:"note,omitempty"`
}

// InboundEvent is a council event mapped to the canonical model, and the
// reference that finds its referral.
type InboundEvent struct {
	// Event has Kind, From (the council), FromEventID, OccurredAt and what
	// the event carries.
	Event model.Event
	// EventID is the CRM's eventId, or the hex SHA-256 of the body when it
	// sent none; Event.FromEventID holds the same.
	EventID string
	// OrderReference or CaseReference (of the council) finds the referral;
	// CaseReference wins when both are sent, being the council's own.
	OrderReference string
	CaseReference  string
}

var (
	collectionReasons = []string{model.CollectionNoLongerNeeded, model.CollectionMoved, model.CollectionDied}
	phonePattern      = regexp.MustCompile(`^\+?[0-9][0-9 ()-]{5,24}$`)
	emailPattern      = regexp.MustCompile(`^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{1,63}$`)
)

// ParseEvent reads one council event, checks it against the contract and
// maps it to the canonical model as raised by council (the council's
// partner id, from the path). now is the hub's clock. It returns an
// *inbound.InvalidError for a body it refuses, listing every problem at
// once.
func ParseEvent(body []byte, council string, now time.Time) (InboundEvent, error) {
	var env CouncilEvent
	if err := inbound.Decode(body, &env, ""); err != nil {
		return InboundEvent{}, err
	}
	var p inbound.Problems
	occurred := p.Time("timestamp", env.Timestamp, now)
	if len(env.Data) == 0 || string(env.Data) == "null" {
		p.Add("data", "required")
	}
	ev := model.Event{From: council, OccurredAt: occurred, ReceivedAt: now.UTC()}
	out := InboundEvent{}
	var eventID string
	switch env.Event {
	case "":
		p.Add("event", "required")
	case EventComplaintCreated:
		var d ComplaintCreated
		if len(p) == 0 {
			if err := inbound.Decode(env.Data, &d, "data."); err != nil {
				return InboundEvent{}, err
			}
		}
		eventID = d.EventID
		p.Token("data.eventId", d.EventID, false)
		p.Token("data.complaintReference", d.ComplaintReference, true)
		references(&p, d.OrderReference, d.CaseReference)
		p.Text("data.category", d.Category, false)
		p.Text("data.summary", d.Summary, true)
		c := &model.Complaint{Reference: d.ComplaintReference, Council: council, Category: strings.TrimSpace(d.Category),
			Summary: strings.TrimSpace(d.Summary), ContactAllowed: d.ContactAllowed}
		if d.Contact != nil {
			if !d.ContactAllowed {
				p.Add("data.contact", "must be absent unless contactAllowed is true")
			}
			if d.Contact.Phone == "" && d.Contact.Email == "" {
				p.Add("data.contact", "needs a phone or an email when present")
			}
			if v := d.Contact.Phone; v != "" {
				if !phonePattern.MatchString(v) {
					p.Add("data.contact.phone", "must be a phone number")
				}
				c.Contact = append(c.Contact, model.ContactPoint{System: "phone", Value: v})
			}
			if v := d.Contact.Email; v != "" {
				if !emailPattern.MatchString(v) {
					p.Add("data.contact.email", "must be an email address")
				}
				c.Contact = append(c.Contact, model.ContactPoint{System: "email", Value: v})
			}
		}
		ev.Kind, ev.Complaint = model.KindComplaint, c
		out.OrderReference, out.CaseReference = d.OrderReference, d.CaseReference
	case EventCollectionRequested:
		var d CollectionRequested
		if len(p) == 0 {
			if err := inbound.Decode(env.Data, &d, "data."); err != nil {
				return InboundEvent{}, err
			}
		}
		eventID = d.EventID
		p.Token("data.eventId", d.EventID, false)
		references(&p, d.OrderReference, d.CaseReference)
		p.Code("data.reason", d.Reason, true, collectionReasons...)
		p.Text("data.note", d.Note, false)
		ev.Kind, ev.Status = model.KindCollection, model.StatusCollectionRequested
		ev.Reason, ev.Description = model.Coded{Code: d.Reason}, strings.TrimSpace(d.Note)
		out.OrderReference, out.CaseReference = d.OrderReference, d.CaseReference
	default:
		p.Add("event", "unknown event (complaint.created or collection.requested)")
	}
	if err := inbound.Invalid(p); err != nil {
		return InboundEvent{}, err
	}
	if eventID == "" {
		sum := sha256.Sum256(body)
		eventID = hex.EncodeToString(sum[:])
	}
	ev.FromEventID = eventID
	if out.CaseReference != "" {
		out.OrderReference = ""
	}
	out.Event, out.EventID = ev, eventID
	return out, nil
}

// references checks that an event names its order by one reference or the
// other.
func references(p *inbound.Problems, order, cas string) {
	if order == "" && cas == "" {
		p.Add("data.orderReference", "orderReference or caseReference is required")
		return
	}
	p.Token("data.orderReference", order, false)
	p.Token("data.caseReference", cas, false)
}
