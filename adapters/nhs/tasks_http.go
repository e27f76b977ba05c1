// Package nhs is the hub's edge to the FHIR endpoints of the requesting NHS
// organisations (flows F3, F4 and F5 back to the NHS).
//
// Outbound, a Client keeps each referral's FHIR Task current at the
// requester's endpoint, PUT {base}/Task/{id} (update as create, so that a
// resent update is harmless), and sends a safeguarding concern as a
// Communication, POST {base}/Communication, made idempotent by
// If-None-Exist, Idempotency-Key and X-Request-ID. Retries and the circuit
// breaker come from internal/delivery; the resources from mappings/fhir
// (TaskFor, CommunicationFor). openapi.yaml beside this file is the contract.
//
// Simulator implements the same contract in memory for the demo and tests.
package nhs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/delivery"
	"github.com/iceshub/iceshub/internal/model"
	fhirmap "github.com/iceshub/iceshub/mappings/fhir"
)

// Paths, under the endpoint's base URL, and the media type of what the hub
// sends.
const (
	TaskPath            = "/Task"
	CommunicationPath   = "/Communication"
	ContentTypeFHIRJSON = "application/fhir+json"
)

// RequestIDNamespace is the UUID namespace of the X-Request-ID the Client
// sends: the version 5 UUID of https://example.org/ices/Id/request in the
// URL namespace. The header is the version 5 UUID of the delivery's
// idempotency key in it, the same on every retry and redelivery.
var RequestIDNamespace = uuid.MustParse("5ad6fd18-a51b-5ccb-b105-9f419afd3e8d")

// Config configures a Client.
type Config struct {
	// ID is the partner id the hub's configuration gives this NHS
	// endpoint; the Client sends only copies addressed to it.
	ID string
	// Provider is the partner id of the provider that fulfils the orders,
	// written as Task.owner and as the sender of a Communication whose
	// event names no reporter. Empty leaves them out.
	Provider string
	// Delivery configures retries, the breaker and the endpoint: BaseURL is
	// the FHIR base ("https://fhir.trust.example/R4"). Its Partner defaults
	// to ID.
	Delivery delivery.Config
}

// Client sends Task updates and Communications to one NHS FHIR endpoint.
// It is safe for concurrent use.
type Client struct {
	id   string
	opts fhirmap.EmitOptions
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
	hc, err := delivery.ForPartner("nhs", cfg.ID, cfg.Delivery, logger)
	if err != nil {
		return nil, err
	}
	return &Client{id: cfg.ID, opts: fhirmap.EmitOptions{Provider: cfg.Provider}, http: hc, log: logger.With("partner", cfg.ID)}, nil
}

// ID returns the partner id.
func (c *Client) ID() string { return c.id }

