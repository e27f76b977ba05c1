package provider

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/iceshub/iceshub/internal/model"
)

// Paths of the provider order API, under the provider's base URL. The
// {orderReference} segment is the provider's order reference, escaped.
const (
	OrdersPath        = "/orders"
	CancellationPath  = "/orders/{orderReference}/cancellation"
	AmendmentsPath    = "/orders/{orderReference}/amendments"
	CollectionsPath   = "/orders/{orderReference}/collections"
	ComplaintsPath    = "/complaints"
	orderReferenceVar = "{orderReference}"
)

// Reason is a coded reason with its text, as the hub received it.
type Reason struct {
	Code string `json:"code,omitempty"`
	Text string `json:"text,omitempty"`
}

// CancellationRequest is the body of POST /orders/{orderReference}/cancellation:
// the NHS cancelled the order (F2).
type CancellationRequest struct {
	// ReferralID is the hub's referral id (the order's hubReference).
	ReferralID string `json:"referralId"`
	// Reason is absent when the hub's copy does not hold it.
	Reason *Reason `json:"reason,omitempty"`
	// CancelledAt is when the requester cancelled (RFC 3339, UTC).
	CancelledAt string `json:"cancelledAt"`
}

// CollectionRequest is the body of POST /orders/{orderReference}/collections:
// equipment is no longer needed and is to be collected (F8).
type CollectionRequest struct {
	ReferralID string `json:"referralId"`
	// Reason is no-longer-needed, moved or died, when the copy holds it.
	Reason *Reason `json:"reason,omitempty"`
	// Note is the requester's free text, when the copy holds it.
	Note string `json:"note,omitempty"`
	// RequestedBy is the partner id of who asked: a council, or "nhs".
	RequestedBy string `json:"requestedBy"`
	// RequestedAt is when they asked (RFC 3339, UTC).
	RequestedAt string `json:"requestedAt"`
}

// ComplaintRequest is the body of POST /complaints: a council's complaint
// about the service, for the provider to investigate (F6). It holds only
// what the investigation needs.
type ComplaintRequest struct {
	// ComplaintReference is the council's complaint reference; the provider
	// quotes it in its reply (complaint.reply).
	ComplaintReference string `json:"complaintReference"`
	// Council is the partner id of the council that raised it.
	Council        string `json:"council"`
	OrderReference string `json:"orderReference"`
	ReferralID     string `json:"referralId"`
	Category       string `json:"category,omitempty"`
	Summary        string `json:"summary,omitempty"`
	// Contact is how to reach the complainant; present only when the
	// council allows it and the copy holds it.
	Contact []Contact `json:"contact,omitempty"`
	// RaisedAt is when the council raised it (RFC 3339, UTC).
	RaisedAt string `json:"raisedAt"`
}

// Request is one call of the provider order API, mapped from a copy.
type Request struct {
	// Path is the escaped path under the provider's base URL, such as
	// "/orders/ORD-000123/cancellation". It holds no personal data.
	Path string
	// Body is the JSON body: an OrderRequest, CancellationRequest,
	// CollectionRequest or ComplaintRequest.
	Body any
	// Fields are the labels of the canonical fields Body holds, with the
	// transform the copy's Fields give them (model.SentLabels): what the
	// disclosure record of this request lists. A field the route allows
	// but the copy does not hold is not there.
	Fields []string
}

// ErrNoOrderReference is wrapped by Outbound for a copy about an order the
// provider never acknowledged: the hub holds no order reference for it, so
// the order never reached the provider (or its answer was never recorded).
var ErrNoOrderReference = errors.New("provider: no order reference: the order never reached the provider")

// fieldsFor lists, per kind of message, the canonical fields its request can
// carry.
var fieldsFor = map[model.Kind][]string{
	model.KindReferral:     carried,
	model.KindAmendment:    carried,
	model.KindCancellation: {"event.reason"},
	model.KindCollection:   {"event.description", "event.reason"},
	model.KindComplaint:    {"complaint.category", "complaint.contact", "complaint.summary"},
}

// FieldsFor returns the canonical fields the provider contract can carry in a
// message of kind k, sorted; nil for a kind the provider never receives. A
// route to the provider naming any other field is a configuration error.
func FieldsFor(k model.Kind) []string { return slices.Clone(fieldsFor[k]) }

// Kinds returns the kinds of message the provider contract can carry.
func Kinds() []model.Kind {
	return []model.Kind{model.KindReferral, model.KindAmendment, model.KindCancellation, model.KindCollection, model.KindComplaint}
}

