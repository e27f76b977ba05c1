package routes

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
)

// The monthly statistics to commissioners (issue 19, flow F9): once a
// month ends, and from the configured day and hour of the next, each
// route "message: statistics" gets that month's statistics, published
// under the configured disclosure control exactly as 'iceshub stats
// --from M --to M --format csv' prints them. The copy is a model.Delivery
// about no referral (Delivery.Statistics, its lane its own), put on the
// commissioner's delivery topic and delivered like every other copy:
// retries, parking, dead letters, the Idempotency-Key, the breaker, and a
// disclosure entry of the anonymised statistics.
//
// Each copy is published through the store's idempotent accept under
// StatisticsKey: a second hub on the same database, or this one after a
// restart, finds the key and publishes nothing. Retention keeps those keys
// (store.StatisticsKeyPrefix).

// StatisticsKey is the idempotency key under which the statistics of
// month (YYYY-MM) are published to partner: one publication per month per
// commissioner.
func StatisticsKey(partner, month string) string {
	return store.StatisticsKeyPrefix + partner + ":" + month
}

// StatisticsStore is what publishing the statistics needs of storage: the
// counts, and the idempotent accept that publishes a copy once.
type StatisticsStore interface {
	store.Statistics
	AcceptWithBatch(ctx context.Context, keys []string, resp intake.Response, rec *intake.Record, b store.Batch) (intake.Response, bool, error)
}

// Publisher publishes the statistics of each month to the commissioners
// the routes name. It is safe for concurrent use.
type Publisher struct {
	routes   []config.Route
	rules    stats.Rules
	schedule config.Stats
	store    StatisticsStore
	now      func() time.Time
	log      *slog.Logger
}

// NewPublisher returns the publisher of the statistics routes of cfg
// (none: a publisher that publishes nothing), with the rules and schedule
// of cfg.Stats; now is the clock (nil: time.Now).
func NewPublisher(cfg *config.Config, st StatisticsStore, now func() time.Time, logger *slog.Logger) (*Publisher, error) {
	if cfg == nil || st == nil || logger == nil {
		return nil, errors.New("routes: nil configuration, store or logger")
	}
	if now == nil {
		now = time.Now
	}
	p := &Publisher{rules: cfg.Stats.Rules(), schedule: cfg.Stats, store: st, now: now, log: logger}
	for _, r := range cfg.Routes {
		if r.Message == config.MessageStatistics {
			p.routes = append(p.routes, r)
		}
	}
	return p, nil
}

// Routes reports whether any route receives the statistics.
func (p *Publisher) Routes() bool { return len(p.routes) > 0 }

// Due returns the month whose statistics are due at now: the previous
// whole month once its publication time (config.Stats.PublishAt) has
// come, else "". Only the previous month is ever due: a month whose
// publication time passed while no hub ran is published on the first
// start within the month after it, and not later.
func (p *Publisher) Due(now time.Time) string {
	now = now.UTC()
	prev := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC)
	if now.Before(p.schedule.PublishAt(prev)) {
		return ""
	}
	return stats.Month(prev)
}

// PublishDue publishes the month due now, if any (Due), and returns how
// many copies it published (0 when every commissioner has it already).
func (p *Publisher) PublishDue(ctx context.Context) (int, error) {
	month := p.Due(p.now())
	if month == "" || len(p.routes) == 0 {
		return 0, nil
	}
	return p.Publish(ctx, month)
}

// Publish publishes the statistics of month (YYYY-MM) to every
// commissioner whose route receives them and has not had that month yet,
// and returns how many copies it published.
func (p *Publisher) Publish(ctx context.Context, month string) (int, error) {
	if len(p.routes) == 0 {
		return 0, nil
	}
	counts, err := p.store.Statistics(ctx, month, month)
	if err != nil {
		return 0, fmt.Errorf("statistics of %s: %w", month, err)
	}
	return p.publish(ctx, month, counts)
}

