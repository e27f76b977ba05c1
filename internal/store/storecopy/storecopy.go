// Package storecopy moves a hub from the embedded store to PostgreSQL
// (`iceshub store copy`): it copies everything a SQLite store holds into a
// new, empty PostgreSQL store in one transaction, then checks that every
// table holds as many rows on both sides and that the disclosure chain
// verifies and ends at the same hash.
//
// Sealed values are copied as they are, never opened: the PostgreSQL hubs
// must be given the same data keys (ICESHUB_DATA_KEY). Messages already
// handled are not copied; the pending ones are, in order, each to be
// delivered by the new hubs.
package storecopy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres"
	embedded "github.com/iceshub/iceshub/internal/store/sqlite"
)

// Count is one table's rows on each side.
type Count struct {
	Table  string `json:"table"`
	Source int64  `json:"source"`
	Target int64  `json:"target"`
}

// Report says what Copy copied. It holds no personal data.
type Report struct {
	Counts []Count `json:"counts"`
	// Pending is how many messages waiting for delivery were copied, per
	// topic.
	Pending map[string]int64 `json:"pending"`
	// Chain is the verification of the copied disclosure record.
	Chain store.VerifyReport `json:"chain"`
}

// ErrTargetNotEmpty is returned when the PostgreSQL store holds anything.
var ErrTargetNotEmpty = errors.New("storecopy: the PostgreSQL store is not empty; copy only into a new one")

// tables are copied in this order, with these columns; referrals in the
// order they were accepted (their seq is given anew).
var tables = []struct{ name, columns, order string }{
	{"receipts", "referral_id, idempotency_key, recipient, kind, partner_reference, status_code, at", ""},
	{"referrals", "referral_id, service_request_id, requester_ods, council, order_reference, order_sent_to, task_id, status, record, created_at, updated_at, permission", "rowid"},
	{"case_refs", "council, case_reference, referral_id, purpose, at", ""},
	{"rejected_events", "id, at, sender, kind, sender_event, referral_id, reason", "id"},
	{"disclosures", "id, at, referral_id, correlation_id, recipient, kind, fields, purpose, lawful_basis, outcome, detail, subject, prev_hash, hash", "id"},
	{"disclosure_subjects", "subject, referral_id", ""},
	{"disclosure_checkpoints", "upto_id, hash, at", "upto_id"},
	{"meta", "key, value", ""},
	{"held", "id, at, referral_id, kind, route, reason, payload", "id"},
	{"held_resolutions", "held_id, action, decided_by, at, reason, recipient, permission_by, permission_at, evidence", ""},
	{"dead_letters", "id, at, recipient, kind, referral_id, idempotency_key, status_code, partner_answer, error, payload", "id"},
	{"dead_letter_resolutions", "dead_letter_id, action, decided_by, at, reason", ""},
	{"parked", "id, partner, lane, urgent, kind, referral_id, idempotency_key, payload, attempts, next_at, first_failed_at, last_error", "id"},
	{"replays", "key, until_ms", ""},
	{"statistics", "month, council, priority, setting, class, measure, days, n", ""},
	{"operators", "name, role, password_hash, disabled, created_at, failed_sign_ins, last_failed_at", ""},
	{"operator_record", "id, at, operator, action, target, outcome, detail, prev_hash, hash", "id"},
}

// serials are the tables whose ids were copied: their sequences go on
// after the highest.
var serials = []string{"rejected_events", "held", "dead_letters", "parked"}

