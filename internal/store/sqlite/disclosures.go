package sqlite

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"time"

	"github.com/iceshub/iceshub/internal/store"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// The disclosure record is the hash chain of package store (chain.go):
// entries are appended only inside Commit's transaction, on the one write
// connection, so the chain is linear; ids come from the AUTOINCREMENT
// sequence, so they are consecutive and sqlite_sequence is the last id
// given out. Retention removes a prefix (retention.go) by
// PruneInactiveSubjects or PruneDisclosuresBefore.

const disclosureColumns = `id, at, referral_id, correlation_id, recipient, kind, fields, purpose, lawful_basis, outcome, detail, subject, prev_hash, hash`

func scanEntry(st *sqlite.Stmt) store.ChainEntry {
	return store.ChainEntry{
		ID: st.ColumnInt64(0), At: st.ColumnText(1), ReferralID: st.ColumnText(2), CorrelationID: st.ColumnText(3),
		Recipient: st.ColumnText(4), Kind: st.ColumnText(5), Fields: st.ColumnText(6), Purpose: st.ColumnText(7),
		LawfulBasis: st.ColumnText(8), Outcome: st.ColumnText(9), Detail: st.ColumnText(10), Subject: st.ColumnText(11),
		PrevHash: st.ColumnText(12), Hash: st.ColumnText(13),
	}
}

// chainHead returns the last id the sequence gave out and the hash the next
// entry chains from: the newest entry's, else the latest checkpoint's, else
// "" for the first entry ever.
func chainHead(conn *sqlite.Conn) (lastID int64, prev string, err error) {
	q := `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'disclosures'), 0),
		COALESCE((SELECT hash FROM disclosures ORDER BY id DESC LIMIT 1),
		         (SELECT hash FROM disclosure_checkpoints ORDER BY upto_id DESC LIMIT 1), '')`
	err = sqlitex.Execute(conn, q, &sqlitex.ExecOptions{ResultFunc: func(st *sqlite.Stmt) error {
		lastID, prev = st.ColumnInt64(0), st.ColumnText(1)
		return nil
	}})
	if err != nil {
		return 0, "", fmt.Errorf("store: read the head of the disclosure record: %w", err)
	}
	return lastID, prev, nil
}

// appendDisclosures chains ds onto the record; conn must be in a write
// transaction.
func appendDisclosures(conn *sqlite.Conn, ds []store.Disclosure) error {
	if len(ds) == 0 {
		return nil
	}
	id, prev, err := chainHead(conn)
	if err != nil {
		return err
	}
	for _, d := range ds {
		id++
		e, err := store.NewChainEntry(id, prev, d)
		if err != nil {
			return err
		}
		if err := sqlitex.Execute(conn, `INSERT INTO disclosures (`+disclosureColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, &sqlitex.ExecOptions{Args: []any{
			e.ID, e.At, e.ReferralID, e.CorrelationID, e.Recipient, e.Kind, e.Fields, e.Purpose, e.LawfulBasis, e.Outcome,
			e.Detail, e.Subject, e.PrevHash, e.Hash,
		}}); err != nil {
			return fmt.Errorf("store: record disclosure: %w", err)
		}
		// Once per referral: a pair already there is left as it is, and
		// writes nothing.
		if e.Subject != "" {
			if err := sqlitex.Execute(conn, `INSERT OR IGNORE INTO disclosure_subjects (subject, referral_id) VALUES (?, ?)`,
				&sqlitex.ExecOptions{Args: []any{e.Subject, e.ReferralID}}); err != nil {
				return fmt.Errorf("store: index the disclosure's subject: %w", err)
			}
		}
		prev = e.Hash
	}
	return nil
}

// DisclosuresBySubject returns every entry of the disclosure record about
// one person, across referrals, oldest first: what a subject access request
// is answered from. subject is the keyed hash of the person's NHS number
// (internal/subject); an empty subject is an error, since entries recorded
// before subjects were have none.
func (s *SQLite) DisclosuresBySubject(ctx context.Context, subject string) ([]store.Disclosure, error) {
	if subject == "" {
		return nil, errors.New("store: empty subject")
	}
	return s.disclosuresWhere(ctx, `referral_id IN (SELECT referral_id FROM disclosure_subjects WHERE subject = ?) AND subject = ?`,
		subject, subject)
}

