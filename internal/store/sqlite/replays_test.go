package sqlite

import (
	"context"
	"testing"
	"time"
)

// A key is seen once within its time, again after it expired, and still
// after the store is closed and opened again; expired keys are deleted.
func TestSeenBeforeRemembersKeysAcrossReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	key := [32]byte{1, 2, 3}
	s := openTemp(t, dir)
	seen := func(s *SQLite, k [32]byte, at, until time.Time) bool {
		t.Helper()
		got, err := s.SeenBefore(ctx, k, at, until)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if seen(s, key, now, now.Add(5*time.Minute)) {
		t.Fatal("a new key was seen before")
	}
	if !seen(s, key, now.Add(time.Minute), now.Add(6*time.Minute)) {
		t.Fatal("the key again within its time was not seen")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, dir)
	defer s.Close()
	if !seen(s, key, now.Add(4*time.Minute), now.Add(9*time.Minute)) {
		t.Fatal("the key after a reopen was not seen")
	}
	if seen(s, [32]byte{9}, now.Add(4*time.Minute), now.Add(9*time.Minute)) {
		t.Fatal("another key was seen")
	}
	// Once expired, the key is new again (and remembered anew), even
	// while older expired keys wait to be pruned before it.
	for i := range 2 * replaysPruned {
		seen(s, [32]byte{50, byte(i)}, now, now.Add(time.Minute))
	}
	if seen(s, key, now.Add(5*time.Minute), now.Add(10*time.Minute)) {
		t.Fatal("an expired key was still seen")
	}
	if !seen(s, key, now.Add(6*time.Minute), now.Add(11*time.Minute)) {
		t.Fatal("the key remembered anew was not seen")
	}
	// Expired keys are pruned as new ones arrive.
	for i := range 20 - replaysPruned {
		seen(s, [32]byte{100, byte(i)}, now, now.Add(time.Minute))
	}
	later := now.Add(time.Hour)
	for i := range 10 {
		seen(s, [32]byte{200, byte(i)}, later, later.Add(time.Minute))
	}
	if n, err := s.replayKeys(ctx); err != nil || n != 10 {
		t.Fatalf("%d keys kept (%v), want the 10 live ones", n, err)
	}
}
