package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/iceshub/iceshub/internal/store/sqlite"
)

// lockStoreForCommand takes the data directory's lock for an operator
// command that writes the store (keys rotate, dlq replay and discard,
// retention run), and holds it until release, so that no hub starts on
// the store meanwhile. When a hub runs on it (or another such command),
// the lock is held and the command is refused with what to do instead;
// the store is not touched. The store must exist.
func lockStoreForCommand(dir, command, instead string) (*sqlite.DirLock, error) {
	if _, err := os.Stat(filepath.Join(dir, sqlite.FileName)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no hub store in %s", dir)
		}
		return nil, err
	}
	l, err := sqlite.LockDataDir(dir)
	if errors.Is(err, sqlite.ErrLocked) {
		return nil, fmt.Errorf("%s refused, nothing changed: %w; %s", command, err, instead)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	return l, nil
}
