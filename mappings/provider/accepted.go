package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// OrderAccepted is the provider's answer to POST /orders (201 for a new
// order, 200 for a repeated Idempotency-Key).
type OrderAccepted struct {
	// OrderReference is the provider's reference for the order.
	OrderReference string `json:"orderReference"`
	// Status is the order's status; "received" for a new order.
	Status string `json:"status"`
}

// ErrBadAnswer is wrapped by DecodeOrderAccepted for an answer that does not
// follow the contract.
var ErrBadAnswer = errors.New("provider: answer does not follow the order contract")

// referencePattern is the shape the contract gives a partner reference: it
// is stored and logged, so it must be a short token, never free text.
var referencePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)

// DecodeOrderAccepted reads the provider's answer to a new order. Unknown
// members are ignored, so the provider may add some. It returns an error
// wrapping ErrBadAnswer when the answer is not a JSON object or its
// orderReference is missing or not a short token; the error never quotes
// the answer.
func DecodeOrderAccepted(body []byte) (OrderAccepted, error) {
	var a OrderAccepted
	if len(bytes.TrimSpace(body)) == 0 {
		return OrderAccepted{}, fmt.Errorf("%w: empty answer", ErrBadAnswer)
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return OrderAccepted{}, fmt.Errorf("%w: not a JSON object with string members", ErrBadAnswer)
	}
	if a.OrderReference == "" {
		return OrderAccepted{}, fmt.Errorf("%w: no orderReference", ErrBadAnswer)
	}
	if !referencePattern.MatchString(a.OrderReference) {
		return OrderAccepted{}, fmt.Errorf("%w: orderReference is not a short token", ErrBadAnswer)
	}
	return a, nil
}

// Acknowledgement is the provider's answer to a cancellation, amendment,
// collection or complaint (201 for a new one, 200 for a repeated
// Idempotency-Key).
type Acknowledgement struct {
	// Reference is the provider's reference for what it recorded (its
	// cancellation, amendment, collection or complaint case); never an
	// order reference.
	Reference string `json:"reference"`
	// Status is "received".
	Status string `json:"status"`
}

// DecodeAcknowledgement reads the provider's answer to a cancellation,
// amendment, collection or complaint. The hub needs nothing from it to
// carry on, so it is lenient: an answer it cannot read, or whose reference
// is not a short token, gives an Acknowledgement without Reference, never
// an error.
func DecodeAcknowledgement(body []byte) Acknowledgement {
	var a Acknowledgement
	if err := json.Unmarshal(body, &a); err != nil || !referencePattern.MatchString(a.Reference) {
		return Acknowledgement{}
	}
	return a
}
