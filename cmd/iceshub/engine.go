package main

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

// The one place that names the store's engine. Everything else in the
// command holds a store.Engine, or the smaller interface it needs. The
// configuration's store.backend is checked by config.Check; "sqlite" (the
// embedded default) is the only engine there is.

// storeSettings is what the store is opened with. The serving hub sets
// them all; an operator command sets the data directory and what it needs.
type storeSettings struct {
	dataDir string
	// pollInterval, commitDelay, inFlight and logger are the serving hub's
	// (sqlite.Options); zero takes the engine's defaults.
	pollInterval time.Duration
	commitDelay  time.Duration
	inFlight     int
	logger       watermill.LoggerAdapter
	// subjectKey, when set, is checked against the store's (nil skips the
	// check); keyring nil means the data directory's or environment's.
	subjectKey []byte
	keyring    *crypt.Keyring
}

// openStore opens (creating if needed) the store in s.dataDir.
func openStore(s storeSettings) (store.Engine, error) {
	st, err := sqlite.Open(sqlite.Options{
		DataDir:      s.dataDir,
		PollInterval: s.pollInterval,
		CommitDelay:  s.commitDelay,
		InFlight:     s.inFlight,
		Logger:       s.logger,
		SubjectKey:   s.subjectKey,
		Keyring:      s.keyring,
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// storeFile is the database file of the store in dir.
func storeFile(dir string) string { return filepath.Join(dir, sqlite.FileName) }

// dataLock is the data directory's lock, held until released.
type dataLock interface {
	Release() error
}

// lockDataDir takes the data directory's lock (sqlite.LockDataDir).
func lockDataDir(dir string) (dataLock, error) {
	l, err := sqlite.LockDataDir(dir)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// openExisting opens the store in dir, refusing to create one where there
// is none: an audit of an empty new store would answer "nothing shared".
func openExisting(dir string, subjectKey []byte) (store.Engine, error) {
	if _, err := os.Stat(storeFile(dir)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no hub store in %s", dir)
		}
		return nil, err
	}
	return openStore(storeSettings{dataDir: dir, subjectKey: subjectKey})
}

// lockStoreForCommand takes the data directory's lock for an operator
// command that writes the store (keys rotate, dlq replay and discard,
// retention run), and holds it until release, so that no hub starts on
// the store meanwhile. When a hub runs on it (or another such command),
// the lock is held and the command is refused with what to do instead;
// the store is not touched. The store must exist.
func lockStoreForCommand(dir, command, instead string) (dataLock, error) {
	if _, err := os.Stat(storeFile(dir)); err != nil {
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
