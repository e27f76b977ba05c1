package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/iceshub/iceshub/internal/store"
)

// The disclosure record is the hash chain of package store (chain.go).
// With several writers it stays one line without making them wait for
// each other: a transaction that discloses writes its entries to
// disclosures_pending (appendDisclosures), in the same transaction as the
// delivery they record, so they are as durable as it is. Sealing
// (SealDisclosures) takes the pending entries in the order they were
// written, chains them after the head of the record (disclosure_head,
// locked for the sealing) and moves them into disclosures, in one
// transaction; every hub seals every sealInterval, and a hub that finds
// another sealing skips its turn. Reads see sealed and pending entries
// alike; verification seals first, so that it covers everything recorded
// before it began.

const disclosureColumns = `id, at, referral_id, correlation_id, recipient, kind, fields, purpose, lawful_basis, outcome, detail, subject, prev_hash, hash`

func scanEntry(row pgx.CollectableRow) (store.ChainEntry, error) {
	var e store.ChainEntry
	err := row.Scan(&e.ID, &e.At, &e.ReferralID, &e.CorrelationID, &e.Recipient, &e.Kind, &e.Fields, &e.Purpose,
		&e.LawfulBasis, &e.Outcome, &e.Detail, &e.Subject, &e.PrevHash, &e.Hash)
	return e, err
}

// appendDisclosures records ds in tx, to be sealed into the chain.
func appendDisclosures(ctx context.Context, tx execer, ds []store.Disclosure) error {
	if len(ds) == 0 {
		return nil
	}
	// One INSERT of arrays: a round trip, where COPY takes three.
	cols := make([][]string, len(pendingColumns))
	var subjects, referrals []string
	for _, d := range ds {
		e, err := store.NewChainEntry(0, "", d)
		if err != nil {
			return err
		}
		for j, v := range []string{e.At, e.ReferralID, e.CorrelationID, e.Recipient, e.Kind, e.Fields, e.Purpose, e.LawfulBasis,
			e.Outcome, e.Detail, e.Subject} {
			cols[j] = append(cols[j], v)
		}
		if e.Subject != "" {
			subjects, referrals = append(subjects, e.Subject), append(referrals, e.ReferralID)
		}
	}
	args := make([]any, len(cols))
	for i, c := range cols {
		args[i] = c
	}
	if _, err := tx.Exec(ctx, `INSERT INTO disclosures_pending (`+strings.Join(pendingColumns, ", ")+`)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::text[], $11::text[])`, args...); err != nil {
		return fmt.Errorf("store: record disclosure: %w", err)
	}
	return indexSubjects(ctx, tx, subjects, referrals)
}

var pendingColumns = []string{"at", "referral_id", "correlation_id", "recipient", "kind", "fields", "purpose", "lawful_basis",
	"outcome", "detail", "subject"}

// indexSubjects records, once per person and referral, that the record
// names them.
func indexSubjects(ctx context.Context, tx execer, subjects, referrals []string) error {
	if len(subjects) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO disclosure_subjects (subject, referral_id) SELECT * FROM unnest($1::text[], $2::text[])
		ON CONFLICT DO NOTHING`, subjects, referrals); err != nil {
		return fmt.Errorf("store: index the disclosure's subject: %w", err)
	}
	return nil
}

// sealBatch bounds how many pending entries one sealing moves.
const sealBatch = 2000

// SealDisclosures chains the pending entries onto the record, oldest
// first, and reports how many it sealed. When another hub is sealing (or
// retention is cutting the record) it returns 0 at once, unless wait is
// set.
func (p *Postgres) SealDisclosures(ctx context.Context, wait bool) (int, error) {
	lock := `SELECT last_id, hash FROM disclosure_head FOR UPDATE SKIP LOCKED`
	if wait {
		lock = `SELECT last_id, hash FROM disclosure_head FOR UPDATE`
	}
	total := 0
	for {
		// Nothing pending (an idle hub, every 200 ms): no transaction, and
		// no lock written on the head row.
		var pending bool
		if err := p.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM disclosures_pending)`).Scan(&pending); err != nil {
			return total, fmt.Errorf("store: look for pending disclosures: %w", err)
		}
		if !pending {
			return total, nil
		}
		n := 0
		err := p.inTx(ctx, func(tx pgx.Tx) error {
			n = 0
			var id int64
			var prev string
			if err := tx.QueryRow(ctx, lock).Scan(&id, &prev); errors.Is(err, pgx.ErrNoRows) {
				return nil // another hub is sealing
			} else if err != nil {
				return fmt.Errorf("store: hold the head of the disclosure record: %w", err)
			}
			return sealPending(ctx, tx, id, prev, &n)
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < sealBatch {
			return total, nil
		}
	}
}

