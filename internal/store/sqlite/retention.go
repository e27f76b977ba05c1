package sqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"zombiezen.com/go/sqlite"

	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"zombiezen.com/go/sqlite/sqlitex"
)

// Retention: what the store deletes, and why it may.
//
//   - Topic messages (referral.received, deliver.*) are the full referral and
//     the partners' copies. Once every consumer group of a topic has
//     acknowledged a message it is never read again, so PurgeMessages
//     deletes acknowledged rows older than a cutoff. The AUTOINCREMENT
//     sequence (sqlite_sequence) keeps the offset high-water mark, so new
//     messages never reuse an offset, and subscribers read "offset >
//     acked", which needs no old row.
//   - Idempotency records hold a request's keys and the answer the sender
//     got (ids and diagnostics that never quote the bundle): no personal
//     data, but nothing operations need once senders stop retrying. After
//     the cutoff a resent request is taken as new.
//   - The disclosure record is kept for years after a person's last
//     activity (PruneInactiveSubjects).
//   - The referral record (the full referral and its cross-references) is
//     what return flows are cut from, so it stays while the order is open;
//     once the order is closed (collected or cancelled) and nothing about it
//     waits in a parked lane, PurgeClosedReferrals deletes it at the same
//     age as messages. Events arriving later are refused as unknown.
//   - Delivery receipts (ids only) go at the same age as messages: by then
//     the copy they guard against sending twice is gone too.
//   - Held messages and dead letters are kept whatever their age: held ones
//     wait for a person, and a dead letter stays as the evidence of what a
//     partner refused even after it is replayed or discarded (the decision
//     is recorded beside it, deadletters.go).
//   - The statistics table (statistics.go) is never deleted: it holds
//     counts by month, council, priority, setting and equipment class,
//     nothing that identifies anyone, and the statistics of a month must
//     outlive its referrals.

// ApplyRetention deletes what p allows: PurgeMessages, PurgeIdempotency and
// PruneInactiveSubjects, each in its own transaction. On error it returns
// what it deleted before the error.
func (s *SQLite) ApplyRetention(ctx context.Context, p store.RetentionPolicy) (store.RetentionReport, error) {
	rep := store.RetentionReport{Messages: map[string]int{}}
	if !p.MessagesBefore.IsZero() {
		msgs, err := s.PurgeMessages(ctx, p.MessagesBefore)
		if err != nil {
			return rep, err
		}
		rep.Messages = msgs
		if rep.IdempotencyKeys, err = s.PurgeIdempotency(ctx, p.MessagesBefore); err != nil {
			return rep, err
		}
		if rep.Referrals, err = s.PurgeClosedReferrals(ctx, p.MessagesBefore); err != nil {
			return rep, err
		}
		if rep.Receipts, err = s.PurgeReceipts(ctx, p.MessagesBefore); err != nil {
			return rep, err
		}
	}
	if !p.SubjectsInactiveSince.IsZero() {
		n, err := s.PruneInactiveSubjects(ctx, p.SubjectsInactiveSince)
		if err != nil {
			return rep, err
		}
		rep.Disclosures = n
	}
	s.checkpoint(ctx)
	return rep, nil
}

// checkpoint copies the write-ahead log into the database and truncates it,
// so that the space retention freed is reused and the log does not grow
// with traffic. Readers in the middle of a query can stop it short; it is
// best effort, and SQLite's own checkpoints go on regardless.
func (s *SQLite) checkpoint(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return
	}
	s.conn.SetInterrupt(ctx.Done())
	defer s.conn.SetInterrupt(nil)
	_ = sqlitex.ExecuteTransient(s.conn, "PRAGMA wal_checkpoint(TRUNCATE);", nil)
}

