package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/store"
)

// Encryption at rest, as in the embedded engine: every value that can hold
// personal data is sealed (internal/crypt) before it is written and opened
// after it is read, here, so that the database only ever holds ciphertext.

// sealedColumns lists every sealed column with the key of its table;
// RotateKeys re-encrypts them all. A new sealed column must be added here.
var sealedColumns = []struct{ table, column, key string }{
	{"messages", "payload", "id"},
	{"held", "payload", "id"},
	{"dead_letters", "payload", "id"},
	{"dead_letters", "partner_answer", "id"},
	{"referrals", "record", "seq"},
	{"parked", "payload", "id"},
}

func (p *Postgres) sealJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return p.sealer.Seal(b)
}

// RotateKeys re-encrypts in place, under the active data key, every sealed
// value of every sealed column, batch rows per transaction. It is
// idempotent, and may run while hubs serve: a row is locked only while it
// is rewritten.
func (p *Postgres) RotateKeys(ctx context.Context, batch int) ([]store.RotateCount, error) {
	if batch < 1 {
		batch = store.DefaultRotateBatch
	}
	var out []store.RotateCount
	for _, c := range sealedColumns {
		count := store.RotateCount{Table: c.table, Column: c.column}
		var after int64
		for {
			n := 0
			var current, rewritten int
			err := p.inTx(ctx, func(tx pgx.Tx) error {
				n, current, rewritten = 0, 0, 0
				rows, err := tx.Query(ctx, fmt.Sprintf(`SELECT %s, %s FROM %s WHERE %s > $1 ORDER BY %s LIMIT $2 FOR UPDATE`,
					c.key, c.column, c.table, c.key, c.key), after, batch)
				if err != nil {
					return fmt.Errorf("store: read %s.%s: %w", c.table, c.column, err)
				}
				type row struct {
					id  int64
					val []byte
				}
				var rs []row
				for rows.Next() {
					var r row
					if err := rows.Scan(&r.id, &r.val); err != nil {
						rows.Close()
						return err
					}
					rs = append(rs, r)
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
				for _, r := range rs {
					n++
					if len(r.val) == 0 {
						continue
					}
					if p.keys.Current(r.val) {
						current++
						continue
					}
					plain, err := p.sealer.Open(r.val)
					if err != nil {
						return fmt.Errorf("%s.%s row %d: %w", c.table, c.column, r.id, err)
					}
					sealed, err := p.sealer.Seal(plain)
					if err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE %s = $2`, c.table, c.column, c.key), sealed, r.id); err != nil {
						return fmt.Errorf("store: rewrite %s.%s row %d: %w", c.table, c.column, r.id, err)
					}
					rewritten++
				}
				if len(rs) > 0 {
					after = rs[len(rs)-1].id
				}
				return nil
			})
			if err != nil {
				return out, err
			}
			count.Current += current
			count.Rewritten += rewritten
			if n < batch {
				break
			}
		}
		out = append(out, count)
	}
	return out, nil
}
