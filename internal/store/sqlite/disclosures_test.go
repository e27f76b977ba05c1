package sqlite

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/storetest"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// tamper runs raw SQL on the store's file, as someone with access to it
// could.
func tamper(t *testing.T, s *SQLite, sql string, args ...any) {
	t.Helper()
	if err := s.withTx(context.Background(), func(conn *sqlite.Conn) error {
		return sqlitex.Execute(conn, sql, &sqlitex.ExecOptions{Args: args})
	}); err != nil {
		t.Fatal(err)
	}
}

func TestDisclosureChainNamesTheChangedEntry(t *testing.T) {
	for name, sql := range map[string]string{
		"recipient":   `UPDATE disclosures SET recipient = 'someone-else' WHERE id = 3`,
		"fields":      `UPDATE disclosures SET fields = '["person.name"]' WHERE id = 3`,
		"outcome":     `UPDATE disclosures SET outcome = 'withheld' WHERE id = 3`,
		"subject":     `UPDATE disclosures SET subject = 'sbj_x' WHERE id = 3`,
		"at":          `UPDATE disclosures SET at = '2020-01-01T00:00:00Z' WHERE id = 3`,
		"prev_hash":   `UPDATE disclosures SET prev_hash = hash WHERE id = 3`,
		"swapped ids": `UPDATE disclosures SET id = CASE id WHEN 3 THEN 4 ELSE 3 END WHERE id IN (3, 4)`,
	} {
		t.Run(name, func(t *testing.T) {
			s := openTemp(t, t.TempDir())
			defer s.Close()
			storetest.FillRecord(t, s, 5)
			if name == "swapped ids" {
				// Move 3 aside first: ids are unique.
				tamper(t, s, `UPDATE disclosures SET id = 100 WHERE id = 3`)
				tamper(t, s, `UPDATE disclosures SET id = 3 WHERE id = 4`)
				tamper(t, s, `UPDATE disclosures SET id = 4 WHERE id = 100`)
			} else {
				tamper(t, s, sql)
			}
			rep := storetest.Verify(t, s)
			if rep.OK || rep.BadID != 3 || rep.Entries != 2 || !strings.Contains(rep.Problem, "entry 3") {
				t.Fatalf("after changing entry 3: %+v; want it named", rep)
			}
		})
	}
}

func TestDisclosureChainDetectsRemovedEntries(t *testing.T) {
	s := openTemp(t, t.TempDir())
	defer s.Close()
	storetest.FillRecord(t, s, 5)
	tamper(t, s, `DELETE FROM disclosures WHERE id = 3`)
	if rep := storetest.Verify(t, s); rep.OK || rep.BadID != 3 || !strings.Contains(rep.Problem, "missing") {
		t.Fatalf("after removing entry 3: %+v", rep)
	}

	// The newest entry leaves no gap behind it: the sequence tells.
	s2 := openTemp(t, t.TempDir())
	defer s2.Close()
	storetest.FillRecord(t, s2, 5)
	tamper(t, s2, `DELETE FROM disclosures WHERE id = 5`)
	if rep := storetest.Verify(t, s2); rep.OK || rep.BadID != 5 {
		t.Fatalf("after removing the newest entry: %+v", rep)
	}
	// An entry appended after that keeps the damage visible.
	storetest.FillRecord(t, s2, 1)
	if rep := storetest.Verify(t, s2); rep.OK || rep.BadID != 5 {
		t.Fatalf("after appending past a removed entry: %+v", rep)
	}
}

