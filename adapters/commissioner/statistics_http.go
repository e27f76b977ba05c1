// Package commissioner is the hub's edge to a commissioner of the service
// (a council, an ICB): once a month it receives the month's anonymised
// statistics (issue 19, flow F9), and nothing else.
//
// Outbound, a Client posts the published table, as CSV, to the
// commissioner's POST {base_url}/statistics (openapi.yaml beside this
// file), with retries and a circuit breaker from internal/delivery and the
// copy's Idempotency-Key on every attempt. A commissioner never calls the
// hub.
//
// Simulator implements the same contract in memory for tests.
package commissioner

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
)

// StatisticsPath is the path, under the commissioner's base URL, of the
// statistics endpoint.
const StatisticsPath = "/statistics"

// MonthHeader names the month (YYYY-MM) whose statistics a request holds.
const MonthHeader = "X-Statistics-Month"

// Accepted is the commissioner's answer to a publication it took (201, or
// 200 to a repeated Idempotency-Key).
type Accepted struct {
	// Reference is the commissioner's reference of what it received.
	Reference string `json:"reference"`
	// Month is the month received, YYYY-MM.
	Month string `json:"month"`
}

var monthPattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)

// Config configures a Client.
type Config struct {
	// ID is the commissioner's partner id; the Client sends only copies
	// addressed to it.
	ID string
	// Delivery configures retries, the breaker and the endpoint. Its
	// Partner defaults to ID.
	Delivery delivery.Config
}

// Client sends the statistics to one commissioner. It is safe for
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
// Delivery.Partner that differs from ID, an invalid delivery
// configuration (see delivery.New) or a nil logger.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	hc, err := delivery.ForPartner("commissioner", cfg.ID, cfg.Delivery, logger)
	if err != nil {
		return nil, err
	}
	return &Client{id: cfg.ID, http: hc, log: logger.With("partner", cfg.ID)}, nil
}

// ID returns the partner id.
func (c *Client) ID() string { return c.id }

// Send posts the statistics in d (model.KindStatistics) to the
// commissioner: the published table as its body (text/csv), the month in
// X-Statistics-Month, d.IdempotencyKey as Idempotency-Key on every
// attempt, so that a copy sent again is recognised and never recorded
// twice.
//
// Errors are *delivery.Error. Permanent: d is addressed to another
// partner, is not statistics, or the commissioner refused it (4xx).
// Transient: the commissioner could not be reached, failed (5xx, 429), its
// breaker is open or ctx ended.
//
// The receipt's Fields are model.StatisticsLabel once the request was
// made: the disclosure record of a table that names no one.
func (c *Client) Send(ctx context.Context, d model.Delivery) (model.Receipt, error) {
	if d.Recipient != c.id {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true,
			Err: fmt.Errorf("copy addressed to %q, not to this commissioner", d.Recipient)}
	}
	s := d.Statistics
	if d.Kind != model.KindStatistics || s == nil {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true,
			Err: fmt.Errorf("a commissioner receives only statistics, not %q", d.Kind)}
	}
	if !monthPattern.MatchString(s.Month) || s.Body == "" {
		return model.Receipt{}, &delivery.Error{Partner: c.id, Permanent: true,
			Err: fmt.Errorf("the statistics copy has no month or no table")}
	}
	contentType := s.ContentType
	if contentType == "" {
		contentType = "text/csv; charset=utf-8"
	}
	fields := []string{model.StatisticsLabel}
	resp, err := c.http.Do(ctx, delivery.Request{
		Method:         http.MethodPost,
		Path:           StatisticsPath,
		Body:           []byte(s.Body),
		IdempotencyKey: d.IdempotencyKey,
		ContentType:    contentType,
		Header:         http.Header{MonthHeader: []string{s.Month}},
	})
	if err != nil {
		return model.Receipt{StatusCode: resp.StatusCode, Fields: fields}, err
	}
	var ack Accepted
	_ = json.Unmarshal(resp.Body, &ack) // the reference is a courtesy: the copy was taken
	c.log.Debug("statistics accepted", "idempotency_key", d.IdempotencyKey, "status", resp.StatusCode, "repeat", resp.StatusCode == http.StatusOK)
	return model.Receipt{PartnerReference: ack.Reference, StatusCode: resp.StatusCode, Fields: fields}, nil
}

// BreakerState returns the state of the commissioner's circuit breaker:
// "closed", "half-open" or "open".
func (c *Client) BreakerState() string { return c.http.BreakerState() }
