// Package intake is the use case "accept a referral": it stores an inbound
// message durably, exactly once per idempotency key, before the sender is
// told it was accepted.
package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/model"
)

// TopicReferralReceived is the durable topic every accepted referral is
// published to, in the same transaction that records its idempotency keys.
const TopicReferralReceived = "referral.received"

// Metadata keys carried on every hub message.
const (
	MetaKind          = "kind"
	MetaCorrelationID = "correlation_id"
	MetaReferralID    = "referral_id"
)

// Response is the answer given to the sender, stored so that a repeated
// request gets the very same answer.
type Response struct {
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Body        []byte `json:"body"`
}

// Submission is one referral an inbound adapter has parsed and validated.
type Submission struct {
	// Keys de-duplicate repeated requests: the X-Request-ID and the sender's
	// message id, prefixed by what they are ("request:", "message:"). Any one
	// key seen before makes the submission a duplicate.
	Keys     []string
	Referral model.Referral
	// Response is what the sender is told on success.
	Response Response
}

// Outcome is the result of Accept.
type Outcome struct {
	// Response is the first answer given for these keys: the submission's own
	// on first acceptance, the stored one for a duplicate.
	Response Response
	// Duplicate is true when nothing new was created.
	Duplicate bool
}

// Store commits, in one transaction, the idempotency keys, the stored
// response, a message on a topic and, when rec is not nil, the record the
// hub keeps of a new referral for the events that follow it; or, when any key
// exists already, does nothing and returns the stored response.
type Store interface {
	AcceptOnce(ctx context.Context, keys []string, resp Response, topic string, msg *message.Message, rec *Record) (stored Response, duplicate bool, err error)
}

// Service accepts referrals. It is safe for concurrent use.
type Service struct {
	store Store
}

// New returns a Service that stores through s.
func New(s Store) (*Service, error) {
	if s == nil {
		return nil, errors.New("intake: nil store")
	}
	return &Service{store: s}, nil
}

// NewID returns a new id for a referral or an event: a UUID (version 7)
// that starts with the time it was made, so that the store's indexes on
// these ids grow at one end instead of taking every insert somewhere at
// random (each such insert costs a page written to the log at commit).
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// Only when the system's random source fails; a random UUID is as
		// good an id, merely slower to index.
		return uuid.NewString()
	}
	return id.String()
}

// ErrNoKeys is returned for a submission without idempotency keys or id.
var ErrNoKeys = errors.New("intake: submission needs a referral id and at least one idempotency key")

// AcceptReferral stores sub durably and publishes it to
// TopicReferralReceived. It returns only after the commit, so a success
// answer given to the sender after it can never be lost.
func (s *Service) AcceptReferral(ctx context.Context, sub Submission) (Outcome, error) {
	if len(sub.Keys) == 0 || sub.Referral.ID == "" {
		return Outcome{}, ErrNoKeys
	}
	payload, err := json.Marshal(sub.Referral)
	if err != nil {
		return Outcome{}, fmt.Errorf("intake: encode referral: %w", err)
	}
	msg := message.NewMessage(sub.Referral.ID, payload)
	msg.Metadata.Set(MetaKind, string(model.KindReferral))
	msg.Metadata.Set(MetaReferralID, sub.Referral.ID)
	if c := sub.Referral.Source.CorrelationID; c != "" {
		msg.Metadata.Set(MetaCorrelationID, c)
	}
	stored, dup, err := s.store.AcceptOnce(ctx, sub.Keys, sub.Response, TopicReferralReceived, msg, &Record{Referral: sub.Referral, Status: model.StatusOrdered})
	if err != nil {
		return Outcome{}, fmt.Errorf("intake: accept referral: %w", err)
	}
	return Outcome{Response: stored, Duplicate: dup}, nil
}
