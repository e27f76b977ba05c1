package hub

import (
	"context"
	"log/slog"
	"time"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/store"
)

// RetentionPolicy turns the configuration into the cutoffs at now.
func RetentionPolicy(r config.Retention, now time.Time) store.RetentionPolicy {
	return store.RetentionPolicy{
		MessagesBefore:        now.AddDate(0, 0, -r.PayloadDays),
		SubjectsInactiveSince: now.AddDate(-r.DisclosureYears, 0, 0),
	}
}

// retentionLoop applies retention after delay and then every interval until
// ctx ends, logging counts only.
func (h *Hub) retentionLoop(ctx context.Context, delay time.Duration) {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		started := time.Now()
		rep, err := h.store.ApplyRetention(ctx, RetentionPolicy(h.cfg.Retention, started))
		attrs := []any{
			"messages_removed", rep.MessageCount(), "idempotency_removed", rep.IdempotencyKeys,
			"disclosures_removed", rep.Disclosures, "referrals_removed", rep.Referrals, "receipts_removed", rep.Receipts, "ms", time.Since(started).Milliseconds(),
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			h.log.Log(ctx, slog.LevelError, "retention failed; will try again", append(attrs, "error", err)...)
		default:
			h.log.Info("retention applied", attrs...)
		}
		timer.Reset(h.cfg.Retention.Interval)
	}
}
