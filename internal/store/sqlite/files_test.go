package sqlite

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// withUmask runs the test under umask, restoring the process's after.
func withUmask(t *testing.T, umask int) {
	t.Helper()
	old := syscall.Umask(umask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func modeOf(t *testing.T, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestDataDirIs0700AndDatabaseFiles0600WhateverTheUmask: with umask 0
// (which would leave SQLite's files 0644 and a directory as asked) and
// with a strict one, the directory is 0700 and every database file,
// the write-ahead log and shared memory index included, and the key
// file are 0600 after writes.
func TestDataDirIs0700AndDatabaseFiles0600WhateverTheUmask(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077} {
		t.Run("umask "+strconv.FormatInt(int64(umask), 8), func(t *testing.T) {
			withUmask(t, umask)
			dir := filepath.Join(t.TempDir(), "new", "data")
			s, err := Open(Options{DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Probe(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The WAL and shared memory exist while the store is open.
			for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm", "data.key"} {
				if m := modeOf(t, filepath.Join(dir, name)); m != FileMode {
					t.Errorf("%s: mode %v, want %v", name, m, FileMode)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if m := modeOf(t, dir); m != DirMode {
				t.Errorf("data directory: mode %v, want %v", m, DirMode)
			}
		})
	}
}

// TestOpenTightensDatabaseFilesLeftOpenToOthers: files an older hub left
// 0644 are 0600 after the next open.
func TestOpenTightensDatabaseFilesLeftOpenToOthers(t *testing.T) {
	dir := t.TempDir()
	s := openTemp(t, dir)
	if err := s.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for _, name := range []string{FileName, FileName + "-wal"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s = openTemp(t, dir)
	defer s.Close()
	if m := modeOf(t, filepath.Join(dir, FileName)); m != FileMode {
		t.Errorf("database: mode %v after reopening, want %v", m, FileMode)
	}
}

// TestASecondLockOnADataDirIsRefusedNamingTheLockAndItsHolder: flock
// conflicts between two open files even in one process, as between two
// processes; the error names the lock file and the pid written in it; once
// released, the directory can be locked again.
func TestASecondLockOnADataDirIsRefusedNamingTheLockAndItsHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	first, err := LockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m := modeOf(t, dir); m != DirMode {
		t.Errorf("data directory made by the lock: mode %v, want %v", m, DirMode)
	}
	if m := modeOf(t, filepath.Join(dir, LockFileName)); m != FileMode {
		t.Errorf("lock file: mode %v, want %v", m, FileMode)
	}
	_, err = LockDataDir(dir)
	var locked *LockedError
	if !errors.As(err, &locked) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want a LockedError", err)
	}
	lockPath := filepath.Join(dir, LockFileName)
	if locked.Path != lockPath || locked.PID != os.Getpid() {
		t.Errorf("locked error: %+v, want path %s and pid %d", locked, lockPath, os.Getpid())
	}
	for _, want := range []string{lockPath, "process " + strconv.Itoa(os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not name %q", err, want)
		}
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	again, err := LockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.Release()
}
