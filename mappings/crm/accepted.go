package crm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
)

// CaseCreated is the council's answer to POST /cases (201 for a new case,
// 200 for a repeated Idempotency-Key).
type CaseCreated struct {
	// CaseReference is the council's reference for the case ("CASE-…").
	CaseReference string `json:"caseReference"`
	// Status is the case's status in the council's system; "open" for a new
	// case.
	Status string `json:"status"`
}

// ErrBadAnswer is wrapped by DecodeCaseCreated for an answer that does not
// follow the contract.
var ErrBadAnswer = errors.New("crm: answer does not follow the case contract")

// referencePattern is the shape the contract gives a case reference: it is
// stored and logged, so it must be a short token, never free text.
var referencePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$`)

// DecodeCaseCreated reads the council's answer to a new case. Unknown
// members are ignored. It returns an error wrapping ErrBadAnswer when the
// answer is not a JSON object or its caseReference is missing or not a short
// token; the error never quotes the answer.
func DecodeCaseCreated(body []byte) (CaseCreated, error) {
	var c CaseCreated
	if len(bytes.TrimSpace(body)) == 0 {
		return CaseCreated{}, fmt.Errorf("%w: empty answer", ErrBadAnswer)
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return CaseCreated{}, fmt.Errorf("%w: not a JSON object with string members", ErrBadAnswer)
	}
	if c.CaseReference == "" {
		return CaseCreated{}, fmt.Errorf("%w: no caseReference", ErrBadAnswer)
	}
	if !referencePattern.MatchString(c.CaseReference) {
		return CaseCreated{}, fmt.Errorf("%w: caseReference is not a short token", ErrBadAnswer)
	}
	return c, nil
}
