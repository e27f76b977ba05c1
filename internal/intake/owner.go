package intake

import (
	"fmt"
	"slices"
	"strings"
)

// Kinds of partner a Sender can be; the same words as the configuration's
// partner kinds.
const (
	SenderNHS      = "nhs"
	SenderProvider = "provider"
	SenderCouncil  = "council"
)

// Sender is the partner a message came from, as the edge authenticated it.
// MayTouch is the hub's one rule of which referrals a sender may send
// messages about.
type Sender struct {
	// Partner is the configured partner id.
	Partner string
	// Kind is SenderNHS, SenderProvider or SenderCouncil; empty only for
	// an unauthenticated request let through in insecure development mode,
	// which may touch any referral.
	Kind string
	// ODSCodes, for an nhs partner, are the organisations it speaks for.
	ODSCodes []string
}

// MayTouch reports, as nil or an error wrapping ErrNotYours, whether s may
// send a message about the referral rec records:
//   - an nhs partner, when it sent the referral or its ODS codes include
//     the referral's sender or requester organisation;
//   - the provider, when the order was sent to it (an order not recorded
//     as sent yet is no provider's);
//   - a council, when the person lives in its area (the referral's council).
//
// The error says why without naming anything from the referral, so a
// refusal never tells the sender more than that it may not.
func (s Sender) MayTouch(rec Record) error {
	switch s.Kind {
	case "":
		return nil
	case SenderNHS:
		src := rec.Referral.Source
		if src.SentBy != "" && src.SentBy == s.Partner {
			return nil
		}
		if s.speaksFor(src.SenderODS) || s.speaksFor(rec.Referral.Requester.OrganisationODS) {
			return nil
		}
		return fmt.Errorf("%w: %s neither sent the referral nor speaks for its sender or requester", ErrNotYours, s.Partner)
	case SenderProvider:
		if rec.OrderSentTo != "" && rec.OrderSentTo == s.Partner {
			return nil
		}
		return fmt.Errorf("%w: the order was not sent to %s", ErrNotYours, s.Partner)
	case SenderCouncil:
		if rec.Refs.Council != "" && rec.Refs.Council == s.Partner {
			return nil
		}
		return fmt.Errorf("%w: the person lives outside %s's area", ErrNotYours, s.Partner)
	}
	return fmt.Errorf("%w: a %s partner sends no messages about referrals", ErrNotYours, s.Kind)
}

// MayCreate reports, as nil or an error wrapping ErrNotYours, whether s
// may send a new referral from senderODS for requesterODS (either may be
// empty): an nhs partner only for organisations among its ODS codes, when
// it lists any. Only nhs partners (and insecure development mode) create
// referrals.
func (s Sender) MayCreate(senderODS, requesterODS string) error {
	switch s.Kind {
	case "":
		return nil
	case SenderNHS:
		if len(s.ODSCodes) == 0 {
			return nil
		}
		for _, code := range []string{senderODS, requesterODS} {
			if code != "" && !s.speaksFor(code) {
				return fmt.Errorf("%w: %s does not speak for the organisation the referral names", ErrNotYours, s.Partner)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: a %s partner does not send referrals", ErrNotYours, s.Kind)
}

// speaksFor reports whether code is one of the sender's ODS codes (ODS
// codes are compared without regard to case).
func (s Sender) speaksFor(code string) bool {
	if code == "" {
		return false
	}
	return slices.ContainsFunc(s.ODSCodes, func(c string) bool { return strings.EqualFold(c, code) })
}
