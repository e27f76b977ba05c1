package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/store"
)

// Operator accounts and the operator record (store.Operators), with the
// schema of migrations/00002_operators.sql.

const operatorColumns = `name, role, password_hash, disabled, created_at, failed_sign_ins, last_failed_at`

func scanOperator(row pgx.CollectableRow) (store.Operator, error) {
	var o store.Operator
	var created, lastFailed string
	err := row.Scan(&o.Name, &o.Role, &o.PasswordHash, &o.Disabled, &created, &o.FailedSignIns, &lastFailed)
	o.CreatedAt = store.ParseTimestamp(created)
	if lastFailed != "" {
		o.LastFailedAt = store.ParseTimestamp(lastFailed)
	}
	return o, err
}

// AddOperator stores a new operator; ErrOperatorExists when the name is
// taken.
func (p *Postgres) AddOperator(ctx context.Context, o store.Operator) error {
	o, err := store.CheckOperator(o)
	if err != nil {
		return err
	}
	return p.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO operators (`+operatorColumns+`) VALUES ($1, $2, $3, $4, $5, 0, '')
			ON CONFLICT (name) DO NOTHING`, o.Name, o.Role, o.PasswordHash, o.Disabled, store.Timestamp(o.CreatedAt))
		if err != nil {
			return fmt.Errorf("store: add operator: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("operator %q: %w", o.Name, store.ErrOperatorExists)
		}
		return nil
	})
}

// Operator returns the operator of that name, or ErrNotFound.
func (p *Postgres) Operator(ctx context.Context, name string) (store.Operator, error) {
	out, err := query(ctx, p, `SELECT `+operatorColumns+` FROM operators WHERE name = $1`, []any{name}, scanOperator)
	if err != nil {
		return store.Operator{}, err
	}
	if len(out) == 0 {
		return store.Operator{}, fmt.Errorf("operator %q: %w", name, store.ErrNotFound)
	}
	return out[0], nil
}

// ListOperators returns every operator, by name.
func (p *Postgres) ListOperators(ctx context.Context) ([]store.Operator, error) {
	return query(ctx, p, `SELECT `+operatorColumns+` FROM operators ORDER BY name`, nil, scanOperator)
}

// updateOperator runs one UPDATE of the operator name ($1), and ends its
// console sessions when endSessions; ErrNotFound when it changed no row.
func (p *Postgres) updateOperator(ctx context.Context, name string, endSessions bool, set string, args ...any) error {
	return p.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE operators SET `+set+` WHERE name = $1`, append([]any{name}, args...)...)
		if err != nil {
			return fmt.Errorf("store: update operator: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("operator %q: %w", name, store.ErrNotFound)
		}
		if endSessions {
			if _, err := tx.Exec(ctx, `DELETE FROM console_sessions WHERE operator = $1`, name); err != nil {
				return fmt.Errorf("store: end the operator's console sessions: %w", err)
			}
		}
		return nil
	})
}

// DisableOperator stops an operator signing in and ends its sessions.
func (p *Postgres) DisableOperator(ctx context.Context, name string) error {
	return p.updateOperator(ctx, name, true, `disabled = true`)
}

// SetOperatorPassword replaces an operator's password hash, clears its
// failed sign-ins and ends its sessions.
func (p *Postgres) SetOperatorPassword(ctx context.Context, name, hash string) error {
	if hash == "" {
		return errors.New("store: empty password hash")
	}
	return p.updateOperator(ctx, name, true, `password_hash = $2, failed_sign_ins = 0, last_failed_at = ''`, hash)
}

// SignInFailed counts a failed sign-in and returns the count since the
// last success.
func (p *Postgres) SignInFailed(ctx context.Context, name string, at time.Time) (int, error) {
	var n int
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE operators SET failed_sign_ins = failed_sign_ins + 1, last_failed_at = $2 WHERE name = $1
			RETURNING failed_sign_ins`, name, store.Timestamp(at)).Scan(&n)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("operator %q: %w", name, store.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: count failed sign-in: %w", err)
		}
		return nil
	})
	return n, err
}

// SignInSucceeded clears the failed sign-ins.
func (p *Postgres) SignInSucceeded(ctx context.Context, name string) error {
	return p.updateOperator(ctx, name, false, `failed_sign_ins = 0, last_failed_at = ''`)
}

const operatorRecordColumns = `id, at, operator, action, target, outcome, detail, prev_hash, hash`

func scanOperatorAction(row pgx.CollectableRow) (store.OperatorAction, error) {
	var a store.OperatorAction
	var at string
	err := row.Scan(&a.ID, &at, &a.Operator, &a.Action, &a.Target, &a.Outcome, &a.Detail, &a.PrevHash, &a.Hash)
	a.At = store.ParseTimestamp(at)
	return a, err
}

// RecordOperatorAction appends a to the operator record, chained under
// the lock of its head.
func (p *Postgres) RecordOperatorAction(ctx context.Context, a store.OperatorAction) error {
	if err := store.CheckOperatorAction(a); err != nil {
		return err
	}
	return p.inTx(ctx, func(tx pgx.Tx) error {
		var last int64
		var prev string
		if err := tx.QueryRow(ctx, `SELECT last_id, hash FROM operator_record_head FOR UPDATE`).Scan(&last, &prev); err != nil {
			return fmt.Errorf("store: read the head of the operator record: %w", err)
		}
		e := store.NextOperatorAction(last, prev, a)
		if _, err := tx.Exec(ctx, `INSERT INTO operator_record (`+operatorRecordColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			e.ID, store.Timestamp(e.At), e.Operator, e.Action, e.Target, e.Outcome, e.Detail, e.PrevHash, e.Hash); err != nil {
			return fmt.Errorf("store: record operator action: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE operator_record_head SET last_id = $1, hash = $2`, e.ID, e.Hash); err != nil {
			return fmt.Errorf("store: move the head of the operator record: %w", err)
		}
		return nil
	})
}

