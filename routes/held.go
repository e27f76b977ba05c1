package routes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
)

// Resolving a held message (the use cases a person needs when no route
// could place a copy): route it to a chosen council, release it once the
// person's express permission is recorded, or close it with a reason. A
// routed or released copy is cut by the route exactly as the fan-out would
// have cut it (cutter.cutFor), with the same idempotency key, and queued
// for its partner, whose delivery records its disclosure entry as any
// delivery does. The resolution, who made it and why are committed with
// the copy (store.ResolveHold).

// ErrCannotResolve is returned when a held message cannot be resolved the
// way asked: routing a copy that was not held for want of a council,
// releasing one that was not held for want of permission, naming a
// partner that is not a council, or a message no current route sends.
var ErrCannotResolve = errors.New("the held message cannot be resolved that way")

// PermissionSourceOperator is the model.Permission.Source of a permission
// an operator recorded to release a held copy.
const PermissionSourceOperator = model.PermissionSourceOperator

// HeldStore is what the hold resolutions need from storage.
type HeldStore interface {
	HeldMessage(ctx context.Context, id int64) (store.Hold, error)
	ResolveHold(ctx context.Context, id int64, res store.HoldResolution, b store.Batch) error
	FindReferral(ctx context.Context, l intake.Lookup) (intake.Record, bool, error)
}

// Held resolves messages held for review.
type Held struct {
	cut   *cutter
	kinds map[string]string
	store HeldStore
}

// NewHeld returns the hold resolutions under cfg's routes, council table,
// requesters, partner kinds and subject key (the fan-out's).
func NewHeld(cfg Config, st HeldStore, logger *slog.Logger) (*Held, error) {
	if st == nil || logger == nil {
		return nil, errors.New("routes: nil store or logger")
	}
	c, err := newCutter(cfg, logger)
	if err != nil {
		return nil, err
	}
	return &Held{cut: c, kinds: cfg.PartnerKinds, store: st}, nil
}

// Resolved says what a resolution did.
type Resolved struct {
	ID         int64      `json:"id"`
	Action     string     `json:"action"`
	ReferralID string     `json:"referralId"`
	Kind       model.Kind `json:"kind"`
	// Recipient is the partner a copy was queued for (route, release).
	Recipient string `json:"recipient,omitempty"`
	// IdempotencyKeys are those of the copies queued.
	IdempotencyKeys []string `json:"idempotencyKeys,omitempty"`
	// HeldAgain is the reason a routed copy was held again: the council's
	// route needs the person's express permission, which is not recorded
	// (release it then).
	HeldAgain string `json:"heldAgain,omitempty"`
}

// Route sends held message id, held because no council covers the person's
// postcode, to council: the council's copy is cut by the council route(s)
// of its kind of message as the fan-out would have cut it and queued, and,
// for a referral, council is recorded as the referral's council so that
// later events about it go there. When that route needs the person's
// express permission and the referral does not record it, the copy is held
// again for that council, as the fan-out would have held it.
func (h *Held) Route(ctx context.Context, id int64, council, by, reason string) (Resolved, error) {
	council = strings.TrimSpace(council)
	if h.kinds[council] != config.KindCouncil {
		return Resolved{}, fmt.Errorf("held message %d: %w: %q is not a configured council", id, ErrCannotResolve, council)
	}
	hold, full, keyID, err := h.open(ctx, id)
	if err != nil {
		return Resolved{}, err
	}
	if hold.Route != config.RecipientCouncil {
		return Resolved{}, fmt.Errorf("held message %d: %w: it is held for %s (%s), not for want of a council; route only copies held because no council covers the postcode",
			id, ErrCannotResolve, hold.Route, hold.Reason)
	}
	kind := model.Kind(hold.Kind)
	var b store.Batch
	sbj := h.cut.subjects.Of(full.Person.NHSNumber)
	found := false
	for _, r := range h.cut.routes {
		if r.Message != string(kind) || r.To != config.RecipientCouncil {
			continue
		}
		found = true
		if full.Event != nil && council == full.Event.From {
			continue // never echo an event to whoever reported it
		}
		if err := h.cut.cutFor(&b, r, full, kind, keyID, council, hold.Payload, sbj); err != nil {
			return Resolved{}, err
		}
	}
	if !found {
		return Resolved{}, fmt.Errorf("held message %d: %w: %s", id, ErrCannotResolve, ErrNoCurrentRoute)
	}
	if kind == model.KindReferral {
		b.Refs = append(b.Refs, store.RefUpdate{ReferralID: full.ID, Council: council})
	}
	res := store.HoldResolution{Action: store.ActionRouted, By: by, At: h.cut.now(), Reason: reason, Recipient: council}
	if err := h.store.ResolveHold(ctx, id, res, b); err != nil {
		return Resolved{}, err
	}
	out := resolved(hold, res, b)
	h.cut.logHolds(b)
	return out, nil
}

