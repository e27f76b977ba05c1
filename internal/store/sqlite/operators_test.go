package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/store"
)

func fillOperatorRecord(t *testing.T, s *SQLite, n int) {
	t.Helper()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		if err := s.RecordOperatorAction(context.Background(), store.OperatorAction{At: at.Add(time.Duration(i) * time.Minute),
			Operator: "desk1", Action: "held.close", Target: fmt.Sprintf("held:%d", i+1), Outcome: "closed"}); err != nil {
			t.Fatal(err)
		}
	}
}

// Every change someone with the database file could make to the operator
// record is found, at the entry changed.
func TestOperatorRecordNamesTheChangedEntry(t *testing.T) {
	for name, c := range map[string]struct {
		sql string
		bad int64
	}{
		"operator":     {`UPDATE operator_record SET operator = 'someone-else' WHERE id = 3`, 3},
		"target":       {`UPDATE operator_record SET target = 'held:9' WHERE id = 3`, 3},
		"outcome":      {`UPDATE operator_record SET outcome = 'refused' WHERE id = 3`, 3},
		"at":           {`UPDATE operator_record SET at = '2020-01-01T00:00:00Z' WHERE id = 3`, 3},
		"removed":      {`DELETE FROM operator_record WHERE id = 3`, 3},
		"removed tail": {`DELETE FROM operator_record WHERE id = 5`, 5},
		"swapped ids": {`UPDATE operator_record SET id = 100 WHERE id = 3; UPDATE operator_record SET id = 3 WHERE id = 4;
			UPDATE operator_record SET id = 4 WHERE id = 100`, 3},
	} {
		t.Run(name, func(t *testing.T) {
			s := openTemp(t, t.TempDir())
			defer s.Close()
			fillOperatorRecord(t, s, 5)
			if rep, err := s.VerifyOperatorRecord(context.Background()); err != nil || !rep.OK || rep.Entries != 5 {
				t.Fatalf("before: %+v, %v", rep, err)
			}
			for _, sql := range strings.Split(c.sql, ";") {
				tamper(t, s, strings.TrimSpace(sql))
			}
			rep, err := s.VerifyOperatorRecord(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.BadID != c.bad {
				t.Fatalf("after %s: %+v, want broken at %d", name, rep, c.bad)
			}
		})
	}
}