// Outbound maps one minimised copy to the request the provider receives for
// its kind: a new order (POST /orders), an amendment (the order as it now
// stands, POST /orders/{ref}/amendments), a cancellation, a collection or a
// complaint. It returns an error wrapping ErrUnsupportedKind,
// ErrFieldNotCarried, ErrInvalidCopy or ErrNoOrderReference when the copy
// cannot become a request; such a copy never will as it stands, so the error
// is permanent. It never changes its input.
func Outbound(d model.Delivery) (Request, error) {
	if d.Kind == model.KindReferral {
		o, err := Order(d)
		if err != nil {
			return Request{}, err
		}
		return Request{Path: OrdersPath, Body: o, Fields: model.SentLabels(d.Fields, o.holds)}, nil
	}
	allowed, ok := fieldsFor[d.Kind]
	if !ok {
		return Request{}, fmt.Errorf("%w %q", ErrUnsupportedKind, d.Kind)
	}
	if err := checkFields(d.Fields, allowed); err != nil {
		return Request{}, err
	}
	r := d.Referral
	if strings.TrimSpace(r.ID) == "" {
		return Request{}, fmt.Errorf("%w: no referral id", ErrInvalidCopy)
	}
	ref, err := orderPath(d.Refs.OrderReference)
	if err != nil {
		return Request{}, err
	}
	if d.Kind == model.KindAmendment {
		o, err := order(d)
		if err != nil {
			return Request{}, err
		}
		return Request{Path: strings.Replace(AmendmentsPath, orderReferenceVar, ref, 1), Body: o, Fields: model.SentLabels(d.Fields, o.holds)}, nil
	}
	ev := r.Event
	if ev == nil || ev.Kind != d.Kind {
		return Request{}, fmt.Errorf("%w: a %s copy without its event", ErrInvalidCopy, d.Kind)
	}
	if ev.OccurredAt.IsZero() {
		return Request{}, fmt.Errorf("%w: the event has no time", ErrInvalidCopy)
	}
	at := ev.OccurredAt.UTC().Format(timeFormat)
	switch d.Kind {
	case model.KindCancellation:
		body := CancellationRequest{ReferralID: r.ID, Reason: reason(ev.Reason), CancelledAt: at}
		return Request{
			Path:   strings.Replace(CancellationPath, orderReferenceVar, ref, 1),
			Body:   body,
			Fields: model.SentLabels(d.Fields, func(f string) bool { return f == "event.reason" && body.Reason != nil }),
		}, nil
	case model.KindCollection:
		if strings.TrimSpace(ev.From) == "" {
			return Request{}, fmt.Errorf("%w: the collection request names nobody who asked", ErrInvalidCopy)
		}
		body := CollectionRequest{ReferralID: r.ID, Reason: reason(ev.Reason), Note: ev.Description, RequestedBy: ev.From, RequestedAt: at}
		return Request{
			Path: strings.Replace(CollectionsPath, orderReferenceVar, ref, 1),
			Body: body,
			Fields: model.SentLabels(d.Fields, func(f string) bool {
				return (f == "event.reason" && body.Reason != nil) || (f == "event.description" && body.Note != "")
			}),
		}, nil
	default: // model.KindComplaint
		c := ev.Complaint
		if c == nil || strings.TrimSpace(c.Reference) == "" || strings.TrimSpace(c.Council) == "" {
			return Request{}, fmt.Errorf("%w: a complaint without its reference or council", ErrInvalidCopy)
		}
		out := ComplaintRequest{
			ComplaintReference: c.Reference, Council: c.Council, OrderReference: d.Refs.OrderReference, ReferralID: r.ID,
			Category: c.Category, Summary: c.Summary, RaisedAt: at,
		}
		// The catalogue copies the contact only when the council allows
		// it; checked again here because sending it otherwise would be a
		// disclosure the council refused.
		if c.ContactAllowed {
			out.Contact = contacts(c.Contact)
		}
		return Request{Path: ComplaintsPath, Body: out, Fields: model.SentLabels(d.Fields, func(f string) bool {
			switch f {
			case "complaint.category":
				return out.Category != ""
			case "complaint.summary":
				return out.Summary != ""
			case "complaint.contact":
				return len(out.Contact) > 0
			}
			return false
		})}, nil
	}
}

const timeFormat = "2006-01-02T15:04:05Z07:00"

func checkFields(labels, allowed []string) error {
	for _, label := range labels {
		if f, _ := model.ParseFieldLabel(label); !slices.Contains(allowed, f) {
			return fmt.Errorf("%w: %s", ErrFieldNotCarried, f)
		}
	}
	return nil
}

// orderPath checks an order reference and escapes it for a path segment.
func orderPath(ref string) (string, error) {
	if ref == "" {
		return "", ErrNoOrderReference
	}
	if !referencePattern.MatchString(ref) {
		return "", fmt.Errorf("%w: the order reference is not a short token", ErrInvalidCopy)
	}
	return url.PathEscape(ref), nil
}

func reason(c model.Coded) *Reason {
	if c.Code == "" && c.Display == "" {
		return nil
	}
	return &Reason{Code: c.Code, Text: c.Display}
}