// PurgeMessages deletes, from every topic, the messages created before
// cutoff that every consumer group of the topic has acknowledged. A message
// not yet acknowledged by any group is never deleted, whatever its age, nor
// is any message of a topic no consumer has subscribed to. It returns the
// number deleted per topic.
func (s *SQLite) PurgeMessages(ctx context.Context, cutoff time.Time) (map[string]int, error) {
	out := map[string]int{}
	err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		var topics []string
		if err := sqlitex.Execute(conn, `SELECT name FROM sqlite_master WHERE type = 'table'
			AND name GLOB 'watermill_*' AND name NOT GLOB 'watermill_offsets_*' ORDER BY name`, &sqlitex.ExecOptions{
			ResultFunc: func(st *sqlite.Stmt) error {
				topics = append(topics, strings.TrimPrefix(st.ColumnText(0), "watermill_"))
				return nil
			}}); err != nil {
			return fmt.Errorf("store: list topics: %w", err)
		}
		for _, t := range topics {
			if !topicPattern.MatchString(t) {
				continue
			}
			n, err := purgeTopic(conn, t, cutoff)
			if err != nil {
				return err
			}
			if n > 0 {
				out[t] = n
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// purgeTopic deletes the acknowledged prefix of topic t created before
// cutoff. created_at is written by the Watermill publisher in local time
// with its offset (RFC 3339), so it is compared as a time, not as text.
func purgeTopic(conn *sqlite.Conn, t string, cutoff time.Time) (int, error) {
	var (
		acked  int64
		groups int
	)
	if err := sqlitex.Execute(conn, `SELECT COUNT(*), COALESCE(MIN(offset_acked), 0) FROM 'watermill_offsets_`+t+`'`,
		&sqlitex.ExecOptions{ResultFunc: func(st *sqlite.Stmt) error {
			groups, acked = st.ColumnInt(0), st.ColumnInt64(1)
			return nil
		}}); err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return 0, nil
		}
		return 0, fmt.Errorf("store: read acknowledged offset of %s: %w", t, err)
	}
	if groups == 0 || acked == 0 {
		return 0, nil
	}
	var upto int64
	n := 0
	stop := errors.New("stop")
	err := sqlitex.Execute(conn, `SELECT "offset", created_at FROM 'watermill_`+t+`' WHERE "offset" <= ? ORDER BY "offset"`,
		&sqlitex.ExecOptions{Args: []any{acked}, ResultFunc: func(st *sqlite.Stmt) error {
			created, err := time.Parse(time.RFC3339Nano, st.ColumnText(1))
			if err != nil || !created.Before(cutoff) {
				return stop // keep it and everything after it
			}
			upto = st.ColumnInt64(0)
			n++
			return nil
		}})
	if err != nil && !errors.Is(err, stop) {
		return 0, fmt.Errorf("store: find old messages of %s: %w", t, err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := sqlitex.Execute(conn, `DELETE FROM 'watermill_`+t+`' WHERE "offset" <= ?`,
		&sqlitex.ExecOptions{Args: []any{upto}}); err != nil {
		return 0, fmt.Errorf("store: delete old messages of %s: %w", t, err)
	}
	return n, nil
}

// PurgeIdempotency deletes the idempotency records created before cutoff,
// except those of published statistics (store.StatisticsKeyPrefix), and
// returns how many it deleted.
func (s *SQLite) PurgeIdempotency(ctx context.Context, cutoff time.Time) (int, error) {
	return s.purgeOlder(ctx, "idempotency records", cutoff, `SELECT key, created_at FROM idempotency WHERE substr(key, 1, ?) <> ?`,
		[]any{len(store.StatisticsKeyPrefix), store.StatisticsKeyPrefix},
		`DELETE FROM idempotency WHERE key = ?`)
}

// purgeOlder deletes, in one transaction, what query finds older than
// cutoff: query selects a key (one column or more) and, last, a timestamp
// (RFC 3339, compared as a time, not as text), and each of deletes runs
// with the key's columns. It returns how many keys it deleted; what names
// them in errors.
func (s *SQLite) purgeOlder(ctx context.Context, what string, cutoff time.Time, query string, args []any, deletes ...string) (int, error) {
	n := 0
	err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		var old [][]any
		if err := sqlitex.Execute(conn, query, &sqlitex.ExecOptions{Args: args,
			ResultFunc: func(st *sqlite.Stmt) error {
				last := st.ColumnCount() - 1
				if t := parseTS(st.ColumnText(last)); !t.IsZero() && t.Before(cutoff) {
					key := make([]any, last)
					for i := range key {
						key[i] = st.ColumnText(i)
					}
					old = append(old, key)
				}
				return nil
			}}); err != nil {
			return fmt.Errorf("store: find old %s: %w", what, err)
		}
		for _, k := range old {
			for _, d := range deletes {
				if err := sqlitex.Execute(conn, d, &sqlitex.ExecOptions{Args: k}); err != nil {
					return fmt.Errorf("store: delete old %s: %w", what, err)
				}
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}

// PurgeReceipts deletes the delivery receipts recorded before cutoff. A
// receipt stops a copy offered again (after a crash) from being sent again;
// by the cutoff the copy itself is deleted (PurgeMessages), so nothing can
// offer it again. The partner's reference lives on in the cross-reference.
func (s *SQLite) PurgeReceipts(ctx context.Context, cutoff time.Time) (int, error) {
	return s.purgeOlder(ctx, "delivery receipts", cutoff, `SELECT referral_id, idempotency_key, at FROM receipts`, nil,
		`DELETE FROM receipts WHERE referral_id = ? AND idempotency_key = ?`)
}

// PurgeClosedReferrals deletes the records and case references of referrals
// whose order is closed (a terminal status) and whose record last changed
// before cutoff, unless a delivery about them is still parked. It returns
// how many referrals it deleted.
func (s *SQLite) PurgeClosedReferrals(ctx context.Context, cutoff time.Time) (int, error) {
	return s.purgeOlder(ctx, "records of closed orders", cutoff, `SELECT r.referral_id, r.updated_at FROM referrals r
		WHERE r.status IN (?, ?) AND NOT EXISTS (SELECT 1 FROM parked p WHERE p.referral_id = r.referral_id)`,
		[]any{string(model.StatusCollected), string(model.StatusCancelled)},
		`DELETE FROM case_refs WHERE referral_id = ?`, `DELETE FROM referrals WHERE referral_id = ?`)
}

// PruneInactiveSubjects removes the disclosure entries of people whose
// latest entry (their last activity) is before cutoff, keeping the hash
// chain verifiable. Entries without a subject (recorded before subjects
// were) count by their own date.
//
// The chain is verified from a checkpoint over a prefix (see
// PruneDisclosuresBefore), so it removes only a prefix: it walks the record
// oldest first and stops at the first entry that must be kept, that is one
// after cutoff or one about a person active since cutoff. Removing entries
// from the middle of the chain would leave gaps verification cannot tell
// from tampering. The price: an old entry of a person still using the
// service holds back the removal of every entry after it, until that
// person, too, has been inactive long enough. Entries are never kept for
// less than the retention period, only sometimes for longer.
//
// Like PruneDisclosuresBefore it verifies the chain first, removes nothing
// from a broken one (returning an error), and writes the checkpoint in the
// same transaction. It returns how many entries it removed.
func (s *SQLite) PruneInactiveSubjects(ctx context.Context, cutoff time.Time) (int, error) {
	byLastActivity := func(conn *sqlite.Conn) (func(at time.Time, subject string) time.Time, error) {
		last := map[string]time.Time{}
		if err := sqlitex.Execute(conn, `SELECT subject, at FROM disclosures WHERE subject != ''`, &sqlitex.ExecOptions{
			ResultFunc: func(st *sqlite.Stmt) error {
				sbj, at := st.ColumnText(0), parseTS(st.ColumnText(1))
				if at.After(last[sbj]) {
					last[sbj] = at
				}
				return nil
			}}); err != nil {
			return nil, fmt.Errorf("store: find last activity per subject: %w", err)
		}
		return func(at time.Time, subject string) time.Time {
			if subject == "" {
				return at
			}
			return last[subject]
		}, nil
	}
	return s.prunePrefix(ctx, cutoff, byLastActivity)
}