// sealPending moves up to sealBatch pending entries into the chain after
// entry id, whose hash is prev, in tx, which holds the head.
func sealPending(ctx context.Context, tx pgx.Tx, id int64, prev string, n *int) error {
	rows, err := tx.Query(ctx, `SELECT seq, at, referral_id, correlation_id, recipient, kind, fields, purpose, lawful_basis, outcome, detail, subject
		FROM disclosures_pending ORDER BY seq LIMIT $1`, sealBatch)
	if err != nil {
		return fmt.Errorf("store: read pending disclosures: %w", err)
	}
	var seqs []int64
	var entries []store.ChainEntry
	for rows.Next() {
		var seq int64
		var e store.ChainEntry
		if err := rows.Scan(&seq, &e.At, &e.ReferralID, &e.CorrelationID, &e.Recipient, &e.Kind, &e.Fields, &e.Purpose,
			&e.LawfulBasis, &e.Outcome, &e.Detail, &e.Subject); err != nil {
			rows.Close()
			return err
		}
		id++
		e.ID, e.PrevHash = id, prev
		e.Hash = e.Digest()
		prev = e.Hash
		seqs, entries = append(seqs, seq), append(entries, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(entries) == 0 {
		return err
	}
	if err := insertEntries(ctx, tx, entries); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM disclosures_pending WHERE seq = ANY($1)`, seqs); err != nil {
		return fmt.Errorf("store: seal pending disclosures: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE disclosure_head SET last_id = $1, hash = $2`, id, prev); err != nil {
		return fmt.Errorf("store: move the head of the disclosure record: %w", err)
	}
	*n = len(entries)
	return nil
}

// insertEntries writes chain entries as they are.
func insertEntries(ctx context.Context, tx pgx.Tx, entries []store.ChainEntry) error {
	rows := make([][]any, len(entries))
	for i, e := range entries {
		rows[i] = []any{e.ID, e.At, e.ReferralID, e.CorrelationID, e.Recipient, e.Kind, e.Fields, e.Purpose, e.LawfulBasis,
			e.Outcome, e.Detail, e.Subject, e.PrevHash, e.Hash}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"disclosures"}, []string{"id", "at", "referral_id", "correlation_id", "recipient",
		"kind", "fields", "purpose", "lawful_basis", "outcome", "detail", "subject", "prev_hash", "hash"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("store: record disclosure: %w", err)
	}
	return nil
}

// Disclosures returns the disclosure record of one referral, oldest first.
func (p *Postgres) Disclosures(ctx context.Context, referralID string) ([]store.Disclosure, error) {
	return p.disclosuresWhere(ctx, "referral_id = $1", referralID)
}

// DisclosuresBySubject returns every entry about one person, across
// referrals, oldest first.
func (p *Postgres) DisclosuresBySubject(ctx context.Context, subject string) ([]store.Disclosure, error) {
	if subject == "" {
		return nil, errors.New("store: empty subject")
	}
	return p.disclosuresWhere(ctx, `referral_id IN (SELECT referral_id FROM disclosure_subjects WHERE subject = $1) AND subject = $1`, subject)
}

// disclosuresWhere seals what is pending, then reads the entries where
// says, in the order of the chain, then any written since the sealing in
// the order they were written (their ID 0: they have no place in the
// chain yet).
func (p *Postgres) disclosuresWhere(ctx context.Context, where string, args ...any) ([]store.Disclosure, error) {
	if p.closed.Load() {
		return nil, store.ErrClosed
	}
	if _, err := p.SealDisclosures(ctx, true); err != nil {
		return nil, err
	}
	entries, err := query(ctx, p, `SELECT `+disclosureColumns+` FROM (
			SELECT `+disclosureColumns+`, 0 AS part, id AS ord FROM disclosures WHERE `+where+`
			UNION ALL
			SELECT 0, at, referral_id, correlation_id, recipient, kind, fields, purpose, lawful_basis, outcome, detail, subject, '', '', 1, seq
			FROM disclosures_pending WHERE `+where+`) AS e ORDER BY part, ord`, args, scanEntry)
	if err != nil {
		return nil, err
	}
	out := make([]store.Disclosure, 0, len(entries))
	for _, e := range entries {
		d, err := e.Disclosure()
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// VerifyDisclosures seals what is pending, then recomputes the hash chain
// from the latest checkpoint, in one snapshot, and reports the first entry
// changed, removed or out of place.
func (p *Postgres) VerifyDisclosures(ctx context.Context) (store.VerifyReport, error) {
	if p.closed.Load() {
		return store.VerifyReport{}, store.ErrClosed
	}
	if _, err := p.SealDisclosures(ctx, true); err != nil {
		return store.VerifyReport{}, err
	}
	var rep store.VerifyReport
	err := pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		rep, err = verifyChain(ctx, tx)
		return err
	})
	return rep, err
}

func verifyChain(ctx context.Context, tx pgx.Tx) (store.VerifyReport, error) {
	var (
		issued, upto int64
		head         string
	)
	if err := tx.QueryRow(ctx, `SELECT (SELECT last_id FROM disclosure_head),
		COALESCE((SELECT upto_id FROM disclosure_checkpoints ORDER BY upto_id DESC LIMIT 1), 0),
		COALESCE((SELECT hash FROM disclosure_checkpoints ORDER BY upto_id DESC LIMIT 1), '')`).Scan(&issued, &upto, &head); err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the head of the disclosure record: %w", err)
	}
	check := store.NewChainCheck(upto, head)
	rows, err := tx.Query(ctx, `SELECT `+disclosureColumns+` FROM disclosures ORDER BY id`)
	if err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the disclosure record: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return store.VerifyReport{}, fmt.Errorf("store: read the disclosure record: %w", err)
		}
		check.Add(e)
	}
	if err := rows.Err(); err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the disclosure record: %w", err)
	}
	return check.Report(issued), nil
}

