package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Modes of what the store keeps on disk, whatever the process's umask: the
// data directory is the operator's alone, and so is every file of the
// database (SQLite gives the -wal and -shm files the mode of the database
// file, so the database file is made 0600 before SQLite opens it).
const (
	DirMode  fs.FileMode = 0o700
	FileMode fs.FileMode = 0o600
)

// databaseFiles are the files of the database in a data directory.
var databaseFiles = []string{FileName, FileName + "-wal", FileName + "-shm", FileName + "-journal"}

// ensureDataDir creates dir with DirMode when it is missing (parents too,
// each 0700), setting the mode explicitly so that the umask cannot widen
// or narrow it. An existing directory is left as the operator made it.
func ensureDataDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: data directory: %w", err)
	}
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("store: create data directory: %w", err)
	}
	if err := os.Chmod(dir, DirMode); err != nil {
		return fmt.Errorf("store: data directory mode: %w", err)
	}
	return nil
}

// restrictDatabaseFiles creates the database file when missing and sets
// every database file that exists (the database, its -wal, -shm and
// rollback journal) to FileMode, so that one made by an older hub or under
// a loose umask is tightened too.
func restrictDatabaseFiles(dir string) error {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	for _, name := range databaseFiles {
		p := filepath.Join(dir, name)
		if err := os.Chmod(p, FileMode); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: mode of %s: %w", p, err)
		}
	}
	return nil
}

// LockFileName is the lock file in the data directory that a process
// writing the store holds (LockDataDir).
const LockFileName = "iceshub.lock"

// DirLock is an exclusive lock on a data directory: an flock(2) on its
// LockFileName, released by Release or when the process ends, however it
// ends. The file itself stays (removing it would let two processes lock
// two different files of the same name).
type DirLock struct {
	f *os.File
}

// LockedError says that another process holds a data directory's lock.
type LockedError struct {
	// Path is the lock file.
	Path string
	// PID is the process that holds it, as it wrote in the file; 0 when
	// unknown.
	PID int
}

func (e *LockedError) Error() string {
	holder := "another process"
	if e.PID > 0 {
		holder = "process " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("data directory %s is in use: its lock %s is held by %s (an iceshub serve, or an operator command writing the store)",
		filepath.Dir(e.Path), e.Path, holder)
}

// ErrLocked matches a *LockedError with errors.Is.
var ErrLocked = errors.New("store: data directory locked")

func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LockDataDir takes the exclusive lock of dir (created as ensureDataDir
// does when missing) without waiting: when another process holds it, the
// error is a *LockedError naming the lock file and, when it wrote it, the
// holder's pid. The holder writes its pid into the file.
func LockDataDir(dir string) (*DirLock, error) {
	if dir == "" {
		return nil, errors.New("store: empty data directory")
	}
	if err := ensureDataDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return nil, fmt.Errorf("store: open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid := readPID(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: path, PID: pid}
		}
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		return nil, fmt.Errorf("store: mode of %s: %w", path, err)
	}
	// The pid is for the message of the next process that tries; the lock
	// is the flock, not the file's content.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &DirLock{f: f}, nil
}

// readPID reads the pid a lock's holder wrote; 0 when there is none.
func readPID(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Path is the lock file.
func (l *DirLock) Path() string { return l.f.Name() }

// Release gives the lock up. It is safe to call on nil and more than once.
func (l *DirLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	// Emptied first, so that a pid is never shown for a lock nobody holds.
	_ = f.Truncate(0)
	uerr := syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if err := errors.Join(uerr, f.Close()); err != nil {
		return fmt.Errorf("store: release lock %s: %w", f.Name(), err)
	}
	return nil
}
