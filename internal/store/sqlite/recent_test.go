package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/intake"
)

func offsetsOf(ms []recentMessage) []int64 {
	var out []int64
	for _, m := range ms {
		out = append(out, m.offset)
	}
	return out
}

func keep(r *recentMessages, topic string, offsets ...int64) {
	var ms []recentMessage
	for _, o := range offsets {
		ms = append(ms, recentMessage{offset: o, uuid: fmt.Sprint(o)})
	}
	r.add(topic, ms)
}

// A queue takes kept messages only while each is the next offset: it stops
// at a gap, and takes none when the next one is not kept.
func TestRecentMessagesFollowOnOrGiveWay(t *testing.T) {
	var r recentMessages
	keep(&r, "t", 1, 2, 3, 4, 5)
	keep(&r, "t", 7, 8) // 6: published by another process
	keep(&r, "other", 6)
	for _, c := range []struct {
		after    int64
		limit    int
		want     []int64
		wantMore bool
	}{
		{0, 10, []int64{1, 2, 3, 4, 5}, true}, // stops at the gap
		{2, 2, []int64{3, 4}, true},           // stops at the limit
		{5, 10, nil, true},                    // 6 is not kept: read from disk
		{6, 10, []int64{7, 8}, false},         // everything kept after 6
		{8, 10, nil, false},                   // up to date
		{-1, 10, nil, true},                   // behind what is kept
	} {
		got, more := r.after("t", c.after, c.limit)
		if !slices.Equal(offsetsOf(got), c.want) || more != c.wantMore {
			t.Errorf("after(%d, %d) = %v, more %v; want %v, more %v", c.after, c.limit, offsetsOf(got), more, c.want, c.wantMore)
		}
	}
	if got, _ := r.after("none", 0, 10); got != nil {
		t.Errorf("a topic never published to gave %v", offsetsOf(got))
	}

	// Only the last messages are kept: a queue that fell behind them reads
	// from disk.
	var long recentMessages
	for o := int64(1); o <= 10*recentKeep; o++ {
		keep(&long, "t", o)
	}
	if n := len(long.topics["t"]); n < recentKeep || n > 2*recentKeep {
		t.Errorf("%d messages kept; want between %d and %d", n, recentKeep, 2*recentKeep)
	}
	if got, more := long.after("t", 0, 10); got != nil || !more {
		t.Errorf("a queue behind what is kept got %v, more %v; want none and more", offsetsOf(got), more)
	}
	last := int64(10 * recentKeep)
	if got, more := long.after("t", last-1, 10); !slices.Equal(offsetsOf(got), []int64{last}) || more {
		t.Errorf("after(%d) = %v, more %v; want [%d], no more", last-1, offsetsOf(got), more, last)
	}
}

// A message another process writes into a topic between two of this
// store's commits (`iceshub dlq replay` does) is handed out in its place,
// though the queue finds the commits after it in memory.
func TestQueueReadsWhatAnotherProcessPublishedBetweenCommits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	s, ch := subscribed(t, ctx, dir, 1, "deliver.p")

	publishAbout(t, s, "deliver.p", "r1")
	m := receive(t, ctx, ch)
	if string(m.Payload) != "r1#0" {
		t.Fatalf("first message %q; want r1#0", m.Payload)
	}

	// Another process: its own connection, as the CLI has. The queue is
	// not woken by it (the poll interval is an hour).
	other, err := sqlite.OpenConn(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetBusyTimeout(10 * time.Second)
	out, err := s.sealMessage("deliver.p", message.NewMessage("r2-0", []byte("r2#0")))
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitex.Execute(other, `INSERT INTO 'watermill_deliver.p' (uuid, created_at, payload, metadata) VALUES (?, ?, ?, ?)`,
		&sqlitex.ExecOptions{Args: []any{out.uuid, time.Now().Format(time.RFC3339), out.payload, `{"` + intake.MetaReferralID + `":"r2"}`}}); err != nil {
		t.Fatal(err)
	}
	m.Ack()

	publishAbout(t, s, "deliver.p", "r3", "r4")
	var got []string
	for range 3 {
		m := receive(t, ctx, ch)
		got = append(got, string(m.Payload))
		m.Ack()
	}
	if want := []string{"r2#0", "r3#0", "r4#1"}; !slices.Equal(got, want) {
		t.Errorf("handed out %v; want %v", got, want)
	}
}

// Only what committed is kept: the message of a caller whose writes were
// rolled back with its savepoint never reaches a queue, and the messages
// of the callers that committed do.
func TestOnlyCommittedMessagesAreKept(t *testing.T) {
	ctx := context.Background()
	s := openWithTopics(t, "deliver.p")
	publish := func(uuid string, fail bool) func(*sqlite.Conn) error {
		return func(conn *sqlite.Conn) error {
			out, err := s.sealMessage("deliver.p", message.NewMessage(uuid, []byte(uuid)))
			if err != nil {
				return err
			}
			if err := s.insertMessage(conn, out); err != nil {
				return err
			}
			if fail {
				return errors.New("fails after publishing")
			}
			return nil
		}
	}
	var group []*txRequest
	for i, fail := range []bool{false, true, false} {
		group = append(group, &txRequest{ctx: ctx, fn: publish(fmt.Sprintf("m%d", i), fail), rerunnable: true, done: make(chan error, 1)})
	}
	s.commitGroup(group)
	for i, r := range group {
		if err := <-r.done; (err != nil) != (i == 1) {
			t.Fatalf("caller %d: %v; want only caller 1 to fail", i, err)
		}
	}
	kept, _ := s.recent.after("deliver.p", 0, 10)
	var uuids []string
	for _, m := range kept {
		uuids = append(uuids, m.uuid)
		if string(m.payload) != m.uuid {
			t.Errorf("kept message %s has payload %q", m.uuid, m.payload)
		}
	}
	if want := []string{"m0", "m2"}; !slices.Equal(uuids, want) {
		t.Errorf("kept %v; want %v (the committed ones, with the table's offsets)", uuids, want)
	}
	// The kept offsets are the table's.
	var onDisk []int64
	if err := s.read(ctx, `SELECT "offset" FROM 'watermill_deliver.p' ORDER BY "offset"`, nil, func(st *sqlite.Stmt) error {
		onDisk = append(onDisk, st.ColumnInt64(0))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(offsetsOf(kept), onDisk) {
		t.Errorf("kept offsets %v; the table has %v", offsetsOf(kept), onDisk)
	}
}

// A queue that has read everything before them takes the messages just
// committed from memory, not back from disk: with the table's copies
// spoilt, it still hands them out as published.
func TestAnUpToDateQueueTakesCommittedMessagesFromMemory(t *testing.T) {
	ctx := context.Background()
	s := openWithTopics(t, "deliver.p")
	publishAbout(t, s, "deliver.p", "r1", "r2")
	if err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		return sqlitex.Execute(conn, `UPDATE 'watermill_deliver.p' SET payload = x'00'`, nil)
	}); err != nil {
		t.Fatal(err)
	}
	q := &queue{s: s, topic: "deliver.p", inFlight: 1, log: watermill.NopLogger{}, busy: map[string]bool{}, done: map[int64]bool{}}
	if err := q.fill(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range q.pending {
		got = append(got, string(it.msg.Payload)+"@"+it.key)
	}
	if want := []string{"r1#0@r1", "r2#1@r2"}; q.blocked || !slices.Equal(got, want) {
		t.Errorf("pending %v (blocked %v); want %v from memory", got, q.blocked, want)
	}
	if q.stale {
		t.Error("the queue took everything committed and still thinks the table holds more")
	}
}
