package sqlite

import (
	"context"
	"fmt"

	"zombiezen.com/go/sqlite"

	"github.com/iceshub/iceshub/internal/stats"
)

// The statistics of the service (issue 19, flow F9): counts added in the
// transaction of the step they count (a referral accepted, an event
// accepted), by cell, never by person. A row names a month, a council's
// partner id, a priority, a setting kind, an ISO 9999 class, a measure and,
// for deliveries, the whole days from acceptance; n is how many. Nothing
// in it identifies anyone, and retention never deletes it: the statistics
// of a month stay when its referrals are gone. What may be published of it
// is decided by internal/stats (disclosure control).
// The tables are created by migrations/00001_initial.sql.

// addStatistics adds incs to the statistics in the caller's transaction.
// It runs in every accept: one upsert each, on a small table whose pages
// stay in the writer's cache, with a statement prepared once per
// connection and its values bound without boxing them.
func addStatistics(conn *sqlite.Conn, incs []stats.Increment) error {
	if len(incs) == 0 {
		return nil
	}
	st, err := conn.Prepare(`INSERT INTO statistics (month, council, priority, setting, class, measure, days, n)
		VALUES (?, ?, ?, ?, ?, ?, ?, 1)
		ON CONFLICT (month, council, priority, setting, class, measure, days) DO UPDATE SET n = n + 1`)
	if err != nil {
		return fmt.Errorf("store: count in the statistics: %w", err)
	}
	for _, in := range incs {
		st.BindText(1, in.Month)
		st.BindText(2, in.Council)
		st.BindText(3, in.Priority)
		st.BindText(4, in.Setting)
		st.BindText(5, in.Class)
		st.BindText(6, string(in.Measure))
		st.BindInt64(7, int64(in.Days))
		_, err := st.Step()
		if rerr := st.Reset(); err == nil {
			err = rerr
		}
		if err != nil {
			return fmt.Errorf("store: count %s in the statistics: %w", in.Measure, err)
		}
	}
	return nil
}

// Statistics returns the rows of the statistics table for the months
// from to to (YYYY-MM, both included), unpublishable as they are: they
// must go through stats.Publish.
func (s *SQLite) Statistics(ctx context.Context, from, to string) ([]stats.Count, error) {
	var out []stats.Count
	err := s.read(ctx, `SELECT month, council, priority, setting, class, measure, days, n FROM statistics
		WHERE month >= ? AND month <= ? ORDER BY month, council, priority, setting, class, measure, days`,
		[]any{from, to}, func(st *sqlite.Stmt) error {
			out = append(out, stats.Count{
				Key: stats.Key{Month: st.ColumnText(0), Council: st.ColumnText(1), Priority: st.ColumnText(2),
					Setting: st.ColumnText(3), Class: st.ColumnText(4)},
				Measure: stats.Measure(st.ColumnText(5)), Days: st.ColumnInt(6), N: st.ColumnInt64(7)})
			return nil
		})
	return out, err
}
