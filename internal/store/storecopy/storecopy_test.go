package storecopy

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	zsqlite "zombiezen.com/go/sqlite"
	"zombiezen.com/go/sqlite/sqlitex"

	"github.com/iceshub/iceshub/internal/crypt"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/postgres"
	"github.com/iceshub/iceshub/internal/store/postgres/pgtest"
	"github.com/iceshub/iceshub/internal/store/sqlite"
	"github.com/iceshub/iceshub/internal/store/storetest"
)

// newSource returns a new SQLite store with keys of its own, the path of
// its file, and target, which opens a new, empty PostgreSQL store with the
// same keys (closed when the test ends) to copy it into.
func newSource(t *testing.T) (src *sqlite.SQLite, path string, target func() *postgres.Postgres) {
	t.Helper()
	url := pgtest.URL(t)
	key, _ := crypt.NewKey()
	keys, _ := crypt.NewKeyring(key)
	dir := t.TempDir()
	src, err := sqlite.Open(sqlite.Options{DataDir: dir, Keyring: keys})
	if err != nil {
		t.Fatal(err)
	}
	return src, filepath.Join(dir, sqlite.FileName), func() *postgres.Postgres {
		t.Helper()
		dst, err := postgres.Open(context.Background(), postgres.Options{URL: url, Keyring: keys, Migrate: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dst.Close() })
		return dst
	}
}

// A SQLite store with a delivered referral, pending copies, a parked copy,
// a dead letter and a held message is copied whole: the PostgreSQL store
// answers the same requests the same way, offers the pending copies in
// order, reads every sealed value with the same keys, and its disclosure
// chain verifies and ends where the source's did.
func TestCopyMovesEverythingAndRefusesAFullTarget(t *testing.T) {
	ctx := context.Background()
	src, path, target := newSource(t)
	storetest.AcceptReferral(t, src, "ref-1", "sr-1")
	storetest.AcceptReferral(t, src, "ref-2", "sr-2")
	storetest.FillRecord(t, src, 7)
	var batch store.Batch
	for _, id := range []string{"c1", "c2", "c3"} {
		m := message.NewMessage(id, []byte("copy "+id))
		m.Metadata.Set(intake.MetaReferralID, "ref-1")
		batch.Messages = append(batch.Messages, store.TopicMessage{Topic: "deliver.provider", Message: m})
	}
	del, _ := model.MarshalDelivery(model.Delivery{Recipient: "provider", IdempotencyKey: "k-dead", Referral: model.Referral{ID: "ref-2"}})
	batch.DeadLetters = []store.DeadLetter{{Recipient: "provider", Kind: "referral", ReferralID: "ref-2", IdempotencyKey: "k-dead",
		StatusCode: 422, PartnerAnswer: "no such product", Error: "refused", Payload: del}}
	batch.Holds = []store.Hold{{ReferralID: "ref-2", Kind: "referral", Route: "council", Reason: "no council", Payload: []byte("held copy")}}
	batch.Park = []store.Parked{{Partner: "provider", Lane: "ref-2", Kind: "referral", ReferralID: "ref-2", IdempotencyKey: "k-park",
		Payload: []byte("parked copy"), Attempts: 2, NextAt: time.Now(), FirstFailed: time.Now()}}
	batch.Delivered = []store.Delivered{{ReferralID: "ref-1", IdempotencyKey: "k-1", Recipient: "council-a", Kind: "referral", StatusCode: 201}}
	if err := src.EnsureTopics("deliver.provider"); err != nil {
		t.Fatal(err)
	}
	if err := src.Commit(ctx, batch); err != nil {
		t.Fatal(err)
	}
	srcChain := storetest.Verify(t, src)
	src.Close()

	dst := target()
	rep, err := Copy(ctx, path, dst)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Chain.OK || rep.Chain.Head != srcChain.Head || rep.Chain.Entries != srcChain.Entries {
		t.Errorf("copied chain %+v, source %+v", rep.Chain, srcChain)
	}
	if rep.Pending["deliver.provider"] != 3 || rep.Pending["referral.received"] != 2 {
		t.Errorf("pending copied = %v", rep.Pending)
	}
	if resp, dup, err := dst.StoredResponse(ctx, []string{"request:ref-1"}); err != nil || !dup || resp.Status != 200 {
		t.Errorf("the copy's answer to a request seen = %+v %v %v", resp, dup, err)
	}
	if rec, ok, err := dst.FindReferral(ctx, intake.Lookup{ServiceRequestID: "sr-2"}); err != nil || !ok || rec.Referral.Person.NHSNumber != "9990000018" {
		t.Errorf("the copy's referral = %+v %v %v", rec, ok, err)
	}
	dls, err := dst.DeadLetters(ctx)
	if err != nil || len(dls) != 1 || dls[0].PartnerAnswer != "no such product" {
		t.Errorf("dead letters = %+v, %v", dls, err)
	}
	if h, err := dst.HeldMessage(ctx, 1); err != nil || string(h.Payload) != "held copy" {
		t.Errorf("held = %+v, %v", h, err)
	}
	if due, err := dst.DueParked(ctx, "provider", time.Now().Add(time.Second), 10); err != nil || len(due) != 1 || string(due[0].Payload) != "parked copy" {
		t.Errorf("parked = %+v, %v", due, err)
	}
	// The copies come out in order, the first one first.
	sub, _ := dst.NewSubscriber()
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, "deliver.provider")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"c1", "c2", "c3"} {
		select {
		case m := <-msgs:
			if m.UUID != want || string(m.Payload) != "copy "+want {
				t.Fatalf("got %s %q, want %s", m.UUID, m.Payload, want)
			}
			m.Ack()
		case <-time.After(30 * time.Second):
			t.Fatalf("no %s", want)
		}
	}
	if _, err := dst.ReplayDeadLetter(ctx, dls[0].ID, store.Replay{By: "ops", Topic: func(p string) string { return "deliver." + p }}); err != nil {
		t.Errorf("replay of the copied dead letter: %v", err)
	}
	// The chain goes on from the copy.
	storetest.FillRecord(t, dst, 2)
	if v := storetest.Verify(t, dst); !v.OK || v.Entries != srcChain.Entries+2 {
		t.Errorf("after two more entries: %+v", v)
	}
	if _, err := Copy(ctx, path, dst); !errors.Is(err, ErrTargetNotEmpty) {
		t.Errorf("copy into a used store: %v, want ErrTargetNotEmpty", err)
	}
}

