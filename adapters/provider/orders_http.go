// Package provider is the hub's edge to the equipment provider's platform.
//
// Outbound, a Client sends new equipment orders to the provider order API
// the hub defines (openapi.yaml beside this file): POST {base}/orders, with
// retries and a circuit breaker from internal/delivery. The provider is
// swappable by configuration: any provider implementing openapi.yaml works.
//
// Simulator implements the same contract in memory for the demo and tests.
package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
	mapping "github.com/iceshub/iceshub/mappings/provider"
)

// OrdersPath is the path, under the partner's base URL, of the order
// endpoint.
const OrdersPath = "/orders"

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
	if logger == nil {
		return nil, errors.New("provider: nil logger")
	}
	if strings.TrimSpace(cfg.ID) == "" {
		return nil, errors.New("provider: empty partner id")
	}
	if cfg.Delivery.Partner == "" {
		cfg.Delivery.Partner = cfg.ID
	}
	if cfg.Delivery.Partner != cfg.ID {
		return nil, fmt.Errorf("provider: delivery partner %q differs from id %q", cfg.Delivery.Partner, cfg.ID)
	}
	hc, err := delivery.New(cfg.Delivery, logger)
	if err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	return &Client{id: cfg.ID, http: hc, log: logger.With("partner", cfg.ID)}, nil
}

// ID returns the partner id.
func (c *Client) ID() string { return c.id }

// Send places the order in d with the provider and returns the provider's
// order reference. The request carries Idempotency-Key d.IdempotencyKey on
// every attempt, so a resent order is recognised, never placed twice.
//
// Errors are *delivery.Error. Permanent: d is addressed to another partner,
// of a kind the order contract cannot carry, or cannot be mapped, or the
// provider refused the order (4xx). Transient: the provider could not be
// reached, failed (5xx, 429), its breaker is open, ctx ended, or it accepted
// the order (2xx) but its answer could not be read (wrapping
// delivery.ErrUnreadableAnswer): resending with the same key fetches the
// answer again and creates nothing new.
func (c *Client) Send(ctx context.Context, d model.Delivery) (model.Receipt, error) {
	if d.Recipient != c.id {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true,
			Err: fmt.Errorf("copy addressed to %q, not to this provider", d.Recipient)}
	}
	order, err := mapping.Order(d)
	if err != nil {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true, Err: err}
	}
	body, err := json.Marshal(order)
	if err != nil {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true, Err: fmt.Errorf("encode order: %w", err)}
	}
	resp, err := c.http.Do(ctx, delivery.Request{
		Method:         http.MethodPost,
		Path:           OrdersPath,
		Body:           body,
		IdempotencyKey: d.IdempotencyKey,
		CorrelationID:  d.Referral.Source.CorrelationID,
		ContentType:    "application/json",
	})
	if err != nil {
		return model.Receipt{StatusCode: resp.StatusCode}, err
	}
	accepted, err := mapping.DecodeOrderAccepted(resp.Body)
	if err != nil {
		c.log.Warn("order accepted but the answer could not be read; will resend with the same idempotency key",
			"referral_id", d.Referral.ID, "idempotency_key", d.IdempotencyKey, "status", resp.StatusCode)
		return model.Receipt{StatusCode: resp.StatusCode}, &delivery.Error{
			Partner: c.id, StatusCode: resp.StatusCode, Body: delivery.Snippet(resp.Body),
			Err: fmt.Errorf("%w: %w", delivery.ErrUnreadableAnswer, err),
		}
	}
	c.log.Debug("order accepted", "referral_id", d.Referral.ID, "idempotency_key", d.IdempotencyKey,
		"order_reference", accepted.OrderReference, "status", resp.StatusCode, "repeat", resp.StatusCode == http.StatusOK)
	return model.Receipt{PartnerReference: accepted.OrderReference, StatusCode: resp.StatusCode}, nil
}

// BreakerState returns the state of the provider's circuit breaker:
// "closed", "half-open" or "open".
func (c *Client) BreakerState() string { return c.http.BreakerState() }
