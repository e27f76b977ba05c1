// Package crm is the hub's edge to the councils' case systems (Firmstep-style
// CRMs).
//
// Outbound, a Client creates cases (equipment orders, urgent safeguarding
// concerns) and adds notes to them (order status, equipment issues,
// collections, cancellations, replies to complaints) through the council
// case API the hub defines (openapi.yaml beside this file), with retries
// and a circuit breaker from internal/delivery. Each council is a separate
// Client with its own configuration, token and breaker, so one council's
// outage never holds up another's.
//
// Inbound, an EventsHandler receives the councils' events (complaints,
// collection requests) at the hub's POST /crm/{council}/events.
//
// Simulator implements the same contract in memory for the demo and tests.
package crm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
	mapping "github.com/iceshub/iceshub/mappings/crm"
)

// CasesPath is the path, under the council's base URL, of the case
// endpoint; notes are under it (mapping.NotesPath).
const CasesPath = mapping.CasesPath

// Config configures a Client for one council.
type Config struct {
	// ID is the council's partner id ("council-cwac"); the Client sends only
	// copies addressed to it.
	ID string
	// Delivery configures retries, the breaker and the endpoint. Its Partner
	// defaults to ID.
	Delivery delivery.Config
}

// Client creates cases in one council's case system. It is safe for
// concurrent use.
type Client struct {
	id   string
	http *delivery.Client
	log  *slog.Logger
}

// Client satisfies the routes' Sender interface, restated here because
// adapters do not import routes.
var _ interface {
	Send(ctx context.Context, d model.Delivery) (model.Receipt, error)
} = (*Client)(nil)

// New returns a Client for cfg. It returns an error for an empty ID, a
// Delivery.Partner that differs from ID, an invalid delivery configuration
// (see delivery.New) or a nil logger.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	hc, err := delivery.ForPartner("crm", cfg.ID, cfg.Delivery, logger)
	if err != nil {
		return nil, err
	}
	return &Client{id: cfg.ID, http: hc, log: logger.With("partner", cfg.ID)}, nil
}

// ID returns the council's partner id.
func (c *Client) ID() string { return c.id }

// Send delivers the copy in d to the council, by its kind: the case for a
// new equipment order (POST /cases), an urgent safeguarding case of its own
// type (POST /cases), or a note (POST /cases/{caseReference}/notes) on the
// council's order case (order status, equipment issue, collection,
// cancellation) or on its complaint case (the provider's reply). For a new
// case the receipt holds the new case's reference: the order case's for a
// referral, the safeguarding case's (never the order case's) for a concern;
// for a note, the council's note id. Every request carries Idempotency-Key
// d.IdempotencyKey on every attempt, so a resent copy is recognised, never
// recorded twice, and the NHS sender's X-Correlation-ID.
//
// Errors are *delivery.Error. Permanent: d is addressed to another partner,
// of a kind the case contract cannot carry, or cannot be mapped (a clinical
// field, say, or no case reference for a note: the order case was never
// created), or the council refused it (4xx). Transient: the council could
// not be reached, failed (5xx, 429), its breaker is open, ctx ended, or it
// created a case (2xx) but its answer could not be read (wrapping
// delivery.ErrUnreadableAnswer): resending with the same key fetches the
// answer again and creates nothing new.
//
// The receipt's Fields are the disclosure record of the payload: the fields
// the mapping encoded into it (its own report of them), returned with an
// error too once the request was made, nil when nothing could be encoded.
func (c *Client) Send(ctx context.Context, d model.Delivery) (model.Receipt, error) {
	if d.Recipient != c.id {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true,
			Err: fmt.Errorf("copy addressed to %q, not to this council", d.Recipient)}
	}
	req, err := mapping.Outbound(d)
	if err != nil {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true, Err: err}
	}
	body, err := json.Marshal(req.Body)
	if err != nil {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true, Err: fmt.Errorf("encode %s: %w", d.Kind, err)}
	}
	resp, err := c.http.Do(ctx, delivery.Request{
		Method:         http.MethodPost,
		Path:           req.Path,
		Body:           body,
		IdempotencyKey: d.IdempotencyKey,
		CorrelationID:  d.Referral.Source.CorrelationID,
		ContentType:    "application/json",
	})
	if err != nil {
		return model.Receipt{StatusCode: resp.StatusCode, Fields: req.Fields}, err
	}
	if !req.CreatesCase {
		n := mapping.DecodeNoteAdded(resp.Body)
		c.log.Debug("note added", "kind", d.Kind, "referral_id", d.Referral.ID, "idempotency_key", d.IdempotencyKey,
			"status", resp.StatusCode, "repeat", resp.StatusCode == http.StatusOK)
		return model.Receipt{PartnerReference: n.NoteID, StatusCode: resp.StatusCode, Fields: req.Fields}, nil
	}
	created, err := mapping.DecodeCaseCreated(resp.Body)
	if err != nil {
		c.log.Warn("case accepted but the answer could not be read; will resend with the same idempotency key",
			"referral_id", d.Referral.ID, "idempotency_key", d.IdempotencyKey, "status", resp.StatusCode)
		return model.Receipt{StatusCode: resp.StatusCode, Fields: req.Fields}, &delivery.Error{
			Partner: c.id, StatusCode: resp.StatusCode, Body: delivery.Snippet(resp.Body),
			Err: fmt.Errorf("%w: %w", delivery.ErrUnreadableAnswer, err),
		}
	}
	c.log.Debug("case created", "kind", d.Kind, "referral_id", d.Referral.ID, "idempotency_key", d.IdempotencyKey,
		"case_reference", created.CaseReference, "status", resp.StatusCode, "repeat", resp.StatusCode == http.StatusOK)
	return model.Receipt{PartnerReference: created.CaseReference, StatusCode: resp.StatusCode, Fields: req.Fields}, nil
}

// BreakerState returns the state of the council's circuit breaker:
// "closed", "half-open" or "open".
func (c *Client) BreakerState() string { return c.http.BreakerState() }