// The operator accounts and the operator record are copied too: a
// disabled account stays disabled with its hash, and the record verifies
// and goes on from where its source ended.
func TestCopyKeepsTheOperatorsAndTheirRecord(t *testing.T) {
	ctx := context.Background()
	src, path, target := newSource(t)
	if err := src.AddOperator(ctx, store.Operator{Name: "desk1", Role: store.RoleOperator, PasswordHash: "$2a$hash"}); err != nil {
		t.Fatal(err)
	}
	if err := src.DisableOperator(ctx, "desk1"); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"held:1", "dead-letter:1"} {
		if err := src.RecordOperatorAction(ctx, store.OperatorAction{Operator: "desk1", Action: "close", Target: target, Outcome: "closed"}); err != nil {
			t.Fatal(err)
		}
	}
	// A permission an operator recorded with a referral is copied with it.
	storetest.AcceptReferral(t, src, "ref-perm", "sr-perm")
	given := model.Permission{Given: true, Source: "operator-recorded", Recorded: "2026-12-07"}
	if err := src.Commit(ctx, store.Batch{Refs: []store.RefUpdate{{ReferralID: "ref-perm", Permission: &given}}}); err != nil {
		t.Fatal(err)
	}
	srcOps, _ := src.VerifyOperatorRecord(ctx)
	src.Close()
	dst := target()
	if _, err := Copy(ctx, path, dst); err != nil {
		t.Fatal(err)
	}
	if o, err := dst.Operator(ctx, "desk1"); err != nil || !o.Disabled || o.PasswordHash != "$2a$hash" || o.Role != store.RoleOperator {
		t.Errorf("copied operator %+v, %v", o, err)
	}
	if err := dst.RecordOperatorAction(ctx, store.OperatorAction{Operator: "desk1", Action: "sign-in", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	if v, err := dst.VerifyOperatorRecord(ctx); err != nil || !v.OK || v.Entries != 3 || !srcOps.OK || srcOps.Entries != 2 {
		t.Errorf("operator record after the copy and one more entry: %+v, %v (source %+v)", v, err, srcOps)
	}
	if rec, found, err := dst.FindReferral(ctx, intake.Lookup{ReferralID: "ref-perm"}); err != nil || !found ||
		rec.Referral.Permission == nil || *rec.Referral.Permission != given {
		t.Errorf("copied referral's permission: %+v, %v", rec.Referral.Permission, err)
	}
}

// A SQLite store last run by a release before the referrals' permission
// column is brought up to date by the copy, which then copies it.
func TestCopyBringsAnOlderStoreUpToDate(t *testing.T) {
	ctx := context.Background()
	src, path, target := newSource(t)
	storetest.AcceptReferral(t, src, "ref-old", "sr-old")
	src.Close()
	conn, err := zsqlite.OpenConn(path, zsqlite.OpenReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitex.ExecuteScript(conn, `ALTER TABLE referrals DROP COLUMN permission;
		DELETE FROM goose_db_version WHERE version_id = 7;`, nil); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	dst := target()
	if _, err := Copy(ctx, path, dst); err != nil {
		t.Fatalf("copy of an older store: %v", err)
	}
	if rec, found, err := dst.FindReferral(ctx, intake.Lookup{ReferralID: "ref-old"}); err != nil || !found || rec.Referral.Permission != nil {
		t.Errorf("copied referral %+v, found %v, %v", rec.Referral.Permission, found, err)
	}
}