// Copy copies the SQLite store at sqlitePath into dst, which must be
// empty. The SQLite store must not be in use (the caller holds its data
// directory's lock). Its schema is first brought up to date, as a hub of
// this release would on start, so that a store last run by an older
// release has every column copied. On any error nothing is written to
// dst.
func Copy(ctx context.Context, sqlitePath string, dst *postgres.Postgres) (Report, error) {
	if _, err := embedded.Migrate(ctx, sqlitePath); err != nil {
		return Report{}, fmt.Errorf("storecopy: bring %s up to date: %w", sqlitePath, err)
	}
	src, err := sqlite.OpenConn(sqlitePath, sqlite.OpenReadOnly)
	if err != nil {
		return Report{}, fmt.Errorf("storecopy: open %s: %w", sqlitePath, err)
	}
	defer src.Close()
	// One read transaction: a consistent picture of the source.
	if err := sqlitex.Execute(src, "BEGIN;", nil); err != nil {
		return Report{}, fmt.Errorf("storecopy: read %s: %w", sqlitePath, err)
	}
	defer sqlitex.Execute(src, "ROLLBACK;", nil)
	rep := Report{Pending: map[string]int64{}}
	err = dst.Import(ctx, func(tx pgx.Tx) error {
		if err := ensureEmpty(ctx, tx); err != nil {
			return err
		}
		types, err := columnTypes(ctx, tx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			n, err := copyTable(ctx, src, tx, t.name, t.columns, t.order, types[t.name])
			if err != nil {
				return err
			}
			rep.Counts = append(rep.Counts, Count{Table: t.name, Source: n})
		}
		if rep.Pending, err = copyMessages(ctx, src, tx, types["messages"]); err != nil {
			return err
		}
		if err := copyIdempotency(ctx, src, tx, &rep); err != nil {
			return err
		}
		head, err := finish(ctx, src, tx)
		if err != nil {
			return err
		}
		return check(ctx, tx, &rep, head)
	})
	return rep, err
}

// ensureEmpty refuses a target that holds anything a hub wrote.
func ensureEmpty(ctx context.Context, tx pgx.Tx) error {
	var used bool
	err := tx.QueryRow(ctx, `SELECT EXISTS(SELECT 1 FROM messages) OR EXISTS(SELECT 1 FROM referrals) OR EXISTS(SELECT 1 FROM idempotency)
		OR EXISTS(SELECT 1 FROM disclosures) OR EXISTS(SELECT 1 FROM disclosure_checkpoints) OR EXISTS(SELECT 1 FROM held)
		OR EXISTS(SELECT 1 FROM dead_letters) OR EXISTS(SELECT 1 FROM parked) OR EXISTS(SELECT 1 FROM statistics)
		OR EXISTS(SELECT 1 FROM operators) OR EXISTS(SELECT 1 FROM operator_record)
		OR EXISTS(SELECT 1 FROM meta WHERE key = 'subject_key_check')`).Scan(&used)
	if err != nil {
		return fmt.Errorf("storecopy: look at the PostgreSQL store: %w", err)
	}
	if used {
		return ErrTargetNotEmpty
	}
	// A probe's row is all a hub that never took a message leaves.
	_, err = tx.Exec(ctx, `DELETE FROM meta`)
	return err
}

