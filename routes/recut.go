package routes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/minimise"
	"github.com/iceshub/iceshub/internal/model"
)

// ErrNoCurrentRoute is returned by a Recut for a copy whose kind of message
// no current route sends to its recipient: the sharing is no longer
// allowed, so the copy must not be replayed.
var ErrNoCurrentRoute = errors.New("no current route sends this kind of message to this recipient")

// RecutConfig is what NewRecut needs: the current routes and partners.
type RecutConfig struct {
	Routes []config.Route
	// PartnerKinds maps each partner id to its kind.
	PartnerKinds map[string]string
	// Now is the clock of age bands; default time.Now.
	Now func() time.Time
}

// referralFinder finds the stored record of a referral.
type referralFinder interface {
	FindReferral(ctx context.Context, l intake.Lookup) (intake.Record, bool, error)
}

// NewRecut returns the re-cut of a dead-lettered copy under the current
// policy, for a replay: the route that now sends its kind of message to its
// recipient decides its fields, purpose and lawful basis. A referral's copy
// is cut afresh from the stored full referral (when still recorded), so a
// field the route now allows is sent; an event's copy, whose full event is
// not kept, is cut from the copy itself, so the current route can only
// narrow it. The idempotency key and recipient never change.
func NewRecut(cfg RecutConfig, st referralFinder) func(model.Delivery) (model.Delivery, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return func(d model.Delivery) (model.Delivery, error) {
		r, ok := currentRoute(cfg, d)
		if !ok {
			return model.Delivery{}, fmt.Errorf("re-cut %s for %s: %w", d.Kind, d.Recipient, ErrNoCurrentRoute)
		}
		if d.Kind == model.KindStatistics {
			// The published table is replayed as it was: only the
			// route's purpose and basis are current.
			d.Purpose, d.LawfulBasis = r.Purpose, lawfulBasis(r)
			return d, nil
		}
		src := d.Referral
		if d.Kind == model.KindReferral {
			rec, found, err := st.FindReferral(context.Background(), intake.Lookup{ReferralID: d.Referral.ID})
			if err != nil {
				return model.Delivery{}, fmt.Errorf("re-cut %s for %s: %w", d.Kind, d.Recipient, err)
			}
			if found {
				src = rec.Referral
				src.Source.CorrelationID = d.Referral.Source.CorrelationID
			}
		}
		cut, err := minimise.Apply(&src, r.Rules(), minimise.Options{Now: cfg.Now(), PseudonymKey: r.PseudonymKey()})
		if err != nil {
			return model.Delivery{}, fmt.Errorf("re-cut %s for %s: %w", d.Kind, d.Recipient, err)
		}
		d.Referral, d.Fields, d.Purpose, d.LawfulBasis = cut, r.Disclosed(), r.Purpose, lawfulBasis(r)
		return d, nil
	}
}

// currentRoute returns the route that sends d's kind of message to d's
// recipient: one naming it, or "council" or "requester" for a partner of
// that kind.
func currentRoute(cfg RecutConfig, d model.Delivery) (config.Route, bool) {
	for _, r := range cfg.Routes {
		if r.Message != string(d.Kind) {
			continue
		}
		switch {
		case r.To == d.Recipient,
			r.To == config.RecipientCouncil && cfg.PartnerKinds[d.Recipient] == config.KindCouncil,
			r.To == config.RecipientRequester && cfg.PartnerKinds[d.Recipient] == config.KindNHS:
			return r, true
		}
	}
	return config.Route{}, false
}
