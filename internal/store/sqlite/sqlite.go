// Package sqlite is the store's embedded engine: one SQLite file (pure Go,
// no cgo) in the data directory, holding the durable topics, the
// idempotency records, the referral cross-references, the disclosure record,
// held messages and dead letters. It reads and writes the types of package
// store (internal/store), which it imports; nothing there imports it.
package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/stats"
	"github.com/iceshub/iceshub/internal/store"
)

// FileName is the database file inside the data directory.
const FileName = "iceshub.db"

// Options configure Open.
type Options struct {
	// DataDir is created if missing (mode 0700); the database is
	// DataDir/iceshub.db, its files mode 0600 (files.go).
	DataDir string
	// PollInterval is how often an idle subscription looks for messages.
	// Default 50ms.
	PollInterval time.Duration
	// Logger receives Watermill's own logs. Default: none.
	Logger watermill.LoggerAdapter
	// SubjectKey, when set, is the key of the subjects in the disclosure
	// record (see internal/subject). The store never keeps it: it keeps a
	// keyed check value, and Open fails with ErrSubjectKeyMismatch when a
	// different key is given later, because subjects recorded under one key
	// cannot be found under another. Nil skips the check (tools that do not
	// look people up, tests).
	SubjectKey []byte
	// InFlight is how many messages of one topic a subscriber hands out at
	// once (see NewSubscriber); never two about the same referral.
	// Default 1.
	InFlight int
	// CommitDelay is how long, at most, a group commit waits for more
	// callers when the store is busy (at least two expected within the
	// delay at the recent rate); 0 never waits. Under load a few more
	// callers per transaction share its pages and its fsync: on the
	// development machine 1ms cut the hub's CPU per referral by a tenth
	// or more and raised delivery by as much, while a quiet hub, where
	// callers come one at a time, never waits.
	CommitDelay time.Duration
	// Keyring seals what can hold personal data (see crypt.go). Nil means
	// the keyring of the environment (crypt.EnvKey), else of the data
	// directory's crypt.FileName, generated there when missing: the store
	// never writes a payload in clear.
	Keyring *crypt.Keyring
}

// SQLite is the embedded store: one SQLite file (pure Go, no cgo) in WAL mode
// with synchronous=FULL, so that a committed message survives a crash of the
// process or the machine. It is safe for concurrent use: writes are
// serialised on one connection, subscribers read on their own.
type SQLite struct {
	path string
	opts Options

	mu      sync.Mutex // guards conn, and so every write transaction
	conn    *sqlite.Conn
	readers *sqlitex.Pool
	// closed is set under mu by Close, but read without it: a reader or a
	// caller about to submit must not wait for the commit in progress
	// (an fsync) to learn that the store is open.
	closed atomic.Bool

	// Group commit (withTx): requests, and the committer's stop and end;
	// how many groups it committed and the callers they carried.
	txs             chan *txRequest
	groups, callers atomic.Int64
	stop, stopped   chan struct{}
	// Shared reads (readShared): requests, and the reader's end.
	sharedReads   chan *sharedRead
	readerStopped chan struct{}
	// logRetryAt is when keepLogShort may try again after readers kept
	// it from restarting the log (the committer's alone).
	logRetryAt time.Time
	stopOnce   sync.Once
	// topics holds the topics whose tables exist. It is written under both
	// mu and topicsMu, so the writer reads it under mu and everyone else
	// under topicsMu, without waiting for a commit.
	topicsMu sync.RWMutex
	topics   map[string]bool
	keys     *crypt.Keyring
	sealer   store.Sealer // with keys
	// published holds the topics the transaction being committed
	// published to (guarded by mu); after the commit their queues are
	// woken (subscriber.go).
	published map[string]bool
	// pending holds the messages the group in progress wrote, with the
	// caller that wrote each (caller, the one running); recent what
	// committed groups wrote, for the queues (recent.go). pending and
	// caller are the committer's, under mu.
	pending []pendingRecent
	caller  int
	recent  recentMessages
	wakers  store.Wakers
}

