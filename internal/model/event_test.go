package model_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/iceshub/iceshub/internal/model"
)

// path is the delivery path an order may skip forward along.
var path = []model.OrderStatus{model.StatusOrdered, model.StatusAccepted, model.StatusScheduled,
	model.StatusOutForDelivery, model.StatusDelivered, model.StatusInstalled}

func TestForwardSkipsAlongTheDeliveryPathAreAccepted(t *testing.T) {
	for i, from := range path {
		for _, to := range path[i+1:] {
			if err := model.CanMove(from, to); err != nil {
				t.Errorf("%s -> %s: %v", from, to, err)
			}
		}
		// Going back along the path is refused.
		for j := 1; j < i; j++ {
			to := path[j]
			if err := model.CanMove(from, to); err == nil {
				t.Errorf("%s -> %s (backwards) accepted", from, to)
			}
		}
	}
	for _, to := range []model.OrderStatus{model.StatusScheduled, model.StatusOutForDelivery, model.StatusDelivered} {
		if err := model.CanMove(model.StatusFailedDelivery, to); err != nil {
			t.Errorf("failed-delivery -> %s: %v", to, err)
		}
	}
	if err := model.CanMove("", model.StatusDelivered); err != nil {
		t.Errorf("no status yet (ordered) -> delivered: %v", err)
	}
}

func TestRefusalsNameTheAllowedNextStatuses(t *testing.T) {
	for _, c := range []struct {
		from, to model.OrderStatus
		allowed  []model.OrderStatus
	}{
		{model.StatusDelivered, model.StatusScheduled, []model.OrderStatus{model.StatusInstalled, model.StatusCollectionRequested, model.StatusCollected}},
		{model.StatusOutForDelivery, model.StatusScheduled, []model.OrderStatus{model.StatusDelivered, model.StatusInstalled, model.StatusFailedDelivery}},
		{model.StatusCollectionRequested, model.StatusDelivered, []model.OrderStatus{model.StatusCollected}},
		{model.StatusOrdered, model.StatusCollected, model.StatusOrdered.Next()},
		{model.StatusCollected, model.StatusCollected, nil},
		{model.StatusCancelled, model.StatusDelivered, nil},
	} {
		err := model.CanMove(c.from, c.to)
		var te *model.TransitionError
		if !errors.As(err, &te) {
			t.Fatalf("%s -> %s: %v, want a *TransitionError", c.from, c.to, err)
		}
		if te.From != c.from || te.To != c.to || !slices.Equal(te.Allowed, c.allowed) {
			t.Errorf("%s -> %s: %+v, want allowed %v", c.from, c.to, te, c.allowed)
		}
		for _, s := range c.allowed {
			if !strings.Contains(err.Error(), string(s)) {
				t.Errorf("%s -> %s: %q does not name %s", c.from, c.to, err, s)
			}
		}
		if len(c.allowed) == 0 && !strings.Contains(err.Error(), "final") {
			t.Errorf("%s -> %s: %q does not say %s is final", c.from, c.to, err, c.from)
		}
	}
}

// TestEveryMoveIsForwardOrARepeat checks the whole table against one rule:
// a move is allowed exactly when it is a repeat of a status that is not
// final, or goes forward. Forward is along the delivery path, with
// failed-delivery an attempt that may follow anything before delivered and
// be followed by a new booking, attempt or delivery (or cancelled); then
// collection-requested, collected; cancelled only before anything is out
// for delivery or delivered.
func TestEveryMoveIsForwardOrARepeat(t *testing.T) {
	rank := map[model.OrderStatus]int{}
	for i, s := range path {
		rank[s] = i
	}
	rank[model.StatusCollectionRequested] = len(path)
	rank[model.StatusCollected] = len(path) + 1
	all := append([]model.OrderStatus{model.StatusOrdered}, model.OrderStatuses()...)
	forward := func(from, to model.OrderStatus) bool {
		switch {
		case from.Terminal():
			return false
		case to == model.StatusCancelled:
			return rank[from] < rank[model.StatusOutForDelivery] || from == model.StatusFailedDelivery
		case to == model.StatusFailedDelivery:
			return rank[from] < rank[model.StatusDelivered] && from != model.StatusFailedDelivery
		case from == model.StatusFailedDelivery:
			return to == model.StatusScheduled || to == model.StatusOutForDelivery || to == model.StatusDelivered || to == model.StatusInstalled
		case to == model.StatusCollectionRequested || to == model.StatusCollected:
			return rank[from] >= rank[model.StatusDelivered] && rank[from] < rank[to]
		}
		return rank[from] < rank[to]
	}
	for _, from := range all {
		for _, to := range all {
			if to == model.StatusOrdered {
				continue
			}
			want := forward(from, to) || (from == to && !from.Terminal())
			if got := model.CanMove(from, to) == nil; got != want {
				t.Errorf("%s -> %s: allowed %v, want %v", from, to, got, want)
			}
		}
	}
	if err := model.CanMove(model.StatusOrdered, "shipped"); err == nil || errors.As(err, new(*model.TransitionError)) {
		t.Errorf("unknown status: %v, want a plain error", err)
	}
}
