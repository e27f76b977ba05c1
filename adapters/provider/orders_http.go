// Package provider is the hub's edge to the equipment provider's platform.
//
// Outbound, a Client sends new equipment orders, amendments, cancellations,
// collection requests and complaints to the provider order API the hub
// defines (openapi.yaml beside this file), with retries and a circuit
// breaker from internal/delivery. The provider is swappable by
// configuration: any provider implementing openapi.yaml works.
//
// Inbound, an EventsHandler receives the provider's events (order status,
// equipment issues, safeguarding concerns, replies to complaints) at the
// hub's POST /provider/events.
//
// Simulator implements the same contract in memory for the demo and tests.
package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
	mapping "github.com/iceshub/iceshub/mappings/provider"
)

// OrdersPath is the path, under the partner's base URL, of the order
// endpoint. The other endpoints are under it (mapping.CancellationPath and
// the like) and at mapping.ComplaintsPath.
const OrdersPath = mapping.OrdersPath

// Config configures a Client.
type Config struct {
	// ID is the partner id the hub's configuration gives the provider; the
	// Client sends only copies addressed to it.
	ID string
	// Delivery configures retries, the breaker and the endpoint. Its Partner
	// defaults to ID.
	Delivery delivery.Config
}

// Client sends orders to one provider. It is safe for concurrent use.
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
	hc, err := delivery.ForPartner("provider", cfg.ID, cfg.Delivery, logger)
	if err != nil {
		return nil, err
	}
	return &Client{id: cfg.ID, http: hc, log: logger.With("partner", cfg.ID)}, nil
}

// ID returns the partner id.
func (c *Client) ID() string { return c.id }

// Send delivers the copy in d to the provider, by its kind: a new order
// (POST /orders, returning the provider's order reference), an amendment, a
// cancellation or a collection of the order d.Refs.OrderReference names
// (POST /orders/{orderReference}/amendments|cancellation|collections), or a
// complaint to investigate (POST /complaints); for those the receipt holds
// the provider's reference of what it recorded, never an order reference.
// Every request carries Idempotency-Key d.IdempotencyKey on every attempt,
// so a resent copy is recognised, never acted on twice, and the NHS sender's
// X-Correlation-ID.
//
// Errors are *delivery.Error. Permanent: d is addressed to another partner,
// of a kind the provider contract cannot carry, or cannot be mapped (no
// order reference: the order never reached the provider), or the provider
// refused it (4xx). Transient: the provider could not be reached, failed
// (5xx, 429), its breaker is open, ctx ended, or it accepted a new order
// (2xx) but its answer could not be read (wrapping
// delivery.ErrUnreadableAnswer): resending with the same key fetches the
// answer again and creates nothing new.
//
// The receipt's Fields are the disclosure record of the payload: the fields
// the mapping encoded into it (its own report of them), returned with an
// error too once the request was made, nil when nothing could be encoded.
func (c *Client) Send(ctx context.Context, d model.Delivery) (model.Receipt, error) {
	if d.Recipient != c.id {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true,
			Err: fmt.Errorf("copy addressed to %q, not to this provider", d.Recipient)}
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
	if d.Kind != model.KindReferral {
		ack := mapping.DecodeAcknowledgement(resp.Body)
		c.log.Debug("provider acknowledged", "kind", d.Kind, "referral_id", d.Referral.ID, "idempotency_key", d.IdempotencyKey,
			"order_reference", d.Refs.OrderReference, "status", resp.StatusCode, "repeat", resp.StatusCode == http.StatusOK)
		return model.Receipt{PartnerReference: ack.Reference, StatusCode: resp.StatusCode, Fields: req.Fields}, nil
	}
	accepted, err := mapping.DecodeOrderAccepted(resp.Body)
	if err != nil {
		c.log.Warn("order accepted but the answer could not be read; will resend with the same idempotency key",
			"referral_id", d.Referral.ID, "idempotency_key", d.IdempotencyKey, "status", resp.StatusCode)
		return model.Receipt{StatusCode: resp.StatusCode, Fields: req.Fields}, &delivery.Error{
			Partner: c.id, StatusCode: resp.StatusCode, Body: delivery.Snippet(resp.Body),
			Err: fmt.Errorf("%w: %w", delivery.ErrUnreadableAnswer, err),
		}
	}
	c.log.Debug("order accepted", "referral_id", d.Referral.ID, "idempotency_key", d.IdempotencyKey,
		"order_reference", accepted.OrderReference, "status", resp.StatusCode, "repeat", resp.StatusCode == http.StatusOK)
	return model.Receipt{PartnerReference: accepted.OrderReference, StatusCode: resp.StatusCode, Fields: req.Fields}, nil
}

// BreakerState returns the state of the provider's circuit breaker:
// "closed", "half-open" or "open".
func (c *Client) BreakerState() string { return c.http.BreakerState() }
