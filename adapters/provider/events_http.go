package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/iceshub/iceshub/adapters/internal/eventhttp"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/logging"
	mapping "github.com/iceshub/iceshub/mappings/provider"
)

// EventsPath is the path of the hub's webhook for the provider's events:
// mount an EventsHandler there ("POST /provider/events").
const EventsPath = "/provider/events"

// EventAcceptor is the use case "accept an event about a referral"
// (*intake.Events implements it).
type EventAcceptor interface {
	AcceptEvent(ctx context.Context, sub intake.EventSubmission) (intake.Outcome, error)
}

// EventsConfig configures an EventsHandler.
type EventsConfig struct {
	// PartnerID is the provider's partner id: the reporter of every event
	// the handler receives, and the partner the order must have been sent
	// to.
	PartnerID string
	// MaxBodyBytes is the largest body read (413 above it); 64 KiB when
	// zero.
	MaxBodyBytes int64
	// Clock is the hub's clock, for an event's receivedAt and to refuse
	// one from the future; time.Now when nil.
	Clock func() time.Time
}

// EventsHandler is the hub's webhook for the provider's events (flows F3,
// F4, F5, F7): order status changes, equipment issues, safeguarding
// concerns and replies to complaints, as documented in openapi.yaml
// (x-webhooks). It checks and maps each event and hands it to the
// accept-an-event use case, answering 202 only once the event is stored.
//
// Answers: 202 accepted (a resent eventId gets the first answer again); 400
// a body that is not JSON of the contract's shape or breaks it (each
// problem names the member); 405 not POST; 413 too large; 415 not
// application/json; 404 no referral has the order (or complaint)
// reference; 403 the order was not sent to this provider; 409 an
// impossible status change (collected before delivered) or a referral that
// changed meanwhile; 503 with Retry-After when the hub could not store it.
// Refused events are recorded by the use case, never applied.
//
// It does not authenticate: wrap it in the provider's authentication
// middleware. It is safe for concurrent use.
type EventsHandler struct {
	cfg EventsConfig
	acc EventAcceptor
	log *slog.Logger
	// unavailable summarises 503s while the store cannot take writes.
	unavailable logging.Repeats
}

// NewEventsHandler returns an EventsHandler. It returns an error for an
// empty partner id, a negative body limit, or a nil acceptor or logger.
func NewEventsHandler(cfg EventsConfig, acc EventAcceptor, logger *slog.Logger) (*EventsHandler, error) {
	switch {
	case strings.TrimSpace(cfg.PartnerID) == "":
		return nil, errors.New("provider events: empty partner id")
	case cfg.MaxBodyBytes < 0:
		return nil, errors.New("provider events: negative MaxBodyBytes")
	case acc == nil:
		return nil, errors.New("provider events: nil event acceptor")
	case logger == nil:
		return nil, errors.New("provider events: nil logger")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = eventhttp.DefaultMaxBodyBytes
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &EventsHandler{cfg: cfg, acc: acc, log: logger.With("component", "provider-events", "partner", cfg.PartnerID)}, nil
}

// ServeHTTP receives one event.
func (h *EventsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, ok := eventhttp.ReadBody(w, r, h.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	in, err := mapping.ParseEvent(body, h.cfg.PartnerID, h.cfg.Clock())
	if err != nil {
		h.log.Info("event refused", "status", http.StatusBadRequest, "error", err)
		eventhttp.WriteInvalid(w, err)
		return
	}
	if !eventhttp.MaySend(w, r, in.Event.Kind, h.log) {
		return
	}
	sub := intake.EventSubmission{
		Keys:     []string{"provider-event:" + h.cfg.PartnerID + ":" + in.Event.FromEventID},
		Event:    in.Event,
		Response: eventhttp.Accepted(in.Event.FromEventID),
		Sender:   intake.Sender{Partner: h.cfg.PartnerID, Kind: intake.SenderProvider},
	}
	lookupField := "orderReference"
	if in.ComplaintReference != "" {
		// The complaint reference is the council's; the store resolves it
		// by reference alone when Council is empty.
		sub.Find.ComplaintReference, lookupField = in.ComplaintReference, "complaintReference"
	} else {
		sub.Find.OrderReference = in.OrderReference
	}
	eventhttp.Accept(w, r, h.acc, sub, lookupField, h.log, &h.unavailable)
}
