package sqlite

import (
	"os"
	"time"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

const (
	// walLimit is the journal_size_limit set in Open, and also the size
	// past which the committer starts the write-ahead log again itself.
	walLimit = 8 << 20
	// writerBusyTimeout is how long the write connection waits for a lock
	// another process holds (a CLI command writing to the same database).
	writerBusyTimeout = 10 * time.Second
	// logRestartWait is how long a restart of the write-ahead log waits for
	// the readers still using it; logRestartRetry how long the committer
	// leaves it before trying again when they did not finish.
	logRestartWait  = 250 * time.Millisecond
	logRestartRetry = time.Second
)

// keepLogShort checkpoints the write-ahead log whole and truncates it when
// it has grown past walLimit.
//
// SQLite's own checkpoints (every 1000 pages, inside a commit) copy the log
// into the database, but the log starts again from its beginning only if
// no reader is still using it when the next transaction begins. Readers
// run beside the writer (read), so under steady load one nearly always is,
// and the log would grow by a checkpoint's worth each time. A TRUNCATE
// checkpoint waits for those readers (readers starting meanwhile read the
// database file, not the log), briefly: a long reader leaves it for
// logRestartRetry rather than stall every caller.
func (s *SQLite) keepLogShort() {
	now := time.Now()
	if now.Before(s.logRetryAt) {
		return
	}
	if fi, err := os.Stat(s.path + "-wal"); err != nil || fi.Size() <= walLimit {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	s.conn.SetBusyTimeout(logRestartWait)
	defer s.conn.SetBusyTimeout(writerBusyTimeout)
	busy := true
	err := sqlitex.ExecuteTransient(s.conn, "PRAGMA wal_checkpoint(TRUNCATE);", &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error { busy = st.ColumnInt(0) != 0; return nil }})
	if err != nil || busy {
		s.logRetryAt = now.Add(logRestartRetry)
	}
}
