// Package store keeps everything the hub must not lose: durable message
// topics, idempotency records, delivery receipts, the disclosure record,
// messages held for review and dead letters.
//
// What must change together is written by one Commit, in one transaction, so
// that a crash leaves either all of it or none.
//
// This package holds what every engine and its users share: the types a
// store reads and writes, its errors and constants. The engines live in
// packages of their own and import this one, never the reverse: the embedded
// engine is SQLite (internal/store/sqlite); a clustered engine would provide
// the same methods on the same types.
package store

import (
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/stats"
)

// TopicMessage is a message to publish on a topic as part of a Batch.
type TopicMessage struct {
	Topic   string
	Message *message.Message
}

// Disclosure outcomes.
const (
	OutcomeSent     = "sent"
	OutcomeWithheld = "withheld"
	OutcomeFailed   = "failed"
)

// Disclosure records one decision to share, or not share, a copy of a
// message with a recipient: which fields (names, never values), why, on what
// basis, and what happened.
type Disclosure struct {
	// ID is the entry's place in the record, set when it is read back;
	// Commit assigns it.
	ID            int64     `json:"id,omitempty"`
	At            time.Time `json:"at"`
	ReferralID    string    `json:"referralId"`
	CorrelationID string    `json:"correlationId,omitempty"`
	Recipient     string    `json:"recipient"`
	Kind          string    `json:"kind"`
	Fields        []string  `json:"fields"`
	Purpose       string    `json:"purpose"`
	LawfulBasis   string    `json:"lawfulBasis"`
	Outcome       string    `json:"outcome"`
	// Detail explains a withheld or failed outcome; it never holds personal
	// data.
	Detail string `json:"detail,omitempty"`
	// Subject is the person the message is about, as a keyed hash of the
	// NHS number (internal/subject), never the number itself. Empty for
	// entries recorded before subjects were.
	Subject string `json:"subject,omitempty"`
}

// Hold is a message no route could place, kept for a person to review.
type Hold struct {
	// ID is the hold's number, set when it is read back; Commit assigns it.
	ID         int64     `json:"id,omitempty"`
	At         time.Time `json:"at"`
	ReferralID string    `json:"referralId"`
	Kind       string    `json:"kind"`
	// Route is the route that could not be resolved (for example "council").
	Route  string `json:"route"`
	Reason string `json:"reason"`
	// Payload is the message as received, so that it can be released later.
	Payload []byte `json:"-"`
	// Resolution is what a person decided about it (held.go), nil while it
	// waits. Set when it is read back; Commit ignores it.
	Resolution *HoldResolution `json:"resolution,omitempty"`
}

// DeadLetter is a delivery that will never succeed as it stands: the partner
// refused it permanently.
type DeadLetter struct {
	// ID is the dead letter's number, set when it is read back; Commit
	// assigns it. Operators name dead letters by it (dlq show, replay,
	// discard).
	ID             int64     `json:"id,omitempty"`
	At             time.Time `json:"at"`
	Recipient      string    `json:"recipient"`
	Kind           string    `json:"kind"`
	ReferralID     string    `json:"referralId"`
	IdempotencyKey string    `json:"idempotencyKey"`
	StatusCode     int       `json:"statusCode"`
	// PartnerAnswer is the start of what the partner said.
	PartnerAnswer string `json:"partnerAnswer,omitempty"`
	Error         string `json:"error"`
	// Payload is the delivery message, for replay.
	Payload []byte `json:"-"`
	// Resolution is what a person decided about it, nil while it is open.
	// Set when it is read back; Commit ignores it.
	Resolution *Resolution `json:"resolution,omitempty"`
}

// Delivered is the receipt of a delivery a partner accepted.
type Delivered struct {
	At               time.Time `json:"at"`
	IdempotencyKey   string    `json:"idempotencyKey"`
	Recipient        string    `json:"recipient"`
	Kind             string    `json:"kind"`
	ReferralID       string    `json:"referralId"`
	PartnerReference string    `json:"partnerReference,omitempty"`
	StatusCode       int       `json:"statusCode"`
}

// Batch is everything one step of a route writes. Commit writes all of it or
// none of it.
type Batch struct {
	Messages    []TopicMessage
	Disclosures []Disclosure
	Holds       []Hold
	DeadLetters []DeadLetter
	Delivered   []Delivered
	// Refs are what the step learnt about referrals' references.
	Refs []RefUpdate
	// Park, Reschedule and Unpark move deliveries in and out of the parked
	// lanes (parked.go).
	Park       []Parked
	Reschedule []Reschedule
	Unpark     []int64
	// Stats is what the step adds to the statistics of the service
	// (internal/stats), counted in the same transaction as the step.
	Stats []stats.Increment
}

// ErrClosed is returned by operations on a closed store.
var ErrClosed = errors.New("store: closed")