// Release sends held message id, held because the person's express
// permission was not recorded (or was refused), to the recipient it was
// held for, once an operator has recorded the permission: who recorded
// it, when, and a reference to the evidence (never personal values). The
// copy is cut by the route that needs the permission, as the fan-out would
// have cut it with the permission given; the permission itself is never
// copied to the recipient.
func (h *Held) Release(ctx context.Context, id int64, perm store.PermissionRecord, by, reason string) (Resolved, error) {
	if strings.TrimSpace(perm.RecordedBy) == "" || strings.TrimSpace(perm.Evidence) == "" {
		return Resolved{}, store.ErrPermissionRequired
	}
	if perm.RecordedAt.IsZero() {
		perm.RecordedAt = h.cut.now()
	}
	hold, full, keyID, err := h.open(ctx, id)
	if err != nil {
		return Resolved{}, err
	}
	if hold.Reason != HoldNoPermission && hold.Reason != HoldPermissionRefused {
		return Resolved{}, fmt.Errorf("held message %d: %w: it is held because %s, not for want of the person's permission", id, ErrCannotResolve, hold.Reason)
	}
	kind, recipient := model.Kind(hold.Kind), hold.Route
	full.Permission = &model.Permission{Given: true, Source: PermissionSourceOperator, Recorded: perm.RecordedAt.UTC().Format(time.DateOnly)}
	var b store.Batch
	sbj := h.cut.subjects.Of(full.Person.NHSNumber)
	found := false
	for _, r := range h.cut.routes {
		if r.Message != string(kind) || !r.RequiresPermission || !h.sends(r, recipient) {
			continue
		}
		found = true
		if err := h.cut.cutFor(&b, r, full, kind, keyID, recipient, hold.Payload, sbj); err != nil {
			return Resolved{}, err
		}
	}
	if !found {
		return Resolved{}, fmt.Errorf("held message %d: %w: no current route needing permission sends %s to %s", id, ErrCannotResolve, kind, recipient)
	}
	// The permission is recorded with the referral too, in the same
	// transaction: its later messages (an amendment, a cancellation) go
	// without a hold of their own, unless an amendment brings a permission
	// of its own.
	b.Refs = append(b.Refs, store.RefUpdate{ReferralID: full.ID, Permission: full.Permission})
	res := store.HoldResolution{Action: store.ActionReleased, By: by, At: h.cut.now(), Reason: reason, Recipient: recipient, Permission: &perm}
	if err := h.store.ResolveHold(ctx, id, res, b); err != nil {
		return Resolved{}, err
	}
	return resolved(hold, res, b), nil
}

// Close records that held message id will not be sent, and why. Nothing is
// sent or deleted.
func (h *Held) Close(ctx context.Context, id int64, by, reason string) (Resolved, error) {
	hold, err := h.store.HeldMessage(ctx, id)
	if err != nil {
		return Resolved{}, err
	}
	if hold.Resolution != nil {
		return Resolved{}, fmt.Errorf("held message %d: %w (%s)", id, store.ErrHoldResolved, hold.Resolution.Action)
	}
	res := store.HoldResolution{Action: store.ActionClosed, By: by, At: h.cut.now(), Reason: reason}
	if err := h.store.ResolveHold(ctx, id, res, store.Batch{}); err != nil {
		return Resolved{}, err
	}
	return resolved(hold, res, store.Batch{}), nil
}

// sends reports whether route r sends to recipient: it names it, or it is
// "council" or "requester" and recipient a partner of that kind.
func (h *Held) sends(r config.Route, recipient string) bool {
	switch r.To {
	case recipient:
		return true
	case config.RecipientCouncil:
		return h.kinds[recipient] == config.KindCouncil
	case config.RecipientRequester:
		return h.kinds[recipient] == config.KindNHS
	}
	return false
}

// open returns held message id, still waiting, with the full message it
// holds: for a referral the referral as now recorded (as received when no
// longer recorded), for an event the recorded referral with the event
// attached; and the id its copies' idempotency keys derive from.
func (h *Held) open(ctx context.Context, id int64) (store.Hold, *model.Referral, string, error) {
	hold, err := h.store.HeldMessage(ctx, id)
	if err != nil {
		return store.Hold{}, nil, "", err
	}
	if hold.Resolution != nil {
		return store.Hold{}, nil, "", fmt.Errorf("held message %d: %w (%s by %s)", id, store.ErrHoldResolved, hold.Resolution.Action, hold.Resolution.By)
	}
	undecodable := fmt.Errorf("held message %d: %w: its stored message cannot be decoded; close it", id, ErrCannotResolve)
	kind := model.Kind(hold.Kind)
	if kind == "" || kind == model.KindReferral {
		var ref model.Referral
		if err := json.Unmarshal(hold.Payload, &ref); err != nil || ref.ID == "" {
			return store.Hold{}, nil, "", undecodable
		}
		rec, found, err := h.store.FindReferral(ctx, intake.Lookup{ReferralID: ref.ID})
		if err != nil {
			return store.Hold{}, nil, "", err
		}
		if found {
			correlation := ref.Source.CorrelationID
			ref = rec.Referral
			if ref.Source.CorrelationID == "" {
				ref.Source.CorrelationID = correlation
			}
		}
		hold.Kind = string(model.KindReferral)
		return hold, &ref, ref.ID, nil
	}
	var em intake.EventMessage
	if err := json.Unmarshal(hold.Payload, &em); err != nil || em.Event.ID == "" {
		return store.Hold{}, nil, "", undecodable
	}
	rec, found, err := h.store.FindReferral(ctx, intake.Lookup{ReferralID: em.Event.ReferralID})
	if err != nil {
		return store.Hold{}, nil, "", err
	}
	if !found {
		return store.Hold{}, nil, "", fmt.Errorf("held message %d: %w: its referral is no longer recorded; close it", id, ErrCannotResolve)
	}
	full := rec.Referral
	full.Event = &em.Event
	return hold, &full, em.Event.ID, nil
}

func resolved(hold store.Hold, res store.HoldResolution, b store.Batch) Resolved {
	out := Resolved{ID: hold.ID, Action: res.Action, ReferralID: hold.ReferralID, Kind: model.Kind(hold.Kind), Recipient: res.Recipient}
	for _, m := range b.Messages {
		out.IdempotencyKeys = append(out.IdempotencyKeys, m.Message.UUID)
	}
	for _, nh := range b.Holds {
		out.HeldAgain = nh.Reason
	}
	return out
}
