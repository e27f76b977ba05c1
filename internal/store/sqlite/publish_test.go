package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-sqlite/wmsqlitezombiezen"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/iceshub/iceshub/internal/store"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"
)

// TestPublishedRowsAreWatermillsOwn: the store writes topic rows itself
// (prepared once, sealed before the transaction) instead of through
// Watermill's SQLite publisher. A row from each, in the same table, must
// read back alike: same metadata, payload opened, created_at a time that
// retention can compare. Databases written through the publisher by
// earlier versions rely on this.
func TestPublishedRowsAreWatermillsOwn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTemp(t, dir)
	defer s.Close()
	const topic = "deliver.p"
	if err := s.EnsureTopics(topic); err != nil {
		t.Fatal(err)
	}
	sealed, err := s.sealer.Seal([]byte(`{"from":"watermill"}`))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlite.OpenConn(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := sqlitex.ExecuteTransient(conn, "PRAGMA busy_timeout=5000;", nil); err != nil {
		t.Fatal(err)
	}
	pub, err := wmsqlitezombiezen.NewPublisher(conn, wmsqlitezombiezen.PublisherOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := message.NewMessage("from-watermill", sealed)
	old.Metadata.Set("referral_id", "r-1")
	if err := pub.Publish(topic, old); err != nil {
		t.Fatal(err)
	}
	ours := message.NewMessage("from-store", []byte(`{"from":"store"}`))
	ours.Metadata.Set("referral_id", "r-1")
	if err := s.Commit(ctx, store.Batch{Messages: []store.TopicMessage{{Topic: topic, Message: ours}}}); err != nil {
		t.Fatal(err)
	}

	if one, err := s.readAfter(ctx, topic, 0, 1); err != nil || len(one) != 1 || one[0].uuid != "from-watermill" {
		t.Fatalf("read with limit 1 = %d rows, %v; want the first only", len(one), err)
	}
	rows, err := s.readAfter(ctx, topic, 0, 10)
	if err != nil || len(rows) != 2 {
		t.Fatalf("read %d rows, %v; want both", len(rows), err)
	}
	for i, want := range []struct{ uuid, payload string }{{"from-watermill", `{"from":"watermill"}`}, {"from-store", `{"from":"store"}`}} {
		r := rows[i]
		plain, err := s.sealer.Open(r.payload)
		if err != nil || r.uuid != want.uuid || string(plain) != want.payload || r.metadata.Get("referral_id") != "r-1" {
			t.Errorf("row %d = %s %q %v, %v; want %s %s with its metadata", i, r.uuid, plain, r.metadata, err, want.uuid, want.payload)
		}
	}
	var created []string
	if err := s.read(ctx, `SELECT created_at FROM 'watermill_`+topic+`' ORDER BY "offset"`, nil, func(st *sqlite.Stmt) error {
		created = append(created, st.ColumnText(0))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, c := range created {
		if at, err := time.Parse(time.RFC3339Nano, c); err != nil || time.Since(at) > time.Minute {
			t.Errorf("created_at %q = %v, %v; want now, in the publisher's format", c, at, err)
		}
	}
	if len(created) == 2 && len(created[0]) != len(created[1]) {
		t.Errorf("created_at formats differ: %q (publisher) and %q (store)", created[0], created[1])
	}
}
