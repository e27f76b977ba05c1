// Package postgres is the store's clustered engine: the contract of
// package store (internal/store) kept in a PostgreSQL database (15 or
// later) that several hubs share. Each write the contract makes atomic is
// one PostgreSQL transaction; each topic's messages are handed to one hub
// at a time under a lease, in order per referral (subscriber.go); the
// disclosure record stays one verifiable chain (disclosures.go); jobs that
// must run once at a time take an advisory lock (retention.go). The schema
// is kept by versioned migrations embedded in the binary (migrate.go).
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/store"
)

// Defaults of Options.
const (
	DefaultMaxConns         = 10
	DefaultStatementTimeout = 30 * time.Second
	DefaultLease            = 30 * time.Second
	DefaultPollInterval     = 500 * time.Millisecond
)

// Options configure Open.
type Options struct {
	// URL is the PostgreSQL connection URL (or key=value string). Required.
	URL string
	// MaxConns bounds the pool; DefaultMaxConns when 0.
	MaxConns int32
	// StatementTimeout ends a statement that runs longer;
	// DefaultStatementTimeout when 0.
	StatementTimeout time.Duration
	// Lease is how long a message or a due parked copy stays with the hub
	// that took it without word from it: a hub that dies lets its work go
	// after at most this long. DefaultLease when 0.
	Lease time.Duration
	// PollInterval is how often an idle queue looks for messages when no
	// notification came (another hub's commit notifies it at once).
	// DefaultPollInterval when 0.
	PollInterval time.Duration
	// InFlight is how many messages of one topic a subscriber hands out at
	// once; never two about the same referral. Default 1.
	InFlight int
	// Logger receives the queues' logs. Default: none.
	Logger watermill.LoggerAdapter
	// SubjectKey, when set, is checked against the key the store's
	// subjects were recorded under (store.ErrSubjectKeyMismatch).
	SubjectKey []byte
	// Keyring seals what can hold personal data. Required: hubs that share
	// a database share no data directory, so the keys come from the
	// environment (crypt.EnvKey) through the caller.
	Keyring *crypt.Keyring
	// Migrate brings the schema up to date at Open; when false, Open
	// refuses a schema that is not current (run `iceshub migrate`), unless
	// AnySchema is set (`iceshub migrate status`, which reports it).
	Migrate   bool
	AnySchema bool
	// Replica names this hub in the leases it holds; a random name when
	// empty.
	Replica string
}

// Postgres is the clustered store. It is safe for concurrent use, and
// several processes may open the same database.
type Postgres struct {
	pool    *pgxpool.Pool
	queues  *pgxpool.Pool // for claims, acknowledgements, leases and Commit's batches (queuePool)
	opts    Options
	keys    *crypt.Keyring
	sealer  store.Sealer // with keys
	replica string
	closed  atomic.Bool

	topicsMu sync.RWMutex
	topics   map[string]bool

	wakers store.Wakers

	stopListening context.CancelFunc
	listening     chan struct{}
	sealing       chan struct{}
	// notify takes the topics this hub published to, for the other hubs
	// (notifyOthers); notifying ends when it stops.
	notify    chan string
	notifying chan struct{}
	// commits takes Commit's batches to the committer (group.go), which
	// closes committing when it stops.
	commits    chan *commitRequest
	committing chan struct{}
	// stateReads takes DeliveryState's questions to the readers
	// (group.go); reading is closed when the last of them stops.
	stateReads chan *stateRequest
	reading    chan struct{}

	groups, callers atomic.Int64
}

// Postgres implements the whole store contract.
var _ store.Engine = (*Postgres)(nil)

