package provider

import (
	"slices"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/mappings/inbound"
)

// Types of event the provider sends to the hub (POST /provider/events).
const (
	EventOrderAccepted            = "order.accepted"
	EventOrderScheduled           = "order.scheduled"
	EventOrderOutForDelivery      = "order.out-for-delivery"
	EventOrderDelivered           = "order.delivered"
	EventOrderInstalled           = "order.installed"
	EventOrderFailedDelivery      = "order.failed-delivery"
	EventOrderCollectionRequested = "order.collection-requested"
	EventOrderCollected           = "order.collected"
	EventOrderCancelled           = "order.cancelled"
	EventEquipmentIssue           = "equipment.issue"
	EventSafeguardingConcern      = "safeguarding.concern"
	EventComplaintReply           = "complaint.reply"
)

// orderStatusOf gives the order status each order.* event reports.
var orderStatusOf = map[string]model.OrderStatus{
	EventOrderAccepted:            model.StatusAccepted,
	EventOrderScheduled:           model.StatusScheduled,
	EventOrderOutForDelivery:      model.StatusOutForDelivery,
	EventOrderDelivered:           model.StatusDelivered,
	EventOrderInstalled:           model.StatusInstalled,
	EventOrderFailedDelivery:      model.StatusFailedDelivery,
	EventOrderCollectionRequested: model.StatusCollectionRequested,
	EventOrderCollected:           model.StatusCollected,
	EventOrderCancelled:           model.StatusCancelled,
}

// EventTypes returns every event type the provider may send, in the order
// of the contract.
func EventTypes() []string {
	return []string{EventOrderAccepted, EventOrderScheduled, EventOrderOutForDelivery, EventOrderDelivered,
		EventOrderInstalled, EventOrderFailedDelivery, EventOrderCollectionRequested, EventOrderCollected,
		EventOrderCancelled, EventEquipmentIssue, EventSafeguardingConcern, EventComplaintReply}
}

// Event is the body of the provider's POST /provider/events. Which members
// an event may and must hold depends on its type (see ParseEvent and the
// contract); every other member is refused.
type Event struct {
	// EventID is the provider's id of the event; a resent event repeats it.
	EventID string `json:"eventId"`
	Type    string `json:"type"`
	// OrderReference is the provider's order reference (optional for
	// complaint.reply).
	OrderReference string `json:"orderReference,omitempty"`
	// OccurredAt is when it happened (RFC 3339 with a time zone).
	OccurredAt string `json:"occurredAt"`
	// ScheduledDate (YYYY-MM-DD): order.scheduled, order.collection-requested.
	ScheduledDate string `json:"scheduledDate,omitempty"`
	// Reason: order.failed-delivery (required), order.cancelled,
	// order.collection-requested.
	Reason *Reason `json:"reason,omitempty"`
	// IssueType: equipment.issue (unsafe, unsuitable, failed-installation).
	IssueType string `json:"issueType,omitempty"`
	// Description: equipment.issue, safeguarding.concern (required).
	Description string `json:"description,omitempty"`
	// Category: safeguarding.concern, such as neglect or self-neglect.
	Category string `json:"category,omitempty"`
	// ComplaintReference and Reply: complaint.reply.
	ComplaintReference string `json:"complaintReference,omitempty"`
	Reply              string `json:"reply,omitempty"`
}

// Inbound is an event the provider sent, mapped to the canonical model, and
// the reference that finds its referral.
type Inbound struct {
	// Event has Kind, From, FromEventID, OccurredAt and what its type
	// carries; the hub fills in its id and referral.
	Event model.Event
	// OrderReference finds the referral, except for complaint.reply.
	OrderReference string
	// ComplaintReference finds the referral of a complaint.reply.
	ComplaintReference string
}

var issueTypes = []string{model.IssueUnsafe, model.IssueUnsuitable, model.IssueFailedInstallation}

// members lists, per event type, the optional members it may hold beyond
// eventId, type and occurredAt; required lists those it must hold.
var (
	members = map[string][]string{
		EventOrderScheduled:           {"orderReference", "scheduledDate"},
		EventOrderFailedDelivery:      {"orderReference", "reason"},
		EventOrderCollectionRequested: {"orderReference", "scheduledDate", "reason"},
		EventOrderCancelled:           {"orderReference", "reason"},
		EventEquipmentIssue:           {"orderReference", "issueType", "description"},
		EventSafeguardingConcern:      {"orderReference", "description", "category"},
		EventComplaintReply:           {"orderReference", "complaintReference", "reply"},
	}
	required = map[string][]string{
		EventOrderScheduled:      {"orderReference", "scheduledDate"},
		EventOrderFailedDelivery: {"orderReference", "reason"},
		EventEquipmentIssue:      {"orderReference", "issueType"},
		EventSafeguardingConcern: {"orderReference", "description"},
		EventComplaintReply:      {"complaintReference", "reply"},
	}
)

