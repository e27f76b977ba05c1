package hub

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// AdminStore is what the dead-letter actions and the admin API read and
// write: dead letters, held messages, statistics, and the referral a
// replay is re-cut from (routes.NewRecut).
type AdminStore interface {
	store.DeadLetters
	store.HeldMessages
	store.Statistics
	FindReferral(ctx context.Context, l intake.Lookup) (intake.Record, bool, error)
}

// DLQActions is the use case "replay or discard a dead letter", shared by
// the dlq command and the admin API.
type DLQActions struct {
	store AdminStore
	// recut re-cuts a delivery to the current route's fields before a
	// replay; nil publishes the stored copy (whose mapping still runs at
	// send time, so it is current).
	recut func(model.Delivery) (model.Delivery, error)
}

// NewDLQActions returns the dead-letter actions on st. With cfg, a replay
// is re-cut under cfg's routes (the current policy); without, the stored
// copy is replayed as cut (its mapping still runs at send time).
func NewDLQActions(st AdminStore, cfg *config.Config) *DLQActions {
	a := &DLQActions{store: st}
	if cfg != nil {
		kinds := map[string]string{}
		for _, p := range cfg.Partners {
			kinds[p.ID] = p.Kind
		}
		a.recut = routes.NewRecut(routes.RecutConfig{Routes: cfg.Routes, PartnerKinds: kinds}, st)
	}
	return a
}

// Replay publishes dead letter id again on its partner's topic.
func (a *DLQActions) Replay(ctx context.Context, id int64, by, reason string) (model.Delivery, error) {
	return a.store.ReplayDeadLetter(ctx, id, store.Replay{By: by, Reason: reason, Topic: routes.TopicDeliver, Recut: a.recut})
}

// Discard records that by discarded dead letter id, and why.
func (a *DLQActions) Discard(ctx context.Context, id int64, by, reason string) error {
	return a.store.DiscardDeadLetter(ctx, id, by, reason)
}

// DeadLetterView is a dead letter as shown to an operator: the record and
// the delivery it carried (the partner's copy, already cut to the route's
// fields), or the raw payload when it is not a delivery.
type DeadLetterView struct {
	store.DeadLetter
	Delivery json.RawMessage `json:"delivery,omitempty"`
	State    string          `json:"state"`
}

// ViewOf is d as shown to an operator, with the delivery it carried.
func ViewOf(d store.DeadLetter) DeadLetterView {
	v := DeadLetterView{DeadLetter: d, State: stateOf(d)}
	if len(d.Payload) > 0 {
		if json.Valid(d.Payload) {
			v.Delivery = json.RawMessage(d.Payload)
		} else {
			v.Delivery, _ = json.Marshal(string(d.Payload))
		}
	}
	return v
}

// DeadLetterViews lists dls as shown to an operator, without the
// deliveries: the open ones, or with all every one.
func DeadLetterViews(dls []store.DeadLetter, all bool) []DeadLetterView {
	views := []DeadLetterView{}
	for _, d := range dls {
		if all || d.Resolution == nil {
			views = append(views, DeadLetterView{DeadLetter: d, State: stateOf(d)})
		}
	}
	return views
}

// stateOf is a dead letter's state: open, or its resolution (replayed,
// discarded).
func stateOf(d store.DeadLetter) string {
	if d.Resolution == nil {
		return "open"
	}
	return d.Resolution.Action
}

// OneLine is s on one line, its spaces collapsed, cut to n characters.
func OneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// dlqStatus returns the admin API's status and error code for an error of
// the dead-letter actions.
func dlqStatus(err error) (int, string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return 404, "not-found"
	case errors.Is(err, store.ErrResolved), errors.Is(err, store.ErrHoldResolved):
		return 409, "already-resolved"
	case errors.Is(err, routes.ErrCannotResolve):
		return 422, "cannot-resolve"
	case errors.Is(err, store.ErrNotReplayable):
		return 422, "not-replayable"
	case errors.Is(err, store.ErrReasonRequired), errors.Is(err, store.ErrByRequired), errors.Is(err, store.ErrPermissionRequired):
		return 400, "invalid-request"
	}
	return 500, "internal-error"
}
