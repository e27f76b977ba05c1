package sqlite

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/iceshub/iceshub/internal/store"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// Queues returns the state of every topic in the store, by name.
func (s *SQLite) Queues(ctx context.Context) ([]store.QueueStat, error) {
	var topics []string
	err := s.read(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name GLOB 'watermill_*' AND name NOT GLOB 'watermill_offsets_*' ORDER BY name`, nil, func(st *sqlite.Stmt) error {
		topics = append(topics, strings.TrimPrefix(st.ColumnText(0), "watermill_"))
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]store.QueueStat, 0, len(topics))
	for _, t := range topics {
		if !topicPattern.MatchString(t) {
			continue
		}
		q, err := s.queue(ctx, t)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	// Parked deliveries wait too: each partner's parked lanes are reported
	// as the queue "parked.<partner>", oldest by when it first failed; a
	// partner with a delivery queue and nothing parked reads 0, rather than
	// disappearing from the metrics when its last parked copy goes.
	parked := map[string]store.QueueStat{}
	for _, q := range out {
		if partner, ok := strings.CutPrefix(q.Topic, "deliver."); ok {
			parked[partner] = store.QueueStat{Topic: "parked." + partner}
		}
	}
	if err := s.read(ctx, `SELECT partner, COUNT(*), MIN(first_failed_at) FROM parked GROUP BY partner`, nil, func(st *sqlite.Stmt) error {
		parked[st.ColumnText(0)] = store.QueueStat{Topic: "parked." + st.ColumnText(0), Pending: st.ColumnInt64(1), OldestPending: time.UnixMilli(st.ColumnInt64(2))}
		return nil
	}); err != nil {
		return nil, err
	}
	for _, partner := range slices.Sorted(maps.Keys(parked)) {
		out = append(out, parked[partner])
	}
	return out, nil
}

// OldestPending returns when the oldest message on topic not yet
// acknowledged was published, and false when none is pending.
func (s *SQLite) OldestPending(ctx context.Context, topic string) (time.Time, bool, error) {
	if !topicPattern.MatchString(topic) {
		return time.Time{}, false, fmt.Errorf("store: invalid topic name %q", topic)
	}
	if err := s.EnsureTopics(topic); err != nil {
		return time.Time{}, false, err
	}
	q, err := s.queue(ctx, topic)
	if err != nil {
		return time.Time{}, false, err
	}
	return q.OldestPending, q.Pending > 0, nil
}

// queue reads one topic's state. Pending counts from the lowest offset any
// consumer group acknowledged, as Pending does; created_at is written by
// the Watermill publisher in RFC 3339 with its offset.
func (s *SQLite) queue(ctx context.Context, topic string) (store.QueueStat, error) {
	q := store.QueueStat{Topic: topic}
	after := `COALESCE((SELECT MIN(offset_acked) FROM 'watermill_offsets_` + topic + `'), 0)`
	err := s.read(ctx, `SELECT COUNT(*), (SELECT created_at FROM 'watermill_`+topic+`' WHERE "offset" > `+after+` ORDER BY "offset" LIMIT 1)
		FROM 'watermill_`+topic+`' WHERE "offset" > `+after, nil, func(st *sqlite.Stmt) error {
		q.Pending = st.ColumnInt64(0)
		if created := st.ColumnText(1); created != "" {
			q.OldestPending, _ = time.Parse(time.RFC3339Nano, created)
		}
		return nil
	})
	if err != nil {
		return store.QueueStat{}, fmt.Errorf("store: state of topic %s: %w", topic, err)
	}
	return q, nil
}

// Probe proves the store writable: it writes and commits one row (the time
// of the probe) as every other write does, durably. Readiness calls it.
func (s *SQLite) Probe(ctx context.Context) error {
	return s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error {
		if err := sqlitex.Execute(conn, `INSERT INTO meta (key, value) VALUES ('readiness_probe', ?)
			ON CONFLICT(key) DO UPDATE SET value = excluded.value`, &sqlitex.ExecOptions{Args: []any{ts(time.Time{})}}); err != nil {
			return fmt.Errorf("store: write probe: %w", err)
		}
		return nil
	})
}
