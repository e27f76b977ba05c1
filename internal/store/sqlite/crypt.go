package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/store"
)

// Encryption at rest. Every value that can hold personal data is sealed
// (internal/crypt: AES-256-GCM, the key id stored in the value) before it is
// written and opened after it is read, inside this package, so that the
// routes only ever see plaintext and the database file only ever holds
// ciphertext:
//
//   - the payload of every message on a Watermill topic (sealed before it
//     is published, opened by the queue that reads it);
//   - held messages' payloads; dead letters' payloads and partner answers
//     (a partner may quote the request in its answer).
//
// Idempotency records, delivery receipts and the disclosure record hold ids,
// field names and diagnostics that never quote a message, and stay in clear
// so that they can be queried.

// sealedColumn is a column whose values are sealed.
type sealedColumn struct{ table, column string }

// sealedColumns lists every sealed column besides the payload of each topic
// table (found by name); RotateKeys re-encrypts them all. A new sealed
// column must be added here, or rotation leaves it under an old key. Rows
// are walked by rowid, so a table listed here must have one.
var sealedColumns = []sealedColumn{
	{"held", "payload"},
	{"dead_letters", "payload"},
	{"dead_letters", "partner_answer"},
	{"referrals", "record"},
	{"parked", "payload"},
}

// loadKeyring returns opts.Keyring, or the keyring of the environment
// (crypt.EnvKey) or the data directory's key file, created if missing.
func loadKeyring(opts Options) (*crypt.Keyring, error) {
	if opts.Keyring != nil {
		return opts.Keyring, nil
	}
	k, _, err := crypt.Load(os.Getenv(crypt.EnvKey), filepath.Join(opts.DataDir, crypt.FileName), true)
	if err != nil {
		return nil, fmt.Errorf("store: data key: %w", err)
	}
	return k, nil
}

// RotateKeys re-encrypts in place, under the active data key, every sealed
// value (and any value still stored in clear) of every sealed column:
// each topic's payloads and sealedColumns. It works in transactions of
// batch rows (DefaultRotateBatch when batch < 1), so a running hub is held
// up only briefly; it is idempotent: a value under the active key is left
// alone, and a run stopped halfway can simply be run again. A value whose
// key the keyring lacks stops it with an error naming the table and row.
func (s *SQLite) RotateKeys(ctx context.Context, batch int) ([]store.RotateCount, error) {
	if batch < 1 {
		batch = store.DefaultRotateBatch
	}
	cols, err := s.sealedColumnsNow(ctx)
	if err != nil {
		return nil, err
	}
	var out []store.RotateCount
	for _, c := range cols {
		count := store.RotateCount{Table: c.table, Column: c.column}
		var after int64
		for {
			n := 0
			err := s.withTx(ctx, func(conn *sqlite.Conn) error {
				type row struct {
					id  int64
					val []byte
				}
				var rows []row
				q := fmt.Sprintf(`SELECT rowid, %q FROM %q WHERE rowid > ? ORDER BY rowid LIMIT ?`, c.column, c.table)
				if err := sqlitex.Execute(conn, q, &sqlitex.ExecOptions{Args: []any{after, batch}, ResultFunc: func(st *sqlite.Stmt) error {
					v := make([]byte, st.ColumnLen(1))
					st.ColumnBytes(1, v)
					rows = append(rows, row{st.ColumnInt64(0), v})
					return nil
				}}); err != nil {
					return fmt.Errorf("store: read %s.%s: %w", c.table, c.column, err)
				}
				for _, r := range rows {
					n++
					after = r.id
					if len(r.val) == 0 {
						continue
					}
					if s.keys.Current(r.val) {
						count.Current++
						continue
					}
					plain, err := s.sealer.Open(r.val)
					if err != nil {
						return fmt.Errorf("%s.%s row %d: %w", c.table, c.column, r.id, err)
					}
					sealed, err := s.sealer.Seal(plain)
					if err != nil {
						return err
					}
					u := fmt.Sprintf(`UPDATE %q SET %q = ? WHERE rowid = ?`, c.table, c.column)
					if err := sqlitex.Execute(conn, u, &sqlitex.ExecOptions{Args: []any{sealed, r.id}}); err != nil {
						return fmt.Errorf("store: rewrite %s.%s row %d: %w", c.table, c.column, r.id, err)
					}
					count.Rewritten++
				}
				return nil
			})
			if err != nil {
				return out, err
			}
			if n < batch {
				break
			}
		}
		out = append(out, count)
	}
	return out, nil
}

// sealedColumnsNow returns the payload column of every topic table in the
// database, then sealedColumns.
func (s *SQLite) sealedColumnsNow(ctx context.Context) ([]sealedColumn, error) {
	var topics []string
	err := s.read(ctx, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name LIKE 'watermill\_%' ESCAPE '\' AND name NOT LIKE 'watermill\_offsets\_%' ESCAPE '\'`, nil, func(st *sqlite.Stmt) error {
		topics = append(topics, st.ColumnText(0))
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(topics)
	var out []sealedColumn
	for _, t := range topics {
		out = append(out, sealedColumn{t, "payload"})
	}
	return append(out, sealedColumns...), nil
}