// OperatorActions returns the newest limit entries, newest first.
func (p *Postgres) OperatorActions(ctx context.Context, limit int) ([]store.OperatorAction, error) {
	if limit <= 0 {
		limit = 100
	}
	return query(ctx, p, `SELECT `+operatorRecordColumns+` FROM operator_record ORDER BY id DESC LIMIT $1`, []any{limit}, scanOperatorAction)
}

// VerifyOperatorRecord recomputes the operator record's chain
// (store.CheckOperatorLink) in one snapshot.
func (p *Postgres) VerifyOperatorRecord(ctx context.Context) (store.VerifyReport, error) {
	if p.closed.Load() {
		return store.VerifyReport{}, store.ErrClosed
	}
	var rep store.VerifyReport
	err := pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		rep, err = VerifyOperatorRecordIn(ctx, tx)
		return err
	})
	return rep, err
}

// VerifyOperatorRecordIn verifies the operator record as tx sees it (for
// storecopy, before its copy commits).
func VerifyOperatorRecordIn(ctx context.Context, tx pgx.Tx) (store.VerifyReport, error) {
	var issued int64
	if err := tx.QueryRow(ctx, `SELECT last_id FROM operator_record_head`).Scan(&issued); err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the head of the operator record: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT `+operatorRecordColumns+` FROM operator_record ORDER BY id`)
	if err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the operator record: %w", err)
	}
	defer rows.Close()
	check := store.NewChainCheck(0, "")
	for rows.Next() {
		a, err := scanOperatorAction(rows)
		if err != nil {
			return store.VerifyReport{}, fmt.Errorf("store: read the operator record: %w", err)
		}
		store.CheckOperatorLink(check, a)
	}
	if err := rows.Err(); err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the operator record: %w", err)
	}
	return check.Report(issued), nil
}

// DeliveredSince returns, per recipient and hour, the deliveries partners
// accepted from since on. Receipt times are text as store.Timestamp
// writes them: the first 13 characters are the hour.
func (p *Postgres) DeliveredSince(ctx context.Context, since time.Time) ([]store.DeliveredHour, error) {
	return query(ctx, p, `SELECT recipient, substr(at, 1, 13), COUNT(*) FROM receipts WHERE at >= $1
		GROUP BY recipient, substr(at, 1, 13) ORDER BY recipient, substr(at, 1, 13)`, []any{store.Timestamp(since)},
		func(row pgx.CollectableRow) (store.DeliveredHour, error) {
			var d store.DeliveredHour
			var hour string
			if err := row.Scan(&d.Recipient, &hour, &d.Count); err != nil {
				return d, err
			}
			h, err := time.Parse("2006-01-02T15", hour)
			if err != nil {
				return d, fmt.Errorf("store: receipt hour %q: %w", hour, err)
			}
			d.Hour = h
			return d, nil
		})
}

// DeliveredTotals returns every delivery partners accepted, by recipient.
func (p *Postgres) DeliveredTotals(ctx context.Context) (map[string]int64, error) {
	rows, err := query(ctx, p, `SELECT recipient, COUNT(*) FROM receipts GROUP BY recipient`, nil,
		func(row pgx.CollectableRow) (store.DeliveredHour, error) {
			var d store.DeliveredHour
			return d, row.Scan(&d.Recipient, &d.Count)
		})
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Recipient] = r.Count
	}
	return out, nil
}

// ReferralsByCorrelation returns the ids of the referrals whose disclosure
// record names correlation id id, oldest first (no index: a rare search).
// It seals what is pending first, as every read of the record does.
func (p *Postgres) ReferralsByCorrelation(ctx context.Context, id string) ([]string, error) {
	if id == "" {
		return nil, nil
	}
	if _, err := p.SealDisclosures(ctx, true); err != nil {
		return nil, err
	}
	return query(ctx, p, `SELECT referral_id FROM disclosures WHERE correlation_id = $1 GROUP BY referral_id ORDER BY MIN(id)`,
		[]any{id}, func(row pgx.CollectableRow) (string, error) {
			var r string
			return r, row.Scan(&r)
		})
}