func TestPruneWritesACheckpointVerifyStartsFrom(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	storetest.FillRecord(t, s, 6) // at 09:00 .. 14:00
	n, err := s.PruneDisclosuresBefore(ctx, time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
	if err != nil || n != 3 {
		t.Fatalf("prune = %d, %v; want 3 removed", n, err)
	}
	if rep := storetest.Verify(t, s); !rep.OK || rep.Checkpoint != 3 || rep.Entries != 3 {
		t.Fatalf("after prune: %+v", rep)
	}
	storetest.FillRecord(t, s, 1)
	if rep := storetest.Verify(t, s); !rep.OK || rep.Entries != 4 {
		t.Fatalf("after prune and append: %+v", rep)
	}
	// Removing everything keeps the chain going from the checkpoint.
	if n, err := s.PruneDisclosuresBefore(ctx, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil || n != 4 {
		t.Fatalf("prune all = %d, %v", n, err)
	}
	storetest.FillRecord(t, s, 1)
	if rep := storetest.Verify(t, s); !rep.OK || rep.Entries != 1 || rep.Checkpoint != 7 {
		t.Fatalf("after pruning all and appending: %+v", rep)
	}
	// A broken record is not pruned: that would erase the evidence.
	tamper(t, s, `UPDATE disclosures SET outcome = 'failed' WHERE id = 8`)
	if n, err := s.PruneDisclosuresBefore(ctx, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil || n != 0 {
		t.Fatalf("prune of a broken record = %d, %v; want refused", n, err)
	}
	if rep := storetest.Verify(t, s); rep.OK || rep.BadID != 8 {
		t.Fatalf("%+v", rep)
	}
}

func TestOpenRefusesAnotherSubjectKey(t *testing.T) {
	dir := t.TempDir()
	key := []byte(strings.Repeat("k", 32))
	s, err := Open(Options{DataDir: dir, SubjectKey: key})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(Options{DataDir: dir, SubjectKey: key}); err != nil {
		t.Fatalf("reopen with the same key: %v", err)
	}
	s.Close()
	if _, err := Open(Options{DataDir: dir, SubjectKey: []byte(strings.Repeat("j", 32))}); !errors.Is(err, store.ErrSubjectKeyMismatch) {
		t.Fatalf("open with another key = %v; want ErrSubjectKeyMismatch", err)
	}
}

func TestOpenChainsADisclosureRecordFromBeforeTheChain(t *testing.T) {
	dir := t.TempDir()
	conn, err := sqlite.OpenConn(dir + "/" + FileName)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitex.ExecuteScript(conn, `CREATE TABLE disclosures (
		id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, referral_id TEXT NOT NULL, correlation_id TEXT NOT NULL,
		recipient TEXT NOT NULL, kind TEXT NOT NULL, fields TEXT NOT NULL, purpose TEXT NOT NULL, lawful_basis TEXT NOT NULL,
		outcome TEXT NOT NULL, detail TEXT NOT NULL);
		INSERT INTO disclosures (at, referral_id, correlation_id, recipient, kind, fields, purpose, lawful_basis, outcome, detail)
		VALUES ('2025-01-01T00:00:00Z', 'old', '', 'provider', 'referral', '[]', 'p', 'b', 'sent', ''),
		       ('2025-01-02T00:00:00Z', 'old', '', 'council-a', 'referral', '[]', 'p', 'b', 'sent', '');`, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	s := openTemp(t, dir)
	defer s.Close()
	storetest.FillRecord(t, s, 1)
	if rep := storetest.Verify(t, s); !rep.OK || rep.Entries != 3 {
		t.Fatalf("migrated record: %+v", rep)
	}
}

// TestSubjectIndexOfAnOlderDatabaseIsReplaced: a database from when the
// disclosure record was indexed by subject directly opens with its people
// found through disclosure_subjects, and without the old index.
func TestSubjectIndexOfAnOlderDatabaseIsReplaced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTemp(t, dir)
	storetest.FillRecord(t, s, 8)
	// As an older version left it: the index, nothing in the new table,
	// and no record of versioned migrations.
	if err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		return sqlitex.ExecuteScript(conn, `DELETE FROM disclosure_subjects;
			CREATE INDEX disclosures_subject ON disclosures(subject);
			DROP TABLE goose_db_version;`, nil)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTemp(t, dir)
	defer s.Close()
	got, err := s.DisclosuresBySubject(ctx, "sbj_a")
	if err != nil || len(got) != 4 {
		t.Fatalf("subject a after the upgrade: %d entries, %v; want 4", len(got), err)
	}
	if err := s.read(ctx, `SELECT 1 FROM sqlite_master WHERE name = 'disclosures_subject'`, nil, func(*sqlite.Stmt) error {
		t.Error("the old subject index is still there")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if rep := storetest.Verify(t, s); !rep.OK {
		t.Fatalf("chain after the upgrade: %+v", rep)
	}
}