// SQLite implements the whole store contract.
var (
	_ store.Committer    = (*SQLite)(nil)
	_ store.Topics       = (*SQLite)(nil)
	_ store.Intake       = (*SQLite)(nil)
	_ store.Deliveries   = (*SQLite)(nil)
	_ store.DeadLetters  = (*SQLite)(nil)
	_ store.HeldMessages = (*SQLite)(nil)
	_ store.Audit        = (*SQLite)(nil)
	_ store.Retention    = (*SQLite)(nil)
	_ store.Keys         = (*SQLite)(nil)
	_ store.Statistics   = (*SQLite)(nil)
	_ store.Replays      = (*SQLite)(nil)
	_ store.Health       = (*SQLite)(nil)
	_ store.Engine       = (*SQLite)(nil)
)

// Open opens (creating if needed) the store in opts.DataDir.
func Open(opts Options) (*SQLite, error) {
	if opts.DataDir == "" {
		return nil, errors.New("store: empty data directory")
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	if opts.CommitDelay < 0 {
		return nil, fmt.Errorf("store: negative commit delay %s", opts.CommitDelay)
	}
	if opts.Logger == nil {
		opts.Logger = watermill.NopLogger{}
	}
	if err := ensureDataDir(opts.DataDir); err != nil {
		return nil, err
	}
	keys, err := loadKeyring(opts)
	if err != nil {
		return nil, err
	}
	if err := restrictDatabaseFiles(opts.DataDir); err != nil {
		return nil, err
	}
	path := filepath.Join(opts.DataDir, FileName)
	conn, err := sqlite.OpenConn(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	conn.SetBusyTimeout(writerBusyTimeout)
	// synchronous=FULL: an acknowledged referral must survive power loss,
	// not only a crash of the process.
	// journal_size_limit: after a checkpoint has reset the write-ahead log,
	// it is truncated to this size rather than kept at its largest.
	if err := sqlitex.ExecuteTransient(conn, "PRAGMA journal_size_limit="+strconv.Itoa(walLimit)+";", nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: set journal size limit in %s: %w", path, err)
	}
	if err := sqlitex.ExecuteTransient(conn, "PRAGMA synchronous=FULL;", nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: set synchronous in %s: %w", path, err)
	}
	// The write connection's page cache holds the index pages that inserts
	// touch at random (idempotency keys, referral ids), so that a commit
	// does not first read them back from the file: 16 MiB.
	if err := sqlitex.ExecuteTransient(conn, "PRAGMA cache_size=-16384;", nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: set cache size in %s: %w", path, err)
	}
	if _, err := migrate(context.Background(), path); err != nil {
		conn.Close()
		return nil, err
	}
	if err := checkSubjectKey(conn, opts.SubjectKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: %s: %w", path, err)
	}
	// Readers: their own connections, so that reads never queue behind a
	// write transaction's fsync on conn.
	readers, err := sqlitex.NewPool(path, sqlitex.PoolOptions{PoolSize: 4})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("store: reader connections: %w", err)
	}
	s := &SQLite{path: path, opts: opts, conn: conn, readers: readers, topics: map[string]bool{}, keys: keys, sealer: store.Sealer{Keys: keys},
		txs: make(chan *txRequest), stop: make(chan struct{}), stopped: make(chan struct{}),
		sharedReads: make(chan *sharedRead), readerStopped: make(chan struct{})}
	go s.committer(s.stop)
	go s.sharedReader(s.stop)
	return s, nil
}

// The tables are created by migrations/00001_initial.sql.

var topicPattern = regexp.MustCompile(`^[A-Za-z0-9\-\:\._]+$`)

// EnsureTopics creates the tables of the named topics. Topics must exist
// before messages are published to them inside a Commit.
func (s *SQLite) EnsureTopics(topics ...string) error {
	if s.haveTopics(topics) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range topics {
		if s.topics[t] {
			continue
		}
		if !topicPattern.MatchString(t) {
			return fmt.Errorf("store: invalid topic name %q", t)
		}
		// The same tables wmsqlitezombiezen creates with InitializeSchema,
		// created here outside any transaction (see Open).
		ddl := `CREATE TABLE IF NOT EXISTS 'watermill_` + t + `' (
			'offset' INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
			uuid TEXT NOT NULL,
			created_at TEXT NOT NULL,
			payload BLOB,
			metadata JSON NOT NULL
		);
		CREATE TABLE IF NOT EXISTS 'watermill_offsets_` + t + `' (
			consumer_group TEXT NOT NULL,
			offset_acked INTEGER NOT NULL,
			locked_until INTEGER NOT NULL,
			PRIMARY KEY(consumer_group)
		);`
		if err := sqlitex.ExecuteScript(s.conn, ddl, nil); err != nil {
			return fmt.Errorf("store: create topic %q: %w", t, err)
		}
		s.topicsMu.Lock()
		s.topics[t] = true
		s.topicsMu.Unlock()
	}
	return nil
}

// haveTopics reports whether every one of topics has its tables already.
// Every accept and delivery outcome asks; the answer must not wait for the
// writer's lock, which a commit holds through its fsync.
func (s *SQLite) haveTopics(topics []string) bool {
	s.topicsMu.RLock()
	defer s.topicsMu.RUnlock()
	for _, t := range topics {
		if !s.topics[t] {
			return false
		}
	}
	return true
}

// withTx runs fn inside a write transaction on the write connection, and
// returns once that transaction is durably committed (or fn's error, when
// fn failed and nothing of it was written).
//
// Group commit: callers that arrive while a commit is being synced to disk
// are run together in the next transaction, so that one fsync makes a whole
// group durable. A caller's failure undoes its own writes only; the others
// commit. This is what lets many senders' referrals be acknowledged per
// fsync, without weakening the rule that a referral is acknowledged only
// once it is on disk.
func (s *SQLite) withTx(ctx context.Context, fn func(conn *sqlite.Conn) error) error {
	return s.submitTx(ctx, fn, false)
}

// withRerunnableTx is withTx for an fn that may run more than once: it
// changes nothing outside the transaction except variables it assigns
// afresh on every run. Such callers share a transaction without a
// savepoint each (see commitGroup); the hot paths (accepting, delivery
// outcomes, queue offsets) are written this way.
func (s *SQLite) withRerunnableTx(ctx context.Context, fn func(conn *sqlite.Conn) error) error {
	return s.submitTx(ctx, fn, true)
}

func (s *SQLite) submitTx(ctx context.Context, fn func(conn *sqlite.Conn) error, rerunnable bool) error {
	req := &txRequest{ctx: ctx, fn: fn, rerunnable: rerunnable, done: make(chan error, 1)}
	return handOver(ctx, s.txs, req, req.done, s.stopped)
}

// handOver gives req to the goroutine that serves ch (the committer, the
// shared reader) and waits for its answer on done; ErrClosed once that
// goroutine has stopped.
func handOver[T any](ctx context.Context, ch chan<- T, req T, done <-chan error, stopped <-chan struct{}) error {
	select {
	case ch <- req:
	case <-stopped:
		return store.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-done
}

// waiting adds to batch the requests already waiting on ch, up to max.
func waiting[T any](batch []T, ch <-chan T, max int) []T {
	for len(batch) < max {
		select {
		case r := <-ch:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// txRequest is one caller's part of a group commit.
type txRequest struct {
	ctx        context.Context
	fn         func(conn *sqlite.Conn) error
	rerunnable bool
	done       chan error
}

// maxGroup bounds how many callers share one transaction.
const maxGroup = 128

// committer runs group commits until stop is closed, then answers every
// request still queued with ErrClosed.
func (s *SQLite) committer(stop <-chan struct{}) {
	defer close(s.stopped)
	var load arrivals
	for {
		var first *txRequest
		select {
		case first = <-s.txs:
		case <-stop:
			return
		}
		group := waiting([]*txRequest{first}, s.txs, maxGroup)
		if d := s.opts.CommitDelay; d > 0 && len(group) < maxGroup && load.expected(time.Now(), d) >= 2 {
			group = s.gather(group, d, stop)
		}
		load.add(len(group))
		s.groups.Add(1)
		s.callers.Add(int64(len(group)))
		s.commitGroup(group)
		s.keepLogShort()
	}
}

// gather adds to group the requests that arrive within d, up to maxGroup.
func (s *SQLite) gather(group []*txRequest, d time.Duration, stop <-chan struct{}) []*txRequest {
	t := time.NewTimer(d)
	defer t.Stop()
	for len(group) < maxGroup {
		select {
		case r := <-s.txs:
			group = append(group, r)
		case <-t.C:
			return group
		case <-stop:
			return group
		}
	}
	return group
}

// arrivals estimates how fast callers come to the committer, over windows
// of arrivalWindow. It is the committer's alone.
type arrivals struct {
	start time.Time
	n     int
	rate  float64 // callers per second in the last window
}

const arrivalWindow = 100 * time.Millisecond

// expected returns how many callers to expect within d at the recent rate.
// A window that has ended, however long ago, is counted first: after a
// quiet spell the first caller sees the quiet, not the busy window before.
func (a *arrivals) expected(now time.Time, d time.Duration) float64 {
	if a.start.IsZero() {
		a.start = now
	}
	if el := now.Sub(a.start); el >= arrivalWindow {
		a.rate = float64(a.n) / el.Seconds()
		a.start, a.n = now, 0
	}
	return a.rate * d.Seconds()
}

func (a *arrivals) add(n int) { a.n += n }

// GroupStats reports how many group commits the store has run and how
// many callers they carried, since it was opened.
func (s *SQLite) GroupStats() (groups, callers int64) {
	return s.groups.Load(), s.callers.Load()
}

// commitGroup runs group in one transaction.
//
// A savepoint per caller would keep one caller's failure from undoing the
// others' writes, but it costs the one writer a copy of every page each
// caller touches (SQLite's sub-journal): a fifth of its time. So when every
// caller may run again (withRerunnableTx), or there is only one, the group
// runs without savepoints; in the rare case that a caller fails, the whole
// transaction is rolled back and the group run again with a savepoint each.
func (s *SQLite) commitGroup(group []*txRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	results := make([]error, len(group))
	defer func() {
		for i, r := range group {
			r.done <- results[i]
		}
	}()
	if s.closed.Load() {
		for i := range results {
			results[i] = store.ErrClosed
		}
		return
	}
	published := map[string]bool{}
	s.published = published
	defer func() { s.published = nil }()

	if len(group) == 1 || allRerunnable(group) {
		if !s.begin(results) {
			return
		}
		if s.runGroup(group, results, false) {
			s.commit(results, published)
			return
		}
		_ = sqlitex.Execute(s.conn, "ROLLBACK;", nil)
		if len(group) == 1 {
			return
		}
		clear(results)
	}
	if !s.begin(results) {
		return
	}
	s.runGroup(group, results, true)
	for _, err := range results {
		if err == nil {
			s.commit(results, published)
			return
		}
	}
	_ = sqlitex.Execute(s.conn, "ROLLBACK;", nil)
}

func allRerunnable(group []*txRequest) bool {
	for _, r := range group {
		if !r.rerunnable {
			return false
		}
	}
	return true
}

// begin opens the group's transaction, or fails every caller.
func (s *SQLite) begin(results []error) bool {
	clear(s.pending) // the last group's messages, for the collector
	s.pending = s.pending[:0]
	if err := sqlitex.Execute(s.conn, "BEGIN IMMEDIATE;", nil); err != nil {
		for i := range results {
			results[i] = fmt.Errorf("store: begin: %w", err)
		}
		return false
	}
	return true
}

// runGroup runs each caller of group, recording its result, and reports
// whether every caller that ran succeeded. Without savepoints it stops at
// the first failure: the transaction must then be rolled back whole.
func (s *SQLite) runGroup(group []*txRequest, results []error, savepoints bool) bool {
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			// A caller gone before its turn writes nothing; the others go on.
			results[i] = err
			continue
		}
		s.caller = i
		if savepoints {
			results[i] = s.inSavepoint(r.fn)
			continue
		}
		if results[i] = s.run(r.fn); results[i] != nil {
			return false
		}
	}
	return true
}

// commit commits the group's transaction and wakes the queues published to;
// when the commit fails, every caller that had succeeded gets its error.
func (s *SQLite) commit(results []error, published map[string]bool) {
	if err := sqlitex.Execute(s.conn, "COMMIT;", nil); err != nil {
		_ = sqlitex.Execute(s.conn, "ROLLBACK;", nil)
		for i := range results {
			if results[i] == nil {
				results[i] = fmt.Errorf("store: commit: %w", err)
			}
		}
		return
	}
	// A topic whose writes were rolled back wakes its queue for nothing;
	// that costs one read. The queues find what committed in memory.
	s.keepCommitted(s.pending, results)
	s.wakers.Wake(published)
}

// run runs fn in the open transaction, turning a panic into an error.
func (s *SQLite) run(fn func(conn *sqlite.Conn) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: transaction panicked: %v", p)
		}
	}()
	return fn(s.conn)
}

// inSavepoint runs fn in a savepoint of the open transaction, rolling it
// back when fn fails or panics.
func (s *SQLite) inSavepoint(fn func(conn *sqlite.Conn) error) (err error) {
	if err := sqlitex.Execute(s.conn, "SAVEPOINT caller;", nil); err != nil {
		return fmt.Errorf("store: savepoint: %w", err)
	}
	err = s.run(fn)
	if err != nil {
		if rerr := sqlitex.Execute(s.conn, "ROLLBACK TO caller;", nil); rerr != nil {
			err = errors.Join(err, fmt.Errorf("store: roll back: %w", rerr))
		}
	}
	if rerr := sqlitex.Execute(s.conn, "RELEASE caller;", nil); rerr != nil && err == nil {
		err = fmt.Errorf("store: release savepoint: %w", rerr)
	}
	return err
}

// AcceptOnce implements intake.Store: when none of keys has been seen, it
// records them with resp, records rec (when not nil) in the cross-reference
// and publishes msg on topic, in one transaction. When any key has been seen
// it changes nothing and returns the response stored with it.
func (s *SQLite) AcceptOnce(ctx context.Context, keys []string, resp intake.Response, topic string, msg *message.Message, rec *intake.Record) (intake.Response, bool, error) {
	if err := s.EnsureTopics(topic); err != nil {
		return intake.Response{}, false, err
	}
	m, err := s.sealMessage(topic, msg)
	if err != nil {
		return intake.Response{}, false, err
	}
	return s.acceptOnce(ctx, keys, resp, rec, func(conn *sqlite.Conn) error { return s.insertMessage(conn, m) })
}

// AcceptWithBatch is AcceptOnce for a new referral whose copies were cut
// before it was stored (routes.FanOutOnAccept): when none of keys has been
// seen, it records them with resp, records rec in the cross-reference and
// writes b, all in one transaction, so that the referral and every
// recipient's copy are durable together before the sender is answered.
// When any key has been seen it changes nothing and returns the response
// stored with it.
func (s *SQLite) AcceptWithBatch(ctx context.Context, keys []string, resp intake.Response, rec *intake.Record, b store.Batch) (intake.Response, bool, error) {
	if err := s.EnsureTopics(batchTopics(b)...); err != nil {
		return intake.Response{}, false, err
	}
	msgs, err := s.sealMessages(b.Messages)
	if err != nil {
		return intake.Response{}, false, err
	}
	return s.acceptOnce(ctx, keys, resp, rec, func(conn *sqlite.Conn) error { return s.writeBatch(conn, b, msgs) })
}

// The answer to a message is stored once, with its first key; each other
// key of the message stores sameAnswerAs and the first key (an answer is
// JSON, so it never starts with it), which lookupResponse follows. Every
// key of a message has the same created_at, so retention removes them
// together. Storing the answer with every key wrote it twice per referral.
const (
	sameAnswerAs   = "="
	lookupResponse = `SELECT CASE WHEN substr(a.response, 1, 1) = x'3D'
		THEN (SELECT b.response FROM idempotency b WHERE b.key = CAST(substr(a.response, 2) AS TEXT))
		ELSE a.response END
		FROM idempotency a WHERE a.key = ?`
)

// acceptOnce records keys with resp, rec (when not nil) in the
// cross-reference, and runs write, in one transaction, when none of keys
// has been seen; otherwise it returns the response stored with the first
// key seen and writes nothing.
func (s *SQLite) acceptOnce(ctx context.Context, keys []string, resp intake.Response, rec *intake.Record, write func(*sqlite.Conn) error) (intake.Response, bool, error) {
	respJSON, err := json.Marshal(resp)
	if err != nil {
		return intake.Response{}, false, fmt.Errorf("store: encode response: %w", err)
	}
	row, err := s.sealReferral(rec)
	if err != nil {
		return intake.Response{}, false, err
	}
	// What the referral adds to the statistics, worked out before the
	// transaction, and written in it: counted once, with the referral.
	var counts []stats.Increment
	if rec != nil {
		counts = stats.ForReferral(&rec.Referral, rec.Refs.Council, time.Now())
	}
	var stored []byte
	err = s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error {
		for _, k := range keys {
			if err := sqlitex.Execute(conn, lookupResponse, &sqlitex.ExecOptions{
				Args: []any{k},
				ResultFunc: func(stmt *sqlite.Stmt) error {
					stored = []byte(stmt.ColumnText(0))
					return nil
				},
			}); err != nil {
				return fmt.Errorf("store: look up idempotency key: %w", err)
			}
			if stored != nil {
				return nil
			}
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		for i, k := range keys {
			answer := respJSON
			if i > 0 {
				answer = []byte(sameAnswerAs + keys[0])
			}
			if err := sqlitex.Execute(conn, `INSERT INTO idempotency (key, response, created_at) VALUES (?, ?, ?)`,
				&sqlitex.ExecOptions{Args: []any{k, answer, now}}); err != nil {
				return fmt.Errorf("store: record idempotency key: %w", err)
			}
		}
		if row != nil {
			if err := row.insert(conn, now); err != nil {
				return err
			}
		}
		if err := addStatistics(conn, counts); err != nil {
			return err
		}
		return write(conn)
	})
	if err != nil {
		return intake.Response{}, false, err
	}
	if stored == nil {
		return resp, false, nil
	}
	var first intake.Response
	if err := json.Unmarshal(stored, &first); err != nil {
		return intake.Response{}, false, fmt.Errorf("store: decode stored response: %w", err)
	}
	return first, true, nil
}

// Commit writes everything in b in one transaction.
func (s *SQLite) Commit(ctx context.Context, b store.Batch) error {
	if err := s.EnsureTopics(batchTopics(b)...); err != nil {
		return err
	}
	msgs, err := s.sealMessages(b.Messages)
	if err != nil {
		return err
	}
	return s.withRerunnableTx(ctx, func(conn *sqlite.Conn) error { return s.writeBatch(conn, b, msgs) })
}

// batchTopics returns the topics b publishes to.
func batchTopics(b store.Batch) []string {
	topics := make([]string, 0, len(b.Messages))
	for _, m := range b.Messages {
		topics = append(topics, m.Topic)
	}
	return topics
}

// writeBatch writes b, whose messages msgs are (sealMessages), inside the
// caller's transaction.
func (s *SQLite) writeBatch(conn *sqlite.Conn, b store.Batch, msgs []outgoing) error {
	for _, m := range msgs {
		if err := s.insertMessage(conn, m); err != nil {
			return err
		}
	}
	if err := appendDisclosures(conn, b.Disclosures); err != nil {
		return err
	}
	if err := applyRefUpdates(conn, b.Refs); err != nil {
		return err
	}
	if err := s.applyParking(conn, b); err != nil {
		return err
	}
	if err := addStatistics(conn, b.Stats); err != nil {
		return err
	}
	for _, h := range b.Holds {
		payload, err := s.sealer.SealOptional(h.Payload)
		if err != nil {
			return err
		}
		if err := sqlitex.Execute(conn, `INSERT OR IGNORE INTO held (at, referral_id, kind, route, reason, payload) VALUES (?, ?, ?, ?, ?, ?)`,
			&sqlitex.ExecOptions{Args: []any{ts(h.At), h.ReferralID, h.Kind, h.Route, h.Reason, payload}}); err != nil {
			return fmt.Errorf("store: hold message: %w", err)
		}
	}
	for _, d := range b.DeadLetters {
		payload, err := s.sealer.SealOptional(d.Payload)
		if err != nil {
			return err
		}
		answer, err := s.sealer.SealOptional([]byte(d.PartnerAnswer))
		if err != nil {
			return err
		}
		if err := sqlitex.Execute(conn, `INSERT INTO dead_letters
			(at, recipient, kind, referral_id, idempotency_key, status_code, partner_answer, error, payload)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, &sqlitex.ExecOptions{Args: []any{
			ts(d.At), d.Recipient, d.Kind, d.ReferralID, d.IdempotencyKey, d.StatusCode, answer, d.Error, payload,
		}}); err != nil {
			return fmt.Errorf("store: record dead letter: %w", err)
		}
	}
	for _, d := range b.Delivered {
		if err := sqlitex.Execute(conn, `INSERT INTO receipts
			(referral_id, idempotency_key, recipient, kind, partner_reference, status_code, at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, &sqlitex.ExecOptions{Args: []any{
			d.ReferralID, d.IdempotencyKey, d.Recipient, d.Kind, d.PartnerReference, d.StatusCode, ts(d.At),
		}}); err != nil {
			return fmt.Errorf("store: record delivery: %w", err)
		}
	}
	return nil
}

// WasDelivered reports whether the delivery about referralID with this
// idempotency key has been accepted by its partner already.
func (s *SQLite) WasDelivered(ctx context.Context, referralID, idempotencyKey string) (bool, error) {
	found := false
	err := s.read(ctx, `SELECT 1 FROM receipts WHERE referral_id = ? AND idempotency_key = ?`, []any{referralID, idempotencyKey}, func(*sqlite.Stmt) error {
		found = true
		return nil
	})
	return found, err
}

// Deliveries returns the receipts of deliveries about one referral.
func (s *SQLite) Deliveries(ctx context.Context, referralID string) ([]store.Delivered, error) {
	var out []store.Delivered
	err := s.read(ctx, `SELECT idempotency_key, recipient, kind, referral_id, partner_reference, status_code, at
		FROM receipts WHERE referral_id = ? ORDER BY at`, []any{referralID}, func(st *sqlite.Stmt) error {
		out = append(out, store.Delivered{
			IdempotencyKey: st.ColumnText(0), Recipient: st.ColumnText(1), Kind: st.ColumnText(2),
			ReferralID: st.ColumnText(3), PartnerReference: st.ColumnText(4), StatusCode: st.ColumnInt(5), At: parseTS(st.ColumnText(6)),
		})
		return nil
	})
	return out, err
}

// Disclosures returns the disclosure record of one referral, oldest first.
func (s *SQLite) Disclosures(ctx context.Context, referralID string) ([]store.Disclosure, error) {
	return s.disclosuresWhere(ctx, "referral_id = ?", referralID)
}

// Pending returns how many messages on topic its consumers have not yet
// acknowledged (0 for a topic never used).
func (s *SQLite) Pending(ctx context.Context, topic string) (int64, error) {
	if !topicPattern.MatchString(topic) {
		return 0, fmt.Errorf("store: invalid topic name %q", topic)
	}
	if err := s.EnsureTopics(topic); err != nil {
		return 0, err
	}
	var n int64
	err := s.read(ctx, `SELECT COUNT(*) FROM 'watermill_`+topic+`' WHERE "offset" >
		COALESCE((SELECT MIN(offset_acked) FROM 'watermill_offsets_`+topic+`'), 0)`, nil, func(st *sqlite.Stmt) error {
		n = st.ColumnInt64(0)
		return nil
	})
	return n, err
}

// read runs a query on a reader connection of its own, so that reads never
// wait for a write transaction's fsync (WAL: a reader sees the last commit).
func (s *SQLite) read(ctx context.Context, query string, args []any, row func(*sqlite.Stmt) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	conn, err := s.readers.Take(ctx)
	if err != nil {
		return fmt.Errorf("store: reader: %w", err)
	}
	defer s.readers.Put(conn)
	return runQuery(conn, query, args, row)
}

func runQuery(conn *sqlite.Conn, query string, args []any, row func(*sqlite.Stmt) error) error {
	if err := sqlitex.Execute(conn, query, &sqlitex.ExecOptions{Args: args, ResultFunc: row}); err != nil {
		return fmt.Errorf("store: query: %w", err)
	}
	return nil
}

// readShared is read for a query that runs many times at once under load
// (a delivery's state, before every delivery): the reads waiting when the
// shared reader comes to them run in one read transaction on one
// connection, one after another. A read after any commit starts with an
// empty page cache (SQLite's, per connection, is dropped when the log has
// changed) and reads again every page on its way down each index; in one
// transaction, the batch pays that once. Each read still sees every commit
// made before it was asked for: the transaction begins after the batch is
// taken.
func (s *SQLite) readShared(ctx context.Context, query string, args []any, row func(*sqlite.Stmt) error) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	r := &sharedRead{ctx: ctx, query: query, args: args, row: row, done: make(chan error, 1)}
	return handOver(ctx, s.sharedReads, r, r.done, s.readerStopped)
}

// sharedRead is one caller's read in a batch (readShared).
type sharedRead struct {
	ctx   context.Context
	query string
	args  []any
	row   func(*sqlite.Stmt) error
	done  chan error
}

// maxSharedReads bounds a batch of shared reads, so that one transaction
// does not keep the log from being checkpointed for long.
const maxSharedReads = 64

// sharedReader runs batches of shared reads until stop is closed.
func (s *SQLite) sharedReader(stop <-chan struct{}) {
	defer close(s.readerStopped)
	for {
		var first *sharedRead
		select {
		case first = <-s.sharedReads:
		case <-stop:
			return
		}
		s.runShared(waiting([]*sharedRead{first}, s.sharedReads, maxSharedReads))
	}
}

// runShared runs batch in one read transaction, answering each read.
func (s *SQLite) runShared(batch []*sharedRead) {
	conn, err := s.readers.Take(context.Background()) // the pool closes only after sharedReader ends
	if err == nil {
		defer s.readers.Put(conn)
		err = sqlitex.Execute(conn, "BEGIN;", nil)
	}
	if err != nil {
		for _, r := range batch {
			r.done <- fmt.Errorf("store: reader: %w", err)
		}
		return
	}
	for _, r := range batch {
		r.done <- runSharedRead(conn, r)
	}
	// A read transaction ends without writing; an error here leaves
	// nothing to undo, and the next BEGIN on the connection reports it.
	_ = sqlitex.Execute(conn, "COMMIT;", nil)
}

func runSharedRead(conn *sqlite.Conn, r *sharedRead) (err error) {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	// A panicking row function must not end the shared reader.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: read panicked: %v", p)
		}
	}()
	return runQuery(conn, r.query, r.args, r.row)
}

