package hub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
)

// The one place that names the store's engine. Everything else (the hub,
// the operator commands, the demo, the bench) holds a store.Engine, or the
// smaller interface it needs. The configuration's store.backend is checked
// by config.Check; "sqlite" (the embedded default) is the only engine there
// is.

// StoreSettings is what the store is opened with. The serving hub sets
// them all; an operator command sets the data directory and what it needs.
type StoreSettings struct {
	DataDir string
	// PollInterval, CommitDelay, InFlight and Logger are the serving hub's
	// (sqlite.Options); zero takes the engine's defaults.
	PollInterval time.Duration
	CommitDelay  time.Duration
	InFlight     int
	Logger       watermill.LoggerAdapter
	// SubjectKey, when set, is checked against the store's (nil skips the
	// check); Keyring nil means the data directory's or environment's.
	SubjectKey []byte
	Keyring    *crypt.Keyring
}

// OpenStore opens (creating if needed) the store in s.DataDir.
func OpenStore(s StoreSettings) (store.Engine, error) {
	st, err := sqlite.Open(sqlite.Options{
		DataDir:      s.DataDir,
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

// StoreFile is the database file of the store in dir.
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

// OpenExisting opens the store in dir, refusing to create one where there
// is none: an audit of an empty new store would answer "nothing shared".
func OpenExisting(dir string, subjectKey []byte) (store.Engine, error) {
	if _, err := os.Stat(StoreFile(dir)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no hub store in %s", dir)
		}
		return nil, err
	}
	return OpenStore(StoreSettings{DataDir: dir, SubjectKey: subjectKey})
}

// LockStoreForCommand takes the data directory's lock for an operator
// command that writes the store (keys rotate, dlq replay and discard,
// retention run), and holds it until release, so that no hub starts on
// the store meanwhile. When a hub runs on it (or another such command),
// the lock is held and the command is refused with what to do instead;
// the store is not touched. The store must exist.
func LockStoreForCommand(dir, command, instead string) (DataLock, error) {
	if _, err := os.Stat(StoreFile(dir)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no hub store in %s", dir)
		}
		return nil, err
	}
	l, err := lockDataDir(dir)
	if errors.Is(err, sqlite.ErrLocked) {
		return nil, fmt.Errorf("%s refused, nothing changed: %w; %s", command, err, instead)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	return l, nil
}