// PruneDisclosuresBefore removes the oldest entries recorded before cutoff
// (a prefix of the chain) and writes a checkpoint of the last removed
// entry in the same transaction, after verifying the chain: nothing is
// removed from a broken one.
func (p *Postgres) PruneDisclosuresBefore(ctx context.Context, cutoff time.Time) (int, error) {
	return p.prunePrefix(ctx, cutoff, func(context.Context, pgx.Tx) (func(time.Time, string) time.Time, error) {
		return func(at time.Time, _ string) time.Time { return at }, nil
	})
}

// PruneInactiveSubjects removes the entries of people whose latest entry
// is before cutoff, as a prefix of the chain (see the embedded engine's
// account of why only a prefix).
func (p *Postgres) PruneInactiveSubjects(ctx context.Context, cutoff time.Time) (int, error) {
	return p.prunePrefix(ctx, cutoff, func(ctx context.Context, tx pgx.Tx) (func(time.Time, string) time.Time, error) {
		rows, err := tx.Query(ctx, `SELECT subject, at FROM disclosures WHERE subject != '' UNION ALL SELECT subject, at FROM disclosures_pending WHERE subject != ''`)
		if err != nil {
			return nil, fmt.Errorf("store: find last activity per subject: %w", err)
		}
		last := map[string]time.Time{}
		for rows.Next() {
			var sbj, at string
			if err := rows.Scan(&sbj, &at); err != nil {
				rows.Close()
				return nil, err
			}
			if t := store.ParseTimestamp(at); t.After(last[sbj]) {
				last[sbj] = t
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return func(at time.Time, subject string) time.Time {
			if subject == "" {
				return at
			}
			return last[subject]
		}, nil
	})
}

// prunePrefix removes, in one transaction holding the head of the chain,
// the longest prefix of the record whose entries' effective time is before
// cutoff, and writes a checkpoint of the last removed entry.
func (p *Postgres) prunePrefix(ctx context.Context, cutoff time.Time,
	effective func(context.Context, pgx.Tx) (func(at time.Time, subject string) time.Time, error)) (int, error) {
	var removed int
	err := p.inTx(ctx, func(tx pgx.Tx) error {
		removed = 0
		// Hold the head: nothing is sealed while the chain is checked and
		// cut (entries still pending are recent, and never cut).
		if _, err := tx.Exec(ctx, `SELECT 1 FROM disclosure_head FOR UPDATE`); err != nil {
			return fmt.Errorf("store: hold the head of the disclosure record: %w", err)
		}
		rep, err := verifyChain(ctx, tx)
		if err != nil {
			return err
		}
		if !rep.OK {
			return fmt.Errorf("store: disclosure record is broken, nothing removed: %s", rep.Problem)
		}
		when, err := effective(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, at, subject, hash FROM disclosures ORDER BY id`)
		if err != nil {
			return fmt.Errorf("store: find entries to remove: %w", err)
		}
		var upto int64
		var hash string
		for rows.Next() {
			var id int64
			var at, subject, h string
			if err := rows.Scan(&id, &at, &subject, &h); err != nil {
				rows.Close()
				return err
			}
			if !when(store.ParseTimestamp(at), subject).Before(cutoff) {
				break
			}
			upto, hash = id, h
			removed++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if removed == 0 {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO disclosure_checkpoints (upto_id, hash, at) VALUES ($1, $2, $3)`,
			upto, hash, store.Timestamp(time.Time{})); err != nil {
			return fmt.Errorf("store: write checkpoint: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM disclosures WHERE id <= $1`, upto); err != nil {
			return fmt.Errorf("store: remove entries: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM disclosure_subjects s WHERE NOT EXISTS (SELECT 1 FROM disclosures d
			WHERE d.referral_id = s.referral_id AND d.subject = s.subject)`); err != nil {
			return fmt.Errorf("store: remove subjects no entry names: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return removed, nil
}

// VerifyIn verifies the disclosure record as tx sees it: for a tool that
// must check what it wrote before it commits (internal/store/storecopy).
func VerifyIn(ctx context.Context, tx pgx.Tx) (store.VerifyReport, error) {
	return verifyChain(ctx, tx)
}