// Path returns the database file.
func (s *SQLite) Path() string { return s.path }

// Close closes the write connection. Subscribers must be closed first.
func (s *SQLite) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.stopped
	<-s.readerStopped
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil
	}
	s.closed.Store(true)
	return errors.Join(s.readers.Close(), s.conn.Close())
}

func ts(t time.Time) string { return store.Timestamp(t) }

func parseTS(s string) time.Time { return store.ParseTimestamp(s) }

// outgoing is a message ready for its topic's table: payload sealed,
// metadata encoded. Preparing it before the transaction keeps that work
// out of the one writer, where every other caller waits.
type outgoing struct {
	topic, uuid       string
	payload, metadata []byte
	// plain and meta are the message as published, for recentMessages.
	plain []byte
	meta  message.Metadata
}

func (s *SQLite) sealMessage(topic string, msg *message.Message) (outgoing, error) {
	sealed, err := s.sealer.Seal(msg.Payload)
	if err != nil {
		return outgoing{}, fmt.Errorf("store: publish to %s: %w", topic, err)
	}
	meta, err := json.Marshal(msg.Metadata)
	if err != nil {
		return outgoing{}, fmt.Errorf("store: publish to %s: metadata of %s: %w", topic, msg.UUID, err)
	}
	return outgoing{topic: topic, uuid: msg.UUID, payload: sealed, metadata: meta, plain: msg.Payload, meta: msg.Metadata}, nil
}

