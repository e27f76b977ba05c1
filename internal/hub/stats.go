package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// Statistics of the service for commissioners (issue 19): the counts the
// store keeps by cell, published through internal/stats's disclosure
// control with the configuration's rules, by 'iceshub stats' and
// GET /admin/stats alike.

// PublishStats reads the counts of q's months and publishes them under
// rules. A query the rules refuse (too many months or groups, months
// backwards) wraps stats.ErrRequest.
func PublishStats(ctx context.Context, st store.Statistics, q stats.Query, rules stats.Rules) (stats.Table, error) {
	counts, err := st.Statistics(ctx, q.From, q.To)
	if err != nil {
		return stats.Table{}, err
	}
	t, err := stats.Publish(counts, q, rules)
	if err != nil {
		return stats.Table{}, fmt.Errorf("%w: %v", stats.ErrRequest, err)
	}
	return t, nil
}

// statsHandler serves GET /admin/stats?from=&to=[&by=][&format=], the
// options of 'iceshub stats'.
func (a *admin) statsHandler(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q, format, err := stats.Request{From: v.Get("from"), To: v.Get("to"), By: v.Get("by"), Format: v.Get("format")}.Query()
	var t stats.Table
	if err == nil {
		t, err = PublishStats(r.Context(), a.dlq.store, q, a.rules)
	}
	if errors.Is(err, stats.ErrRequest) {
		writeJSONError(w, http.StatusBadRequest, "invalid-request", err.Error(),
			[]partnersim.Problem{{Field: "query", Message: "from and to (YYYY-MM), by (council, month, priority, setting, class), format (csv, json, markdown)"}})
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", stats.ContentType[format])
	w.Header().Set("Cache-Control", "no-store")
	_ = stats.Write(w, t, format)
}

// publishStats serves POST /admin/stats/publish {"month": "YYYY-MM"}: an
// ended month's statistics to every commissioner that has not had them,
// delivered like every copy. A month each had already publishes nothing
// (published 0).
func (a *admin) publishStats(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Month string `json:"month"`
	}
	if !readBody(w, r, &body, "the body must be a JSON object with month, YYYY-MM", "not a JSON object of month") {
		return
	}
	n, to, err := a.publisher.PublishEnded(r.Context(), body.Month)
	if errors.Is(err, routes.ErrCannotPublish) {
		writeJSONError(w, http.StatusUnprocessableEntity, "cannot-publish", err.Error(),
			[]partnersim.Problem{{Field: "month", Message: "an ended month, YYYY-MM, with a statistics route configured"}})
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	a.log.Info("statistics published by hand", "month", body.Month, "count", n)
	writeJSONOK(w, map[string]any{"month": body.Month, "published": n, "commissioners": to})
}

// PublishMonth publishes an ended month's statistics by hand, as
// 'iceshub stats publish' does (routes.Publisher.PublishEnded), on the
// store of cfg, which it opens and closes. The copies are queued in the
// store for the hub to deliver. An embedded store is locked for it: a hub
// running on it refuses it, naming POST /admin/stats/publish. A month it
// may not publish is refused (routes.ErrCannotPublish) before the store
// is opened.
func PublishMonth(ctx context.Context, cfg *config.Config, month string) (int, []string, error) {
	if err := routes.CheckEnded(month, time.Now()); err != nil {
		return 0, nil, err
	}
	lock, err := LockStoreForCommand(cfg.Store, "stats publish",
		"while the hub runs, use its admin API (POST /admin/stats/publish, see docs/statistics.md), or stop the hub first")
	if err != nil {
		return 0, nil, err
	}
	defer lock.Release()
	st, err := OpenExisting(cfg.Store, nil)
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	publisher, err := routes.NewPublisher(cfg, st, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		return 0, nil, err
	}
	return publisher.PublishEnded(ctx, month)
}