// publish publishes the table of counts, month's, as Publish says.
func (p *Publisher) publish(ctx context.Context, month string, counts []stats.Count) (int, error) {
	body, err := p.table(month, counts)
	if err != nil {
		return 0, err
	}
	published := 0
	for _, r := range p.routes {
		d := model.Delivery{
			Kind: model.KindStatistics, Recipient: r.To, IdempotencyKey: IdempotencyKey(store.StatisticsKeyPrefix+month, r.To, model.KindStatistics),
			Fields: []string{model.StatisticsLabel}, Purpose: r.Purpose, LawfulBasis: lawfulBasis(r),
			Statistics: &model.Statistics{Month: month, ContentType: stats.ContentType["csv"], Body: body},
		}
		payload, err := model.MarshalDelivery(d)
		if err != nil {
			return published, fmt.Errorf("statistics of %s to %s: encode: %w", month, r.To, err)
		}
		msg := message.NewMessage(d.IdempotencyKey, payload)
		msg.Metadata.Set(intake.MetaKind, string(model.KindStatistics))
		resp := intake.Response{Status: 202, ContentType: "text/plain; charset=utf-8",
			Body: []byte("statistics of " + month + " published to " + r.To)}
		_, dup, err := p.store.AcceptWithBatch(ctx, []string{StatisticsKey(r.To, month)}, resp, nil,
			store.Batch{Messages: []store.TopicMessage{{Topic: TopicDeliver(r.To), Message: msg}}})
		if err != nil {
			return published, fmt.Errorf("statistics of %s to %s: %w", month, r.To, err)
		}
		if !dup {
			published++
			p.log.Info("statistics published", "partner", r.To, "month", month, "idempotency_key", d.IdempotencyKey)
		}
	}
	return published, nil
}

// ErrCannotPublish is returned, wrapped with the reason, by PublishEnded
// for a month it may not publish.
var ErrCannotPublish = errors.New("the statistics cannot be published")

// CheckEnded refuses (ErrCannotPublish) a month not written YYYY-MM, or
// one that has not ended at now.
func CheckEnded(month string, now time.Time) error {
	start, err := time.Parse("2006-01", month)
	if err != nil || stats.Month(start) != month {
		return fmt.Errorf("%w: month %q is not written YYYY-MM", ErrCannotPublish, month)
	}
	if now = now.UTC(); !now.After(start.AddDate(0, 1, 0)) {
		return fmt.Errorf("%w: %s has not ended (it is %s): a month is published once, with all its counts", ErrCannotPublish, month, now.Format(time.DateOnly))
	}
	return nil
}

// PublishEnded publishes by hand, as Publish, the statistics of month
// (YYYY-MM), which must have ended: a month a hub missed (no hub ran in
// the month after it), or one whose copies to a commissioner added later
// were never sent. A month already published to a commissioner is not
// published to it again. It refuses (ErrCannotPublish) a month not written
// YYYY-MM, one not ended yet (its counts would be incomplete, and it is
// published once), one the store holds no counts of, and a configuration
// without a statistics route. It returns how many copies it published and
// the commissioners the routes name.
func (p *Publisher) PublishEnded(ctx context.Context, month string) (int, []string, error) {
	if err := CheckEnded(month, p.now()); err != nil {
		return 0, nil, err
	}
	if len(p.routes) == 0 {
		return 0, nil, fmt.Errorf("%w: no route receives them (add a route with message: statistics to a commissioner)", ErrCannotPublish)
	}
	// A month the store has no counts of (before the hub ran) would reach
	// the commissioners as a month with no activity, and for good.
	counts, err := p.store.Statistics(ctx, month, month)
	if err != nil {
		return 0, nil, fmt.Errorf("statistics of %s: %w", month, err)
	}
	if len(counts) == 0 {
		return 0, nil, fmt.Errorf("%w: the store holds no counts of %s (no referral or event was counted in it)", ErrCannotPublish, month)
	}
	to := make([]string, 0, len(p.routes))
	for _, r := range p.routes {
		to = append(to, r.To)
	}
	n, err := p.publish(ctx, month, counts)
	return n, to, err
}

// table returns counts, the statistics of month, as 'iceshub stats --from month
// --to month --format csv' prints them, under the configured rules.
func (p *Publisher) table(month string, counts []stats.Count) (string, error) {
	q, format, err := stats.Request{From: month, To: month, Format: "csv"}.Query()
	if err != nil {
		return "", err
	}
	t, err := stats.Publish(counts, q, p.rules)
	if err != nil {
		return "", fmt.Errorf("statistics of %s: %w", month, err)
	}
	var b bytes.Buffer
	if err := stats.Write(&b, t, format); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Run publishes what is due (PublishDue) after first, then every every,
// until ctx ends. A failure is logged and tried again at the next turn.
func (p *Publisher) Run(ctx context.Context, first, every time.Duration) {
	if len(p.routes) == 0 {
		return
	}
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := p.PublishDue(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("statistics not published; trying again later", "error", err)
		}
		t.Reset(every)
	}
}