// Open connects to the database in opts.URL and checks (or brings up to
// date, with opts.Migrate) its schema.
func Open(ctx context.Context, opts Options) (*Postgres, error) {
	if opts.URL == "" {
		return nil, errors.New("store: no PostgreSQL connection URL")
	}
	if opts.Keyring == nil {
		return nil, errors.New("store: PostgreSQL needs the data keys from the environment (" + crypt.EnvKey + ")")
	}
	opts = withDefaults(opts)
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		// pgx quotes the URL in its errors, password included: never pass
		// it on.
		return nil, errors.New("store: the PostgreSQL connection URL cannot be read (check its form: postgres://user@host:port/database)")
	}
	cfg.MaxConns = opts.MaxConns
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["application_name"] = "iceshub"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect to PostgreSQL: %w", describe(err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL at %s: %w", where(cfg.ConnConfig), describe(err))
	}
	queues, err := queuePool(ctx, cfg)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect to PostgreSQL: %w", describe(err))
	}
	p := &Postgres{pool: pool, queues: queues, opts: opts, keys: opts.Keyring, sealer: store.Sealer{Keys: opts.Keyring},
		replica: opts.Replica, topics: map[string]bool{}, notify: make(chan string, 64),
		commits: make(chan *commitRequest), committing: make(chan struct{}),
		stateReads: make(chan *stateRequest), reading: make(chan struct{})}
	if err := p.schemaReady(ctx); err != nil {
		p.closePools()
		return nil, err
	}
	if err := p.checkSubjectKey(ctx, opts.SubjectKey); err != nil {
		p.closePools()
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	p.stopListening, p.listening, p.sealing, p.notifying = cancel, make(chan struct{}), make(chan struct{}), make(chan struct{})
	go p.listen(lctx, cfg.ConnConfig)
	go p.keepSealing(lctx)
	go p.notifyOthers(lctx)
	go p.commitGroups(lctx)
	readers := new(atomic.Int32)
	readers.Store(stateReaders)
	for range stateReaders {
		go p.readStates(lctx, readers)
	}
	return p, nil
}

func withDefaults(opts Options) Options {
	if opts.MaxConns <= 0 {
		opts.MaxConns = DefaultMaxConns
	}
	if opts.StatementTimeout <= 0 {
		opts.StatementTimeout = DefaultStatementTimeout
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = watermill.NopLogger{}
	}
	if opts.Replica == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		opts.Replica = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	return opts
}

// where names the server of cfg for errors: host, port and database, never
// the user's password.
func where(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}

// describe keeps what a connection error says about the server, without
// the connection string pgx may quote.
func describe(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s (%s)", pe.Message, pe.Code)
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return errors.New("the server cannot be reached or refused the connection")
	}
	return err
}

// Replica is the name this hub holds leases under.
func (p *Postgres) Replica() string { return p.replica }

// checkSubjectKey records a keyed check value of key on first use and
// compares it afterwards. The key itself is never stored.
func (p *Postgres) checkSubjectKey(ctx context.Context, key []byte) error {
	if key == nil {
		return nil
	}
	check, err := store.SubjectKeyCheck(key)
	if err != nil {
		return err
	}
	var stored string
	err = p.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('subject_key_check', $1) ON CONFLICT (key) DO NOTHING`, check); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'subject_key_check'`).Scan(&stored)
	})
	if err != nil {
		return fmt.Errorf("store: subject key check: %w", err)
	}
	if stored != check {
		return store.ErrSubjectKeyMismatch
	}
	return nil
}

// inTx runs fn in a transaction and commits it. A transaction PostgreSQL
// ended for a serialization failure or a deadlock is run again, so fn must
// set everything it returns afresh each time.
func (p *Postgres) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return p.retrying(ctx, func() error { return pgx.BeginFunc(ctx, p.pool, fn) })
}

// inOneTrip sends what fill queues as one implicit transaction: the
// statements and their commit in one round trip, where inTx spends three
// (begin, the statements, commit). A statement that fails ends the
// transaction and skips the rest, as in inTx. For writes whose outcome
// decides nothing but their failure: a delivery's outcome, an intake whose
// keys are new. fill is called afresh for each attempt.
func (p *Postgres) inOneTrip(ctx context.Context, pool *pgxpool.Pool, fill func(pl *pipeline) error) error {
	return p.retrying(ctx, func() error {
		var pl pipeline
		if err := fill(&pl); err != nil {
			return err
		}
		if pl.b.Len() == 0 {
			return nil
		}
		if err := pool.SendBatch(ctx, &pl.b).Close(); err != nil {
			return fmt.Errorf("store: write: %w", err)
		}
		return nil
	})
}

// retrying runs commit, a whole transaction, until it commits, fails for
// good, or has been ended five times for a serialization failure or a
// deadlock.
func (p *Postgres) retrying(ctx context.Context, commit func() error) error {
	if p.closed.Load() {
		return store.ErrClosed
	}
	for attempt := 1; ; attempt++ {
		err := commit()
		if err == nil {
			p.groups.Add(1)
			p.callers.Add(1)
			return nil
		}
		if !retryable(err) || attempt == 5 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 5 * time.Millisecond):
		}
	}
}