func (s *SQLite) disclosuresWhere(ctx context.Context, where string, args ...any) ([]store.Disclosure, error) {
	var out []store.Disclosure
	err := s.read(ctx, `SELECT `+disclosureColumns+` FROM disclosures WHERE `+where+` ORDER BY id`, args, func(st *sqlite.Stmt) error {
		d, err := scanEntry(st).Disclosure()
		if err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// VerifyDisclosures recomputes the hash chain of the disclosure record from
// the latest checkpoint, in one read transaction, and reports the first
// entry that was changed, removed or reordered. A broken chain is a report
// with OK false, not an error; the error is for a store that cannot be read.
func (s *SQLite) VerifyDisclosures(ctx context.Context) (store.VerifyReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return store.VerifyReport{}, store.ErrClosed
	}
	s.conn.SetInterrupt(ctx.Done())
	defer s.conn.SetInterrupt(nil)
	end := sqlitex.Transaction(s.conn) // a consistent snapshot, even with another process writing
	var err error
	defer end(&err)
	var rep store.VerifyReport
	rep, err = verifyChain(s.conn)
	return rep, err
}

func verifyChain(conn *sqlite.Conn) (store.VerifyReport, error) {
	var (
		issued, upto int64
		head         string
	)
	err := sqlitex.Execute(conn, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'disclosures'), 0),
		COALESCE((SELECT upto_id FROM disclosure_checkpoints ORDER BY upto_id DESC LIMIT 1), 0),
		COALESCE((SELECT hash FROM disclosure_checkpoints ORDER BY upto_id DESC LIMIT 1), '')`,
		&sqlitex.ExecOptions{ResultFunc: func(st *sqlite.Stmt) error {
			issued, upto, head = st.ColumnInt64(0), st.ColumnInt64(1), st.ColumnText(2)
			return nil
		}})
	if err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the disclosure sequence: %w", err)
	}
	check := store.NewChainCheck(upto, head)
	err = sqlitex.Execute(conn, `SELECT `+disclosureColumns+` FROM disclosures ORDER BY id`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error {
			check.Add(scanEntry(st))
			return nil
		}})
	if err != nil {
		return store.VerifyReport{}, fmt.Errorf("store: read the disclosure record: %w", err)
	}
	return check.Report(issued), nil
}

// PruneDisclosuresBefore removes the oldest entries of the disclosure record
// recorded before cutoff (stopping at the first entry at or after it, so
// that what is removed is always a prefix of the chain) and writes a
// checkpoint of the last removed entry in the same transaction. It verifies
// the chain first and removes nothing, returning an error, when the chain
// is broken: retention must not erase the evidence of tampering. It returns
// how many entries it removed.
func (s *SQLite) PruneDisclosuresBefore(ctx context.Context, cutoff time.Time) (int, error) {
	byOwnDate := func(*sqlite.Conn) (func(at time.Time, subject string) time.Time, error) {
		return func(at time.Time, _ string) time.Time { return at }, nil
	}
	return s.prunePrefix(ctx, cutoff, byOwnDate)
}

// prunePrefix removes, in one transaction, the longest prefix of the
// disclosure record whose entries' effective time is before cutoff, and
// writes a checkpoint of the last removed entry. effective is built inside
// the transaction and maps an entry's date and subject to the time that
// decides its removal. It verifies the chain first and removes nothing,
// returning an error, when the chain is broken: retention must not erase the
// evidence of tampering.
func (s *SQLite) prunePrefix(ctx context.Context, cutoff time.Time,
	effective func(conn *sqlite.Conn) (func(at time.Time, subject string) time.Time, error)) (int, error) {
	var removed int
	err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		rep, err := verifyChain(conn)
		if err != nil {
			return err
		}
		if !rep.OK {
			return fmt.Errorf("store: disclosure record is broken, nothing removed: %s", rep.Problem)
		}
		when, err := effective(conn)
		if err != nil {
			return err
		}
		var upto int64
		var hash string
		stop := errors.New("stop")
		err = sqlitex.Execute(conn, `SELECT id, at, subject, hash FROM disclosures ORDER BY id`, &sqlitex.ExecOptions{
			ResultFunc: func(st *sqlite.Stmt) error {
				if !when(parseTS(st.ColumnText(1)), st.ColumnText(2)).Before(cutoff) {
					return stop
				}
				upto, hash = st.ColumnInt64(0), st.ColumnText(3)
				removed++
				return nil
			}})
		if err != nil && !errors.Is(err, stop) {
			return fmt.Errorf("store: find entries to remove: %w", err)
		}
		if removed == 0 {
			return nil
		}
		if err := sqlitex.Execute(conn, `INSERT INTO disclosure_checkpoints (upto_id, hash, at) VALUES (?, ?, ?)`,
			&sqlitex.ExecOptions{Args: []any{upto, hash, ts(time.Time{})}}); err != nil {
			return fmt.Errorf("store: write checkpoint: %w", err)
		}
		if err := sqlitex.Execute(conn, `DELETE FROM disclosures WHERE id <= ?`, &sqlitex.ExecOptions{Args: []any{upto}}); err != nil {
			return fmt.Errorf("store: remove entries: %w", err)
		}
		// A person no entry names any more is not kept in the index either.
		if err := sqlitex.Execute(conn, `DELETE FROM disclosure_subjects WHERE NOT EXISTS (SELECT 1 FROM disclosures d
			WHERE d.referral_id = disclosure_subjects.referral_id AND d.subject = disclosure_subjects.subject)`, nil); err != nil {
			return fmt.Errorf("store: remove subjects no entry names: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return removed, nil
}

// checkSubjectKey records a keyed check value of key on first use and
// compares it afterwards. The key itself is never stored.
func checkSubjectKey(conn *sqlite.Conn, key []byte) error {
	if key == nil {
		return nil
	}
	check, err := store.SubjectKeyCheck(key)
	if err != nil {
		return err
	}
	if err := sqlitex.Execute(conn, `INSERT OR IGNORE INTO meta (key, value) VALUES ('subject_key_check', ?)`,
		&sqlitex.ExecOptions{Args: []any{check}}); err != nil {
		return fmt.Errorf("store: record subject key check: %w", err)
	}
	var stored string
	if err := sqlitex.Execute(conn, `SELECT value FROM meta WHERE key = 'subject_key_check'`, &sqlitex.ExecOptions{
		ResultFunc: func(st *sqlite.Stmt) error { stored = st.ColumnText(0); return nil }}); err != nil {
		return fmt.Errorf("store: read subject key check: %w", err)
	}
	if !hmac.Equal([]byte(stored), []byte(check)) {
		return store.ErrSubjectKeyMismatch
	}
	return nil
}