// Send delivers d to the endpoint: a kind that fhirmap.UpdatesTask names as
// the referral's Task, replaced whole; a safeguarding concern or an
// equipment issue (the other fhirmap.EmittedKinds) as a new Communication
// about the Task, which leaves the Task as it stands. Every
// attempt carries the same Idempotency-Key (d.IdempotencyKey) and
// X-Request-ID, so a resent message changes nothing.
//
// The receipt's PartnerReference is the resource's id at the endpoint: the
// Task's id, or the id the server gave the Communication (from its Location
// header or its answer; empty when it gave neither).
//
// Errors are *delivery.Error. Permanent: d is addressed to another
// endpoint, has no idempotency key, is of a kind the NHS contract does not
// carry or cannot be mapped (wrapping the mappings/fhir error), or the
// server refused it (4xx; the start of its OperationOutcome is in the
// error's Body). Transient: the server could not be reached, failed (5xx,
// 429), its breaker is open, or ctx ended.
//
// The receipt's Fields are the disclosure record of the payload: the fields
// the mapping encoded into it (its own report of them), returned with an
// error too once the request was made, nil when nothing could be encoded.
func (c *Client) Send(ctx context.Context, d model.Delivery) (model.Receipt, error) {
	if d.Recipient != c.id {
		return model.Receipt{}, c.refuse(fmt.Errorf("copy addressed to %q, not to this endpoint", d.Recipient))
	}
	if strings.TrimSpace(d.IdempotencyKey) == "" {
		return model.Receipt{}, c.refuse(fmt.Errorf("%w: no idempotency key", fhirmap.ErrInvalidCopy))
	}
	req := delivery.Request{
		IdempotencyKey: d.IdempotencyKey,
		CorrelationID:  d.Referral.Source.CorrelationID,
		ContentType:    ContentTypeFHIRJSON,
		Header: http.Header{
			"Accept":       {ContentTypeFHIRJSON},
			"X-Request-Id": {RequestID(d.IdempotencyKey)},
		},
	}
	var (
		resource, id string
		fields       []string // what the resource holds: the disclosure record
	)
	if !fhirmap.UpdatesTask(d.Kind) {
		comm, err := fhirmap.CommunicationFor(d, c.opts)
		if err != nil {
			return model.Receipt{}, c.refuse(err)
		}
		if req.Body, err = json.Marshal(comm); err != nil {
			return model.Receipt{}, c.refuse(fmt.Errorf("encode Communication: %w", err))
		}
		resource, fields = "Communication", fhirmap.CommunicationFields(d, comm)
		req.Method, req.Path = http.MethodPost, CommunicationPath
		req.Header.Set("If-None-Exist", fhirmap.IfNoneExist(comm))
	} else {
		task, err := fhirmap.TaskFor(d, c.opts)
		if err != nil {
			return model.Receipt{}, c.refuse(err)
		}
		if req.Body, err = json.Marshal(task); err != nil {
			return model.Receipt{}, c.refuse(fmt.Errorf("encode Task: %w", err))
		}
		resource, id, fields = "Task", task.ID, fhirmap.TaskFields(d, task)
		req.Method, req.Path = http.MethodPut, TaskPath+"/"+task.ID
	}

	resp, err := c.http.Do(ctx, req)
	if err != nil {
		compactOutcome(err, resp.Body)
		return model.Receipt{StatusCode: resp.StatusCode, Fields: fields}, err
	}
	if answered := answeredID(resource, resp); answered != "" {
		id = answered
	}
	c.log.Debug("fhir endpoint accepted", "kind", string(d.Kind), "referral_id", d.Referral.ID,
		"idempotency_key", d.IdempotencyKey, "request_id", req.Header.Get("X-Request-Id"), "path", req.Path,
		"status", resp.StatusCode, "repeat", resp.StatusCode == http.StatusOK)
	return model.Receipt{PartnerReference: id, StatusCode: resp.StatusCode, Fields: fields}, nil
}

// BreakerState returns the state of the endpoint's circuit breaker:
// "closed", "half-open" or "open".
func (c *Client) BreakerState() string { return c.http.BreakerState() }

// RequestID returns the X-Request-ID sent with the delivery whose
// idempotency key is key.
func RequestID(key string) string {
	return uuid.NewSHA1(RequestIDNamespace, []byte(key)).String()
}

func (c *Client) refuse(err error) error {
	return &delivery.Error{Partner: c.id, Permanent: true, Err: err}
}

// answeredID is the id of the resource the server answered with: from the
// Location header ([base]/Type/id/_history/vid), else from the body.
func answeredID(resource string, resp delivery.Response) string {
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil {
			parts := strings.Split(strings.Trim(u.Path, "/"), "/")
			for i := len(parts) - 2; i >= 0; i-- {
				if parts[i] == resource && parts[i+1] != "" && parts[i+1] != "_history" {
					return parts[i+1]
				}
			}
		}
	}
	var body struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	}
	if json.Unmarshal(resp.Body, &body) == nil && body.ResourceType == resource {
		return body.ID
	}
	return ""
}

// compactOutcome keeps, in a refused delivery's error Body, the useful part
// of a FHIR server's OperationOutcome (severity, code, diagnostics,
// expression of each issue), written compactly: an indented outcome with
// text narrative would otherwise fill the snippet before its first issue.
func compactOutcome(err error, body []byte) {
	var de *delivery.Error
	if !errors.As(err, &de) || len(body) == 0 {
		return
	}
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity    string   `json:"severity,omitempty"`
			Code        string   `json:"code,omitempty"`
			Diagnostics string   `json:"diagnostics,omitempty"`
			Expression  []string `json:"expression,omitempty"`
			Location    []string `json:"location,omitempty"`
		} `json:"issue"`
	}
	if json.Unmarshal(body, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return
	}
	if b, err := json.Marshal(oo); err == nil {
		de.Body = delivery.Snippet(b)
	}
}
