package store

import (
	"time"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// checkpointEvery is how often the checkpointer copies the write-ahead log
// into the database file when it has caught up.
const checkpointEvery = 250 * time.Millisecond

// checkpointer copies committed pages from the write-ahead log into the
// database file on a connection of its own, until stop is closed.
//
// SQLite would otherwise do it inside whichever commit crosses the log's
// size threshold, with an fsync of the database file, while every caller
// of that group commit (senders waiting for their 200 among them) waits.
// A passive checkpoint never blocks writers or readers; it copies what no
// reader still needs, and the writer starts the log again from the
// beginning once all of it has been copied.
func (s *SQLite) checkpointer(conn *sqlite.Conn, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	defer conn.Close()
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		// A failure (busy, I/O) is tried again at the next tick; the log
		// only grows meanwhile, nothing committed is at risk.
		_ = sqlitex.ExecuteTransient(conn, "PRAGMA wal_checkpoint(PASSIVE);", nil)
	}
}
