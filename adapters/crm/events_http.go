package crm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/iceshub/iceshub/adapters/internal/eventhttp"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/logging"
	mapping "github.com/iceshub/iceshub/mappings/crm"
)

// EventsPattern is the http.ServeMux pattern to mount an EventsHandler at:
// one handler serves every configured council, named by the {council}
// segment.
const EventsPattern = "POST /crm/{council}/events"

// EventAcceptor is the use case "accept an event about a referral"
// (*intake.Events implements it).
type EventAcceptor interface {
	AcceptEvent(ctx context.Context, sub intake.EventSubmission) (intake.Outcome, error)
}

// EventsConfig configures an EventsHandler.
type EventsConfig struct {
	// Councils are the partner ids of the councils whose events the
	// handler receives; the path names one of them.
	Councils []string
	// MaxBodyBytes is the largest body read (413 above it); 64 KiB when
	// zero.
	MaxBodyBytes int64
	// Clock is the hub's clock; time.Now when nil.
	Clock func() time.Time
}

// EventsHandler is the hub's webhook for the councils' CRM events (flows
// F6, F8), Firmstep / Jadu style {event, timestamp, data}: a complaint about
// the service raised against an order (complaint.created) and a request to
// collect equipment (collection.requested), as documented in openapi.yaml
// (x-webhooks). It checks and maps each event and hands it to the
// accept-an-event use case, answering 202 only once the event is stored.
// A council may only raise events about people in its own area (403).
//
// The council is the {council} path value when the handler is mounted at
// EventsPattern on an http.ServeMux; otherwise it is parsed from a path of
// the form /crm/{council}/events. An unknown council gets 404.
//
// Answers: as the provider's EventsHandler, with 403 for a referral of
// another council's area. It does not authenticate: wrap it in the
// council's authentication middleware, which must check that the caller is
// the council the path names. It is safe for concurrent use.
type EventsHandler struct {
	cfg EventsConfig
	acc EventAcceptor
	log *slog.Logger
	// unavailable summarises 503s while the store cannot take writes.
	unavailable logging.Repeats
}

// NewEventsHandler returns an EventsHandler. It returns an error for no
// councils, an empty or repeated council id, a negative body limit, or a
// nil acceptor or logger.
func NewEventsHandler(cfg EventsConfig, acc EventAcceptor, logger *slog.Logger) (*EventsHandler, error) {
	switch {
	case len(cfg.Councils) == 0:
		return nil, errors.New("crm events: no councils")
	case cfg.MaxBodyBytes < 0:
		return nil, errors.New("crm events: negative MaxBodyBytes")
	case acc == nil:
		return nil, errors.New("crm events: nil event acceptor")
	case logger == nil:
		return nil, errors.New("crm events: nil logger")
	}
	for i, c := range cfg.Councils {
		if strings.TrimSpace(c) == "" || strings.Contains(c, "/") {
			return nil, fmt.Errorf("crm events: council id %d is empty or holds a slash", i)
		}
		if slices.Contains(cfg.Councils[:i], c) {
			return nil, fmt.Errorf("crm events: council %q listed twice", c)
		}
	}
	cfg.Councils = slices.Clone(cfg.Councils)
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = eventhttp.DefaultMaxBodyBytes
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	return &EventsHandler{cfg: cfg, acc: acc, log: logger.With("component", "crm-events")}, nil
}

// ServeHTTP receives one event.
func (h *EventsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	council := r.PathValue("council")
	if council == "" {
		rest, ok := strings.CutPrefix(r.URL.Path, "/crm/")
		if ok {
			council, ok = strings.CutSuffix(rest, "/events")
		}
		if !ok || strings.Contains(council, "/") {
			council = ""
		}
	}
	if !slices.Contains(h.cfg.Councils, council) {
		eventhttp.WriteError(w, http.StatusNotFound, "unknown-council", "no council is known by the path's council id", nil)
		return
	}
	log := h.log.With("partner", council)
	body, ok := eventhttp.ReadBody(w, r, h.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	in, err := mapping.ParseEvent(body, council, h.cfg.Clock())
	if err != nil {
		log.Info("event refused", "status", http.StatusBadRequest, "error", err)
		eventhttp.WriteInvalid(w, err)
		return
	}
	if !eventhttp.MaySend(w, r, in.Event.Kind, log) {
		return
	}
	sub := intake.EventSubmission{
		Keys:     []string{"crm-event:" + council + ":" + in.EventID},
		Event:    in.Event,
		Response: eventhttp.Accepted(in.EventID),
		Sender:   intake.Sender{Partner: council, Kind: intake.SenderCouncil},
	}
	lookupField := "data.orderReference"
	if in.CaseReference != "" {
		sub.Find.CaseReference, sub.Find.Council, lookupField = in.CaseReference, council, "data.caseReference"
	} else {
		sub.Find.OrderReference = in.OrderReference
	}
	eventhttp.Accept(w, r, h.acc, sub, lookupField, log, &h.unavailable)
}