func (s *SQLite) sealMessages(msgs []store.TopicMessage) ([]outgoing, error) {
	out := make([]outgoing, 0, len(msgs))
	for _, m := range msgs {
		o, err := s.sealMessage(m.Topic, m.Message)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// insertMessage writes m in the caller's transaction, as Watermill's
// SQLite publisher (wmsqlitezombiezen) writes a message: the tables and
// their rows stay Watermill's, so that databases written by earlier
// versions carry on. The statement is prepared once per topic, where the
// publisher prepared it for every message. The topic's tables must exist
// (EnsureTopics): no DDL runs inside a transaction.
func (s *SQLite) insertMessage(conn *sqlite.Conn, m outgoing) error {
	if !s.topics[m.topic] {
		return fmt.Errorf("store: publish to %s: topic not created", m.topic)
	}
	if err := sqlitex.Execute(conn, `INSERT INTO 'watermill_`+m.topic+`' (uuid, created_at, payload, metadata) VALUES (?, ?, ?, ?)`,
		&sqlitex.ExecOptions{Args: []any{m.uuid, time.Now().Format(time.RFC3339), m.payload, m.metadata}}); err != nil {
		return fmt.Errorf("store: publish to %s: %w", m.topic, err)
	}
	if s.published != nil {
		s.published[m.topic] = true
		// Copies: the publisher may reuse its message once Commit returns.
		s.pending = append(s.pending, pendingRecent{caller: s.caller, topic: m.topic, msg: recentMessage{
			offset: conn.LastInsertRowID(), uuid: m.uuid, payload: bytes.Clone(m.plain), metadata: maps.Clone(m.meta)}})
	}
	return nil
}