// ParseEvent reads one provider event, checks it against the contract and
// maps it to the canonical model as reported by from (the provider's partner
// id). now is the hub's clock, for occurredAt. It returns an *InvalidError
// (package inbound) for a body it refuses, listing every problem at once.
func ParseEvent(body []byte, from string, now time.Time) (Inbound, error) {
	var e Event
	if err := inbound.Decode(body, &e, ""); err != nil {
		return Inbound{}, err
	}
	var p inbound.Problems
	p.Token("eventId", e.EventID, true)
	status, isOrder := orderStatusOf[e.Type]
	allowed, isOther := members[e.Type]
	switch {
	case e.Type == "":
		p.Add("type", "required")
	case !isOrder && !isOther:
		p.Add("type", "unknown event type (see the contract)")
	default:
		req := required[e.Type]
		if allowed == nil {
			allowed = []string{"orderReference"}
		}
		if req == nil {
			req = []string{"orderReference"} // every order.* event
		}
		have := e.present()
		for _, m := range have {
			if !slices.Contains(allowed, m) {
				p.Add(m, "not used by "+e.Type+" events")
			}
		}
		for _, m := range req {
			if !slices.Contains(have, m) {
				p.Add(m, "required for "+e.Type+" events")
			}
		}
	}
	occurred := p.Time("occurredAt", e.OccurredAt, now)
	p.Token("orderReference", e.OrderReference, false)
	p.Token("complaintReference", e.ComplaintReference, false)
	if e.ScheduledDate != "" {
		if _, err := time.Parse(time.DateOnly, e.ScheduledDate); err != nil {
			p.Add("scheduledDate", "must be a date, YYYY-MM-DD")
		}
	}
	if r := e.Reason; r != nil {
		p.Code("reason.code", r.Code, true)
		p.Text("reason.text", r.Text, false)
	}
	p.Code("issueType", e.IssueType, false, issueTypes...)
	p.Code("category", e.Category, false)
	p.Text("description", e.Description, false)
	p.Text("reply", e.Reply, false)
	if err := inbound.Invalid(p); err != nil {
		return Inbound{}, err
	}

	ev := model.Event{From: from, FromEventID: e.EventID, OccurredAt: occurred, ReceivedAt: now.UTC()}
	in := Inbound{OrderReference: e.OrderReference}
	switch {
	case isOrder:
		ev.Kind, ev.Status, ev.ScheduledDate = model.KindOrderStatus, status, e.ScheduledDate
		if e.Reason != nil {
			ev.Reason = model.Coded{Code: e.Reason.Code, Display: strings.TrimSpace(e.Reason.Text)}
		}
	case e.Type == EventEquipmentIssue:
		ev.Kind, ev.Reason, ev.Description = model.KindEquipmentIssue, model.Coded{Code: e.IssueType}, strings.TrimSpace(e.Description)
	case e.Type == EventSafeguardingConcern:
		ev.Kind, ev.Description = model.KindSafeguarding, strings.TrimSpace(e.Description)
		if e.Category != "" {
			ev.Reason = model.Coded{Code: e.Category}
		}
	default: // EventComplaintReply
		ev.Kind = model.KindComplaintReply
		ev.Complaint = &model.Complaint{Reference: e.ComplaintReference, Reply: strings.TrimSpace(e.Reply)}
		// The complaint reference finds the referral; the order reference,
		// when sent, is the provider's own cross-check and is not used.
		in.OrderReference, in.ComplaintReference = "", e.ComplaintReference
	}
	in.Event = ev
	return in, nil
}

// present lists the type-dependent members e holds.
func (e Event) present() []string {
	var out []string
	for _, m := range []struct {
		name string
		set  bool
	}{
		{"orderReference", e.OrderReference != ""}, {"scheduledDate", e.ScheduledDate != ""}, {"reason", e.Reason != nil},
		{"issueType", e.IssueType != ""}, {"description", e.Description != ""}, {"category", e.Category != ""},
		{"complaintReference", e.ComplaintReference != ""}, {"reply", e.Reply != ""},
	} {
		if m.set {
			out = append(out, m.name)
		}
	}
	return out
}
