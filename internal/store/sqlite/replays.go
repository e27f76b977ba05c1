package sqlite

import (
	"context"
	"fmt"
	"time"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// Replays: what the hub's authentication accepted once and must refuse if
// it comes again (a webhook's signature, a single-use token's jti), kept
// until it would be refused anyway (its timestamp out of the replay window,
// its token expired), so that a replay is refused after a restart too.
// Only a SHA-256 key is kept (internal/auth hashes the partner and the
// signature or jti), never a signature, token or secret.
// The tables are created by migrations/00001_initial.sql.

// replaysPruned is how many expired keys each SeenBefore deletes, at most:
// more than one, so that expired keys never pile up however the traffic
// runs, and few, so that the write stays small.
const replaysPruned = 4

// SeenBefore records key until until and reports whether it was already
// recorded with an until after now (internal/auth's ReplayStore). The
// record is durable when it returns: a request accepted because its key
// was new is refused if it comes again, even after a crash. Each call also
// deletes a few keys expired by now.
func (s *SQLite) SeenBefore(ctx context.Context, key [32]byte, now, until time.Time) (bool, error) {
	var seen bool
	err := s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error {
		seen = false
		if err := sqlitex.Execute(conn, `DELETE FROM replays WHERE key IN
			(SELECT key FROM replays WHERE until_ms <= ? ORDER BY until_ms LIMIT ?)`,
			&sqlitex.ExecOptions{Args: []any{now.UnixMilli(), replaysPruned}}); err != nil {
			return fmt.Errorf("store: prune replays: %w", err)
		}
		if err := sqlitex.Execute(conn, `INSERT INTO replays (key, until_ms) VALUES (?, ?)
			ON CONFLICT(key) DO UPDATE SET until_ms = excluded.until_ms WHERE replays.until_ms <= ?`,
			&sqlitex.ExecOptions{Args: []any{key[:], until.UnixMilli(), now.UnixMilli()}}); err != nil {
			return fmt.Errorf("store: record replay key: %w", err)
		}
		// Nothing inserted or updated: the key is there, not expired.
		seen = conn.Changes() == 0
		return nil
	})
	if err != nil {
		return false, err
	}
	return seen, nil
}

// replayKeys counts the keys kept, for tests.
func (s *SQLite) replayKeys(ctx context.Context) (int, error) {
	n := 0
	err := s.read(ctx, `SELECT COUNT(*) FROM replays`, nil, func(st *sqlite.Stmt) error {
		n = st.ColumnInt(0)
		return nil
	})
	return n, err
}
