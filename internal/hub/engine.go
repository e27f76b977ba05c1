package hub

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres"
	"github.com/iceshub/iceshub/internal/store/sqlite"
)

// The one place that names the store's engines. Everything else (the hub,
// the operator commands, the demo, the bench) holds a store.Engine, or the
// smaller interface it needs. store.backend chooses: "sqlite", the
// embedded default, one hub on a data directory; or "postgres", any number
// of hubs on one PostgreSQL database.

// StoreSettings is what the store is opened with. The serving hub sets
// them all; an operator command sets the store's configuration and what it
// needs.
type StoreSettings struct {
	// Store is the configuration's store section: its backend, data
	// directory and, for postgres, where to connect.
	Store config.Store
	// PollInterval, CommitDelay, InFlight and Logger are the serving hub's;
	// zero takes the engine's defaults.
	PollInterval time.Duration
	CommitDelay  time.Duration
	InFlight     int
	Logger       watermill.LoggerAdapter
	// SubjectKey, when set, is checked against the store's (nil skips the
	// check); Keyring nil means the environment's or the key file's.
	SubjectKey []byte
	Keyring    *crypt.Keyring
	// Migrate brings a PostgreSQL schema up to date as it opens (serve
	// with store.migrate auto, `iceshub migrate`); the commands that only
	// read or change records never do.
	Migrate bool
	// anySchema opens a PostgreSQL schema that is not current without
	// refusing it (to report its migrations).
	anySchema bool
}

// SQLiteAt is the store section of the embedded store in dir.
func SQLiteAt(dir string) config.Store { return config.Store{Backend: "sqlite", DataDir: dir} }

// IsShared reports whether several hubs may share the store (postgres):
// then the data directory is not locked, and no key is ever generated,
// since every hub must hold the same keys.
func IsShared(st config.Store) bool { return st.Backend == "postgres" }

// OpenStore opens the store s names, creating an embedded one if needed.
func OpenStore(s StoreSettings) (store.Engine, error) {
	if IsShared(s.Store) {
		return openPostgres(s)
	}
	st, err := sqlite.Open(sqlite.Options{
		DataDir:      s.Store.DataDir,
		PollInterval: s.PollInterval,
		CommitDelay:  s.CommitDelay,
		InFlight:     s.InFlight,
		Logger:       s.Logger,
		SubjectKey:   s.SubjectKey,
		Keyring:      s.Keyring,
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// openPostgres connects to the database of the environment variable
// store.postgres.url_env names.
func openPostgres(s StoreSettings) (*postgres.Postgres, error) {
	pg := s.Store.Postgres
	url := os.Getenv(pg.URLEnv)
	if url == "" {
		return nil, fmt.Errorf("store.backend is postgres but %s is not set: set it to the database's URL (postgres://user:password@host:5432/database)", pg.URLEnv)
	}
	keys := s.Keyring
	if keys == nil {
		var err error
		if keys, _, err = crypt.Load(os.Getenv(crypt.EnvKey), dataKeyFile(s.Store), false); err != nil {
			return nil, fmt.Errorf("store: data keys for PostgreSQL (every hub needs the same): %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), pg.StatementTimeout+10*time.Second)
	defer cancel()
	return postgres.Open(ctx, postgres.Options{
		URL: url, MaxConns: int32(pg.MaxConns), StatementTimeout: pg.StatementTimeout, Lease: pg.Lease,
		PollInterval: s.PollInterval, InFlight: s.InFlight, Logger: s.Logger, SubjectKey: s.SubjectKey, Keyring: keys,
		Migrate: s.Migrate, AnySchema: s.anySchema,
	})
}

// OpenPostgres opens the PostgreSQL store st names, bringing its schema up
// to date when migrate is set (`iceshub migrate`, `iceshub store copy`),
// else as it is, current or not (`iceshub migrate status`).
func OpenPostgres(st config.Store, migrate bool) (*postgres.Postgres, error) {
	if !IsShared(st) {
		return nil, errors.New("store.backend is not postgres: give a configuration whose store is PostgreSQL")
	}
	return openPostgres(StoreSettings{Store: st, Migrate: migrate, anySchema: !migrate})
}

// StoreFile is the database file of the embedded store in dir.
func StoreFile(dir string) string { return filepath.Join(dir, sqlite.FileName) }

// DataLock is the data directory's lock, held until released.
type DataLock interface {
	Release() error
}

// lockDataDir takes the data directory's lock (sqlite.LockDataDir).
func lockDataDir(dir string) (DataLock, error) {
	l, err := sqlite.LockDataDir(dir)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// noLock stands for the lock of a shared store, which has none: its hubs
// and commands work beside each other in transactions.
type noLock struct{}

func (noLock) Release() error { return nil }

// OpenExisting opens the store st names, refusing to create one where there
// is none: an audit of an empty new store would answer "nothing shared".
func OpenExisting(st config.Store, subjectKey []byte) (store.Engine, error) {
	if !IsShared(st) {
		if err := mustExist(st.DataDir); err != nil {
			return nil, err
		}
	}
	return OpenStore(StoreSettings{Store: st, SubjectKey: subjectKey})
}

func mustExist(dir string) error {
	if _, err := os.Stat(StoreFile(dir)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("no hub store in %s", dir)
		}
		return err
	}
	return nil
}

// LockStoreForCommand takes the data directory's lock for an operator
// command that writes the embedded store (keys rotate, dlq replay and
// discard, retention run), and holds it until release, so that no hub
// starts on the store meanwhile. When a hub runs on it (or another such
// command), the lock is held and the command is refused with what to do
// instead; the store is not touched. The store must exist. A shared store
// has no such lock: its commands run beside its hubs.
func LockStoreForCommand(st config.Store, command, instead string) (DataLock, error) {
	if IsShared(st) {
		return noLock{}, nil
	}
	if err := mustExist(st.DataDir); err != nil {
		return nil, err
	}
	l, err := lockDataDir(st.DataDir)
	if errors.Is(err, sqlite.ErrLocked) {
		return nil, fmt.Errorf("%s refused, nothing changed: %w; %s", command, err, instead)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	return l, nil
}
