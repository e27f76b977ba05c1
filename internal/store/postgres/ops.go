package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/store"
)

// Pending returns how many messages on topic are not yet acknowledged.
func (p *Postgres) Pending(ctx context.Context, topic string) (int64, error) {
	q, err := p.queueStat(ctx, topic)
	return q.Pending, err
}

// OldestPending returns when the oldest message on topic not yet
// acknowledged was published, and false when none is pending.
func (p *Postgres) OldestPending(ctx context.Context, topic string) (time.Time, bool, error) {
	q, err := p.queueStat(ctx, topic)
	return q.OldestPending, q.Pending > 0, err
}

func (p *Postgres) queueStat(ctx context.Context, topic string) (store.QueueStat, error) {
	if !topicPattern.MatchString(topic) {
		return store.QueueStat{}, fmt.Errorf("store: invalid topic name %q", topic)
	}
	if p.closed.Load() {
		return store.QueueStat{}, store.ErrClosed
	}
	q := store.QueueStat{Topic: topic}
	var oldest *time.Time
	if err := p.pool.QueryRow(ctx, `SELECT count(*), min(created_at) FROM messages WHERE topic = $1`, topic).
		Scan(&q.Pending, &oldest); err != nil {
		return store.QueueStat{}, fmt.Errorf("store: state of topic %s: %w", topic, err)
	}
	if oldest != nil {
		q.OldestPending = *oldest
	}
	return q, nil
}

// Queues returns the state of every topic, by name, then each partner's
// parked lanes as "parked.<partner>" (0 for a partner with a delivery
// queue and nothing parked), as the embedded engine reports them.
func (p *Postgres) Queues(ctx context.Context) ([]store.QueueStat, error) {
	out, err := query(ctx, p, `SELECT t.name, count(m.id), min(m.created_at) FROM topics t
		LEFT JOIN messages m ON m.topic = t.name GROUP BY t.name ORDER BY t.name`, nil,
		func(row pgx.CollectableRow) (store.QueueStat, error) {
			var q store.QueueStat
			var oldest *time.Time
			err := row.Scan(&q.Topic, &q.Pending, &oldest)
			if oldest != nil {
				q.OldestPending = *oldest
			}
			return q, err
		})
	if err != nil {
		return nil, err
	}
	parked := map[string]store.QueueStat{}
	for _, q := range out {
		if partner, ok := strings.CutPrefix(q.Topic, "deliver."); ok {
			parked[partner] = store.QueueStat{Topic: "parked." + partner}
		}
	}
	lanes, err := query(ctx, p, `SELECT partner, count(*), min(first_failed_at) FROM parked GROUP BY partner`, nil,
		func(row pgx.CollectableRow) (store.QueueStat, error) {
			var q store.QueueStat
			var first int64
			err := row.Scan(&q.Topic, &q.Pending, &first)
			q.OldestPending = time.UnixMilli(first)
			return q, err
		})
	if err != nil {
		return nil, err
	}
	for _, q := range lanes {
		parked[q.Topic] = store.QueueStat{Topic: "parked." + q.Topic, Pending: q.Pending, OldestPending: q.OldestPending}
	}
	for _, partner := range slices.Sorted(maps.Keys(parked)) {
		out = append(out, parked[partner])
	}
	return out, nil
}