// retryable reports whether err ended a transaction that may simply be run
// again: a serialization failure or a deadlock.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// GroupStats reports the transactions committed; each carries one caller
// (PostgreSQL groups the commits' flushes itself).
func (p *Postgres) GroupStats() (groups, callers int64) { return p.groups.Load(), p.callers.Load() }

// Probe proves the store writable: it writes and commits one row.
func (p *Postgres) Probe(ctx context.Context) error {
	return p.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO meta (key, value) VALUES ('readiness_probe', $1)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, store.Timestamp(time.Time{}))
		if err != nil {
			return fmt.Errorf("store: write probe: %w", err)
		}
		return nil
	})
}

// Close stops listening for notifications and closes the pool.
// Subscribers must be closed first.
func (p *Postgres) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.stopListening()
	<-p.listening
	<-p.sealing
	<-p.notifying
	<-p.committing
	<-p.reading
	p.closePools()
	return nil
}

func (p *Postgres) closePools() {
	p.queues.Close()
	p.pool.Close()
}

// queuePool is a few connections of their own for the queues' claims,
// acknowledgements and leases and for Commit's batches, committed without
// waiting for the disk (synchronous_commit off): one lost in a crash of
// the database is harmless (a claim or lease lost lets the message be
// taken again; an acknowledgement or a batch lost lets its message be
// handled again, its copy sent under the same Idempotency-Key; see
// Commit), and each of them, several per message, no longer waits for a
// flush.
//
// Bitmap scans are off on them: the messages table is a queue, most of
// its rows dead versions between vacuums, and the planner, misled by its
// small live count, read a topic by bitmap, visiting every dead version
// (600 buffers a claim in the bench, where an index scan in id order,
// which learns to skip the dead, reads 20). Their other statements look
// up rows by key, which an index scan serves as well.
func queuePool(ctx context.Context, base *pgxpool.Config) (*pgxpool.Pool, error) {
	cfg := base.Copy()
	cfg.MaxConns = max(2, base.MaxConns/2)
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	cfg.ConnConfig.RuntimeParams["enable_bitmapscan"] = "off"
	return pgxpool.NewWithConfig(ctx, cfg)
}

var topicPattern = regexp.MustCompile(`^[A-Za-z0-9\-\:\._]+$`)

// EnsureTopics records the named topics, so that Queues lists them before
// their first message.
func (p *Postgres) EnsureTopics(topics ...string) error {
	var missing []string
	p.topicsMu.RLock()
	for _, t := range topics {
		if !p.topics[t] {
			missing = append(missing, t)
		}
	}
	p.topicsMu.RUnlock()
	if len(missing) == 0 {
		return nil
	}
	for _, t := range missing {
		if !topicPattern.MatchString(t) {
			return fmt.Errorf("store: invalid topic name %q", t)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.StatementTimeout)
	defer cancel()
	if err := p.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO topics (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, missing)
		return err
	}); err != nil {
		return fmt.Errorf("store: create topics: %w", err)
	}
	p.topicsMu.Lock()
	for _, t := range missing {
		p.topics[t] = true
	}
	p.topicsMu.Unlock()
	return nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// sealInterval is how often each hub seals the pending disclosures and
// folds the pending statistics.
const sealInterval = 200 * time.Millisecond

// keepSealing seals and folds every sealInterval until ctx ends. A failure
// (the database away) is said once a minute at most; the next turn tries
// again, and nothing pending is lost meanwhile.
func (p *Postgres) keepSealing(ctx context.Context) {
	defer close(p.sealing)
	t := time.NewTicker(sealInterval)
	defer t.Stop()
	var saidAt time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := p.SealDisclosures(ctx, false)
		if err == nil {
			err = p.FoldStatistics(ctx)
		}
		if err != nil && ctx.Err() == nil && time.Since(saidAt) > time.Minute {
			saidAt = time.Now()
			p.opts.Logger.Error("sealing the disclosure record and folding the statistics failed; trying again", err, nil)
		}
	}
}

// Import runs fn in one transaction on the store's database, for tools
// that fill a new store from elsewhere (internal/store/storecopy): what fn
// writes is all there or none of it.
func (p *Postgres) Import(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if p.closed.Load() {
		return store.ErrClosed
	}
	return pgx.BeginFunc(ctx, p.pool, fn)
}