// columnTypes returns the PostgreSQL type of every column, by table.
func columnTypes(ctx context.Context, tx pgx.Tx) (map[string]map[string]string, error) {
	rows, err := tx.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("storecopy: read the PostgreSQL schema: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]string{}
	for rows.Next() {
		var t, c, typ string
		if err := rows.Scan(&t, &c, &typ); err != nil {
			return nil, err
		}
		if out[t] == nil {
			out[t] = map[string]string{}
		}
		out[t][c] = typ
	}
	return out, rows.Err()
}

// copyTable copies one table's rows, converting each value to its
// PostgreSQL column's type.
func copyTable(ctx context.Context, src *sqlite.Conn, tx pgx.Tx, table, columns, order string, types map[string]string) (int64, error) {
	cols := strings.Split(columns, ", ")
	q := `SELECT ` + columns + ` FROM ` + table
	if order != "" {
		q += ` ORDER BY ` + order
	}
	var rows [][]any
	err := sqlitex.Execute(src, q, &sqlitex.ExecOptions{ResultFunc: func(st *sqlite.Stmt) error {
		row := make([]any, len(cols))
		for i, c := range cols {
			v, err := convert(value(st, i), types[c])
			if err != nil {
				return fmt.Errorf("%s.%s: %w", table, c, err)
			}
			row[i] = v
		}
		rows = append(rows, row)
		return nil
	}})
	if err != nil {
		return 0, fmt.Errorf("storecopy: read %s: %w", table, err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows)); err != nil {
		return 0, fmt.Errorf("storecopy: write %s: %w", table, err)
	}
	return int64(len(rows)), nil
}

func value(st *sqlite.Stmt, i int) any {
	switch st.ColumnType(i) {
	case sqlite.TypeNull:
		return nil
	case sqlite.TypeInteger:
		return st.ColumnInt64(i)
	case sqlite.TypeFloat:
		return st.ColumnFloat(i)
	case sqlite.TypeBlob:
		b := make([]byte, st.ColumnLen(i))
		st.ColumnBytes(i, b)
		return b
	default:
		return st.ColumnText(i)
	}
}

// convert turns a SQLite value into one for a PostgreSQL column of type
// typ.
func convert(v any, typ string) (any, error) {
	switch typ {
	case "bytea":
		switch x := v.(type) {
		case nil:
			return []byte{}, nil
		case string:
			return []byte(x), nil
		}
	case "boolean":
		if x, ok := v.(int64); ok {
			return x != 0, nil
		}
	case "text":
		if x, ok := v.([]byte); ok {
			return string(x), nil
		}
	case "timestamp with time zone":
		if x, ok := v.(string); ok {
			t, err := time.Parse(time.RFC3339Nano, x)
			if err != nil {
				return nil, fmt.Errorf("time %q: %w", x, err)
			}
			return t, nil
		}
	}
	return v, nil
}

// copyMessages copies the messages of every topic that its consumers have
// not acknowledged, in order, and records every topic.
func copyMessages(ctx context.Context, src *sqlite.Conn, tx pgx.Tx, types map[string]string) (map[string]int64, error) {
	var topics []string
	if err := sqlitex.Execute(src, `SELECT substr(name, 11) FROM sqlite_master WHERE type = 'table'
		AND name GLOB 'watermill_*' AND name NOT GLOB 'watermill_offsets_*' ORDER BY name`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error { topics = append(topics, st.ColumnText(0)); return nil }}); err != nil {
		return nil, fmt.Errorf("storecopy: list topics: %w", err)
	}
	out := map[string]int64{}
	for _, t := range topics {
		if _, err := tx.Exec(ctx, `INSERT INTO topics (name) VALUES ($1)`, t); err != nil {
			return nil, fmt.Errorf("storecopy: record topic %s: %w", t, err)
		}
		var rows [][]any
		err := sqlitex.Execute(src, `SELECT uuid, created_at, payload, metadata FROM 'watermill_`+t+`'
			WHERE "offset" > COALESCE((SELECT MIN(offset_acked) FROM 'watermill_offsets_`+t+`'), 0) ORDER BY "offset"`,
			&sqlitex.ExecOptions{ResultFunc: func(st *sqlite.Stmt) error {
				created, err := convert(st.ColumnText(1), types["created_at"])
				if err != nil {
					return err
				}
				payload, _ := convert(value(st, 2), "bytea")
				meta := []byte(st.ColumnText(3))
				rows = append(rows, []any{t, lane(meta, st.ColumnText(0)), st.ColumnText(0), payload, meta, created})
				return nil
			}})
		if err != nil {
			return nil, fmt.Errorf("storecopy: read topic %s: %w", t, err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"messages"}, []string{"topic", "lane", "uuid", "payload", "metadata", "created_at"},
			pgx.CopyFromRows(rows)); err != nil {
			return nil, fmt.Errorf("storecopy: write topic %s: %w", t, err)
		}
		if len(rows) > 0 {
			out[t] = int64(len(rows))
		}
	}
	return out, nil
}

// lane is the referral a message is about, from its metadata, as the
// PostgreSQL engine keys its lanes.
func lane(meta []byte, uuid string) string {
	if id := metadataValue(meta, intake.MetaReferralID); id != "" {
		return id
	}
	return "message:" + uuid
}

