package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/store"
)

func openTemp(t testing.TB, dir string) *SQLite {
	t.Helper()
	s, err := Open(Options{DataDir: dir, PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openWithTopics opens a store in a temporary directory with the tables of
// topics made; it is closed when the test ends.
func openWithTopics(t testing.TB, topics ...string) *SQLite {
	t.Helper()
	s := openTemp(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	if err := s.EnsureTopics(topics...); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAcceptOnceDeduplicatesByAnyKey(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()

	first := intake.Response{Status: 200, ContentType: "application/fhir+json", Body: []byte(`{"first":true}`)}
	got, dup, err := s.AcceptOnce(ctx, []string{"request:a", "message:m"}, first, "topic.x", message.NewMessage("1", []byte("one")), nil)
	if err != nil || dup || string(got.Body) != `{"first":true}` {
		t.Fatalf("first accept = %s, %v, %v", got.Body, dup, err)
	}
	// A different request id but the same message id is the same message.
	second := intake.Response{Status: 200, Body: []byte(`{"second":true}`)}
	got, dup, err = s.AcceptOnce(ctx, []string{"request:b", "message:m"}, second, "topic.x", message.NewMessage("2", []byte("two")), nil)
	if err != nil || !dup || string(got.Body) != `{"first":true}` || got.ContentType != "application/fhir+json" {
		t.Fatalf("repeat accept = %s, %v, %v; want the first response", got.Body, dup, err)
	}
	if n, err := s.Pending(ctx, "topic.x"); err != nil || n != 1 {
		t.Fatalf("pending = %d, %v; want exactly one message published", n, err)
	}
	// The answer is stored once: the second key points at the first.
	var sizes []int
	if err := s.read(ctx, `SELECT length(response) FROM idempotency WHERE key IN ('request:a', 'message:m') ORDER BY key`, nil, func(st *sqlite.Stmt) error {
		sizes = append(sizes, st.ColumnInt(0))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 2 || sizes[0] != len("=request:a") {
		t.Errorf("stored sizes (message:m, request:a) = %v; want message:m to hold only a pointer", sizes)
	}
	if got, found, err := s.StoredResponse(ctx, []string{"message:m"}); err != nil || !found || string(got.Body) != `{"first":true}` {
		t.Errorf("StoredResponse(message:m) = %s, %v, %v; want the first answer", got.Body, found, err)
	}
	// A key recorded by an earlier version, with the whole answer, still answers.
	if err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		return sqlitex.Execute(conn, `INSERT INTO idempotency (key, response, created_at) VALUES ('message:old', ?, '2026-11-01T00:00:00Z')`,
			&sqlitex.ExecOptions{Args: []any{[]byte(`{"status":200,"body":"eyJvbGQiOnRydWV9"}`)}})
	}); err != nil {
		t.Fatal(err)
	}
	if got, found, err := s.StoredResponse(ctx, []string{"message:old"}); err != nil || !found || string(got.Body) != `{"old":true}` {
		t.Errorf("StoredResponse(message:old) = %s, %v, %v; want the answer stored with it", got.Body, found, err)
	}
	// "request:b" must not have been recorded by the duplicate.
	_, dup, err = s.AcceptOnce(ctx, []string{"request:b"}, second, "topic.x", message.NewMessage("3", []byte("three")), nil)
	if err != nil || dup {
		t.Fatalf("request:b = dup %v, %v; a duplicate must record nothing", dup, err)
	}
}

func TestCommittedMessagesSurviveReopenAndAreConsumedInOrder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	s := openTemp(t, dir)
	if err := s.Commit(ctx, store.Batch{
		Messages: []store.TopicMessage{
			{Topic: "deliver.p", Message: message.NewMessage("a", []byte("first"))},
			{Topic: "deliver.p", Message: message.NewMessage("b", []byte("second"))},
		},
		Delivered: []store.Delivered{{IdempotencyKey: "k1", Recipient: "p", Kind: "referral", ReferralID: "r1", StatusCode: 201}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTemp(t, dir)
	defer s.Close()
	if ok, err := s.WasDelivered(ctx, "r1", "k1"); err != nil || !ok {
		t.Fatalf("WasDelivered(k1) = %v, %v after reopen", ok, err)
	}
	sub, err := s.NewSubscriber()
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(ctx, "deliver.p")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first", "second"} {
		select {
		case m := <-ch:
			if string(m.Payload) != want {
				t.Fatalf("got %q, want %q", m.Payload, want)
			}
			m.Ack()
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %q", want)
		}
	}
	// Pending drops to zero once the subscription records its acks.
	for {
		n, err := s.Pending(ctx, "deliver.p")
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pending stuck at %d", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The write-ahead log is started again once checkpointed, so it stays
// small however much is written while readers keep reading (a log that is
// only ever appended to grows by every byte committed, and the memory
// mapping its index with it).
func TestWriteAheadLogStaysBounded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTemp(t, dir)
	defer s.Close()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a queue's reads, all the while
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = s.Pending(ctx, "deliver.p")
		}
	}()
	payload := bytes.Repeat([]byte("x"), 8<<10)
	const commits = 1500 // 12 MB of payloads
	for i := range commits {
		m := message.NewMessage(fmt.Sprint(i), payload)
		if err := s.Commit(ctx, store.Batch{Messages: []store.TopicMessage{{Topic: "deliver.p", Message: m}}}); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	<-done
	fi, err := os.Stat(filepath.Join(dir, FileName+"-wal"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 10<<20 {
		t.Fatalf("write-ahead log is %d MB after %d MB committed; want it started again after checkpoints (at most the 8 MB journal_size_limit and a checkpoint's worth)", fi.Size()>>20, commits*len(payload)>>20)
	}
}

// TestAGroupCommitsEveryCallerButTheOneThatFailed runs callers together in
// one group, as the committer does when they arrive during a commit: the
// failing and the panicking caller's writes are undone, every other
// caller's are committed, and a caller that may not run twice runs once.
func TestAGroupCommitsEveryCallerButTheOneThatFailed(t *testing.T) {
	for _, mixed := range []bool{false, true} {
		t.Run(fmt.Sprintf("with a caller that must not run twice %v", mixed), func(t *testing.T) {
			ctx := context.Background()
			s := openTemp(t, t.TempDir())
			defer s.Close()
			put := func(key string) func(*sqlite.Conn) error {
				return func(conn *sqlite.Conn) error {
					return sqlitex.Execute(conn, `INSERT INTO meta (key, value) VALUES (?, 'x')`, &sqlitex.ExecOptions{Args: []any{key}})
				}
			}
			onceRuns := 0
			fns := []func(*sqlite.Conn) error{
				put("a"),
				func(conn *sqlite.Conn) error {
					if err := put("b")(conn); err != nil {
						return err
					}
					return errors.New("caller b fails after writing")
				},
				func(conn *sqlite.Conn) error {
					_ = put("c")(conn)
					panic("caller c panics after writing")
				},
				func(conn *sqlite.Conn) error {
					onceRuns++
					return put("d")(conn)
				},
			}
			var group []*txRequest
			for i, fn := range fns {
				rerunnable := !(mixed && i == 3)
				group = append(group, &txRequest{ctx: ctx, fn: fn, rerunnable: rerunnable, done: make(chan error, 1)})
			}
			s.commitGroup(group)
			var errs []error
			for _, r := range group {
				errs = append(errs, <-r.done)
			}
			if errs[0] != nil || errs[1] == nil || errs[2] == nil || errs[3] != nil {
				t.Fatalf("results = %v; want only b and c to fail", errs)
			}
			for key, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true} {
				found := false
				if err := s.read(ctx, `SELECT 1 FROM meta WHERE key = ?`, []any{key}, func(*sqlite.Stmt) error { found = true; return nil }); err != nil {
					t.Fatal(err)
				}
				if found != want {
					t.Errorf("key %s committed = %v, want %v", key, found, want)
				}
			}
			if mixed && onceRuns != 1 {
				t.Errorf("a caller that may not run twice ran %d times", onceRuns)
			}
		})
	}
}

// TestALoneFailingCallerLeavesNothing: a lone caller, run without a savepoint, that fails leaves nothing.
func TestALoneFailingCallerLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t, t.TempDir())
	defer s.Close()
	err := s.withTx(ctx, func(conn *sqlite.Conn) error {
		if err := sqlitex.Execute(conn, `INSERT INTO meta (key, value) VALUES ('lone', 'x')`, nil); err != nil {
			return err
		}
		return errors.New("fails after writing")
	})
	if err == nil {
		t.Fatal("the caller's error was lost")
	}
	found := false
	if err := s.read(ctx, `SELECT 1 FROM meta WHERE key = 'lone'`, nil, func(*sqlite.Stmt) error { found = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if found {
		t.Fatal("a failed caller's write was committed")
	}
}

// TestArrivalsSeeLoadAndQuiet: the committer waits for more callers only
// at a rate where more are due within the delay; after a quiet spell the
// first caller sees the quiet.
func TestArrivalsSeeLoadAndQuiet(t *testing.T) {
	var a arrivals
	t0 := time.Unix(1_700_000_000, 0)
	if got := a.expected(t0, time.Millisecond); got != 0 {
		t.Fatalf("expected with no history = %v, want 0", got)
	}
	a.add(300) // 300 callers in the first 100 ms: 3,000 a second
	if got := a.expected(t0.Add(arrivalWindow), time.Millisecond); got < 2.9 || got > 3.1 {
		t.Fatalf("expected within 1ms at 3,000/s = %v, want 3", got)
	}
	a.add(1)
	if got := a.expected(t0.Add(arrivalWindow+10*time.Second), time.Millisecond); got >= 2 {
		t.Fatalf("expected after 10 s of quiet = %v, want below 2 (no waiting)", got)
	}
}

// TestGatherHoldsTheGroupOpenUntilFullOrDue: callers that arrive within
// the delay join the group; a full group goes at once.
func TestGatherHoldsTheGroupOpenUntilFullOrDue(t *testing.T) {
	s := &SQLite{txs: make(chan *txRequest)}
	stop := make(chan struct{})
	feed := func(n int) {
		for range n {
			s.txs <- &txRequest{}
		}
	}
	go feed(5)
	if got := s.gather([]*txRequest{{}}, 200*time.Millisecond, stop); len(got) != 6 {
		t.Fatalf("group = %d callers, want the first and the 5 that came within the delay", len(got))
	}
	// More than a group holds: the group stops at maxGroup and the rest
	// wait for the next one.
	go feed(maxGroup + 4)
	if got := s.gather([]*txRequest{{}}, 2*time.Second, stop); len(got) != maxGroup {
		t.Fatalf("group = %d callers, want maxGroup (%d)", len(got), maxGroup)
	}
	for range 5 {
		<-s.txs
	}
}

// TestGroupStatsCountCommitsAndWrites: what /metrics reports of the group
// commits.
func TestGroupStatsCountCommitsAndWrites(t *testing.T) {
	s := openTemp(t, t.TempDir())
	defer s.Close()
	groups0, writes0 := s.GroupStats()
	for range 3 {
		if err := s.Probe(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	groups, writes := s.GroupStats()
	if writes-writes0 != 3 || groups-groups0 < 1 || groups-groups0 > 3 {
		t.Fatalf("after 3 sequential writes: %d commits, %d writes; want 3 writes in 1 to 3 commits", groups-groups0, writes-writes0)
	}
}

// TestReceiptsOfAnOlderDatabaseAreMoved: a database written when receipts
// were kept in table delivered (keyed by idempotency key) opens with every
// receipt in receipts, so that a copy delivered before the upgrade is
// still recognised as delivered, and the old table is gone.
func TestReceiptsOfAnOlderDatabaseAreMoved(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	conn, err := sqlite.OpenConn(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitex.ExecuteScript(conn, `CREATE TABLE delivered (
			idempotency_key   TEXT NOT NULL PRIMARY KEY,
			recipient         TEXT NOT NULL,
			kind              TEXT NOT NULL,
			referral_id       TEXT NOT NULL,
			partner_reference TEXT NOT NULL,
			status_code       INTEGER NOT NULL,
			at                TEXT NOT NULL
		);
		CREATE INDEX delivered_referral ON delivered(referral_id);
		INSERT INTO delivered VALUES ('k-old', 'provider', 'referral', 'r-old', 'ORD-1', 201, '2026-11-01T10:00:00Z');`, nil); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTemp(t, dir)
	defer s.Close()
	if ok, err := s.WasDelivered(ctx, "r-old", "k-old"); err != nil || !ok {
		t.Fatalf("WasDelivered of a receipt written before the upgrade = %v, %v", ok, err)
	}
	got, err := s.Deliveries(ctx, "r-old")
	if err != nil || len(got) != 1 || got[0].PartnerReference != "ORD-1" || got[0].StatusCode != 201 {
		t.Fatalf("Deliveries = %+v, %v; want the old receipt whole", got, err)
	}
	gone := true
	if err := s.read(ctx, `SELECT 1 FROM sqlite_master WHERE name = 'delivered'`, nil, func(*sqlite.Stmt) error { gone = false; return nil }); err != nil {
		t.Fatal(err)
	}
	if !gone {
		t.Error("table delivered is still there")
	}
}

// A commit holds the writer's lock through its fsync. Readers, and callers
// checking that their topics exist before they submit, must not wait for
// it: before, every delivery's read queued behind the commit in progress.
func TestReadsAndTopicChecksDoNotWaitForTheWriter(t *testing.T) {
	ctx := context.Background()
	s := openWithTopics(t, "topic.x")
	s.mu.Lock() // as commitGroup holds it through COMMIT
	done := make(chan error, 2)
	go func() {
		_, err := s.WasDelivered(ctx, "ref-1", "key-1")
		done <- err
	}()
	go func() { done <- s.EnsureTopics("topic.x") }()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(10 * time.Second):
			s.mu.Unlock()
			t.Fatal("a read or a check of an existing topic waited for the write connection's lock")
		}
	}
	s.mu.Unlock()
}