// copyIdempotency copies the idempotency records, each key with its
// answer (the embedded store keeps the answer once per request and points
// its other keys at it).
func copyIdempotency(ctx context.Context, src *sqlite.Conn, tx pgx.Tx, rep *Report) error {
	var rows [][]any
	err := sqlitex.Execute(src, `SELECT a.key, CASE WHEN substr(a.response, 1, 1) = x'3D'
			THEN (SELECT b.response FROM idempotency b WHERE b.key = CAST(substr(a.response, 2) AS TEXT))
			ELSE a.response END, a.created_at FROM idempotency a`, &sqlitex.ExecOptions{ResultFunc: func(st *sqlite.Stmt) error {
		created, err := convert(st.ColumnText(2), "timestamp with time zone")
		if err != nil {
			return err
		}
		rows = append(rows, []any{st.ColumnText(0), []byte(st.ColumnText(1)), created})
		return nil
	}})
	if err != nil {
		return fmt.Errorf("storecopy: read idempotency: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"idempotency"}, []string{"key", "response", "created_at"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("storecopy: write idempotency: %w", err)
	}
	rep.Counts = append(rep.Counts, Count{Table: "idempotency", Source: int64(len(rows))})
	return nil
}

// finish sets the head of the disclosure chain to the source's (the last
// id given out and the hash the next entry chains from), and moves the
// sequences of copied ids past them.
func finish(ctx context.Context, src *sqlite.Conn, tx pgx.Tx) (head string, err error) {
	var last int64
	var hash string
	if err := sqlitex.Execute(src, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'disclosures'), 0),
		COALESCE((SELECT hash FROM disclosures ORDER BY id DESC LIMIT 1),
		         (SELECT hash FROM disclosure_checkpoints ORDER BY upto_id DESC LIMIT 1), '')`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error { last, hash = st.ColumnInt64(0), st.ColumnText(1); return nil }}); err != nil {
		return "", fmt.Errorf("storecopy: read the head of the disclosure record: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE disclosure_head SET last_id = $1, hash = $2`, last, hash); err != nil {
		return "", fmt.Errorf("storecopy: write the head of the disclosure record: %w", err)
	}
	// The operator record goes on from the last id the source gave out.
	var opLast int64
	var opHash string
	if err := sqlitex.Execute(src, `SELECT COALESCE((SELECT last_id FROM operator_record_tip WHERE one = 1), 0),
		COALESCE((SELECT hash FROM operator_record ORDER BY id DESC LIMIT 1), '')`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error { opLast, opHash = st.ColumnInt64(0), st.ColumnText(1); return nil }}); err != nil {
		return "", fmt.Errorf("storecopy: read the head of the operator record: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE operator_record_head SET last_id = $1, hash = $2`, opLast, opHash); err != nil {
		return "", fmt.Errorf("storecopy: write the head of the operator record: %w", err)
	}
	for _, t := range serials {
		if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), COALESCE((SELECT max(id) FROM `+t+`), 0) + 1, false)`, t); err != nil {
			return "", fmt.Errorf("storecopy: move the ids of %s on: %w", t, err)
		}
	}
	return hash, nil
}

// check counts every table as tx sees it, and verifies the chain, which
// must end at the source's head.
func check(ctx context.Context, tx pgx.Tx, rep *Report, head string) error {
	var wrong []string
	for i, c := range rep.Counts {
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+c.Table).Scan(&rep.Counts[i].Target); err != nil {
			return fmt.Errorf("storecopy: count %s: %w", c.Table, err)
		}
		if c.Source != rep.Counts[i].Target {
			wrong = append(wrong, fmt.Sprintf("%s: %d copied, %d there", c.Table, c.Source, rep.Counts[i].Target))
		}
	}
	for t, n := range rep.Pending {
		var got int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM messages WHERE topic = $1`, t).Scan(&got); err != nil {
			return fmt.Errorf("storecopy: count topic %s: %w", t, err)
		}
		if got != n {
			wrong = append(wrong, fmt.Sprintf("topic %s: %d pending copied, %d there", t, n, got))
		}
	}
	var err error
	if rep.Chain, err = postgres.VerifyIn(ctx, tx); err != nil {
		return err
	}
	switch {
	case !rep.Chain.OK:
		wrong = append(wrong, "the disclosure record does not verify: "+rep.Chain.Problem)
	case rep.Chain.Head != head:
		wrong = append(wrong, "the disclosure record does not end where its source does")
	}
	ops, err := postgres.VerifyOperatorRecordIn(ctx, tx)
	if err != nil {
		return err
	}
	if !ops.OK {
		wrong = append(wrong, "the operator record does not verify: "+ops.Problem)
	}
	if len(wrong) > 0 {
		return fmt.Errorf("storecopy: the copy differs from its source, nothing copied: %s", strings.Join(wrong, "; "))
	}
	return nil
}
