package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/store"
)

func testOperatorAccounts(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if err := s.AddOperator(ctx, store.Operator{Name: "desk1", Role: store.RoleOperator, PasswordHash: "$2a$hash1", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddOperator(ctx, store.Operator{Name: "dpo", Role: store.RoleDPO, PasswordHash: "$2a$hash2", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddOperator(ctx, store.Operator{Name: "desk1", Role: store.RoleViewer, PasswordHash: "x"}); !errors.Is(err, store.ErrOperatorExists) {
		t.Fatalf("second desk1: %v, want ErrOperatorExists", err)
	}
	if err := s.AddOperator(ctx, store.Operator{Name: "x", Role: "admin", PasswordHash: "x"}); err == nil {
		t.Fatal("an unknown role was accepted")
	}
	if _, err := s.Operator(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown operator: %v, want ErrNotFound", err)
	}
	o, err := s.Operator(ctx, "desk1")
	if err != nil || o.Role != store.RoleOperator || o.PasswordHash != "$2a$hash1" || o.Disabled || !o.CreatedAt.Equal(at) {
		t.Fatalf("desk1 = %+v, %v", o, err)
	}
	list, err := s.ListOperators(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "desk1" || list[1].Name != "dpo" {
		t.Fatalf("list = %+v, %v", list, err)
	}

	// Failed sign-ins count up until a success clears them.
	for want := 1; want <= 3; want++ {
		n, err := s.SignInFailed(ctx, "desk1", at.Add(time.Duration(want)*time.Minute))
		if err != nil || n != want {
			t.Fatalf("failure %d counted as %d, %v", want, n, err)
		}
	}
	if o, _ := s.Operator(ctx, "desk1"); o.FailedSignIns != 3 || !o.LastFailedAt.Equal(at.Add(3*time.Minute)) {
		t.Fatalf("after 3 failures: %+v", o)
	}
	if err := s.SignInSucceeded(ctx, "desk1"); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.Operator(ctx, "desk1"); o.FailedSignIns != 0 || !o.LastFailedAt.IsZero() {
		t.Fatalf("after success: %+v", o)
	}
	if _, err := s.SignInFailed(ctx, "nobody", at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("failure of an unknown operator: %v", err)
	}

	if err := s.SetOperatorPassword(ctx, "desk1", "$2a$new"); err != nil {
		t.Fatal(err)
	}
	if err := s.DisableOperator(ctx, "desk1"); err != nil {
		t.Fatal(err)
	}
	if o, _ := s.Operator(ctx, "desk1"); !o.Disabled || o.PasswordHash != "$2a$new" {
		t.Fatalf("after disable: %+v", o)
	}
	if err := s.DisableOperator(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("disable unknown: %v", err)
	}
	if o, _ := s.Operator(ctx, "dpo"); o.Disabled {
		t.Fatal("disabling desk1 disabled dpo")
	}
}

func testOperatorRecordChains(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	if rep, err := s.VerifyOperatorRecord(ctx); err != nil || !rep.OK || rep.Entries != 0 {
		t.Fatalf("empty record: %+v, %v", rep, err)
	}
	if err := s.RecordOperatorAction(ctx, store.OperatorAction{Action: "sign-in"}); err == nil {
		t.Fatal("an action without its operator was recorded")
	}
	at := time.Date(2026, 12, 1, 9, 0, 0, 123456789, time.UTC)
	actions := []store.OperatorAction{
		{At: at, Operator: "desk1", Action: "sign-in", Outcome: "ok"},
		{At: at.Add(time.Minute), Operator: "desk1", Action: "held.route", Target: "held:1", Outcome: "routed", Detail: "council-cwac"},
		{At: at.Add(2 * time.Minute), Operator: "dpo", Action: "subject-access.view", Target: "subject:sbj_a", Outcome: "ok"},
	}
	for _, a := range actions {
		if err := s.RecordOperatorAction(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := s.VerifyOperatorRecord(ctx)
	if err != nil || !rep.OK || rep.Entries != 3 || len(rep.Head) != 64 {
		t.Fatalf("untouched record: %+v, %v", rep, err)
	}
	got, err := s.OperatorActions(ctx, 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("newest 2: %+v, %v", got, err)
	}
	if got[0].ID != 3 || got[0].Operator != "dpo" || got[1].Action != "held.route" || got[1].Target != "held:1" ||
		got[1].Detail != "council-cwac" || !got[1].At.Equal(at.Add(time.Minute)) {
		t.Fatalf("newest first: %+v", got)
	}
	// Each entry's hash is the digest of its contents chained to the one
	// before: any engine's record verifies the same way.
	all, _ := s.OperatorActions(ctx, 10)
	if all[0].Hash != rep.Head || all[0].Hash != all[0].Digest(all[1].Hash) || all[2].Hash != all[2].Digest("") {
		t.Fatalf("hashes do not chain: %+v", all)
	}
	changed := all[1]
	changed.Detail = "council-ceast"
	if changed.Digest(all[2].Hash) == all[1].Hash {
		t.Fatal("a changed entry has the same digest")
	}
}

func testActivityCountsDeliveriesByPartnerAndHour(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	s := open(t)
	defer s.Close()
	at := time.Date(2026, 12, 7, 9, 15, 0, 0, time.UTC)
	var b store.Batch
	for i, d := range []struct {
		to string
		at time.Time
	}{{"provider", at}, {"provider", at.Add(10 * time.Minute)}, {"provider", at.Add(time.Hour)}, {"council-a", at}, {"provider", at.Add(-3 * time.Hour)}} {
		b.Delivered = append(b.Delivered, store.Delivered{At: d.at, IdempotencyKey: "k" + string(rune('0'+i)), Recipient: d.to, Kind: "referral",
			ReferralID: "r1", StatusCode: 201})
	}
	b.Disclosures = []store.Disclosure{
		{ReferralID: "r1", CorrelationID: "corr-1", Recipient: "provider", Outcome: store.OutcomeSent},
		{ReferralID: "r2", CorrelationID: "corr-2", Recipient: "provider", Outcome: store.OutcomeSent},
		{ReferralID: "r1", CorrelationID: "corr-1", Recipient: "council-a", Outcome: store.OutcomeSent},
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	totals, err := s.DeliveredTotals(ctx)
	if err != nil || totals["provider"] != 4 || totals["council-a"] != 1 || len(totals) != 2 {
		t.Fatalf("totals %v, %v", totals, err)
	}
	hours, err := s.DeliveredSince(ctx, at.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []store.DeliveredHour{
		{Recipient: "council-a", Hour: at.Truncate(time.Hour), Count: 1},
		{Recipient: "provider", Hour: at.Truncate(time.Hour), Count: 2},
		{Recipient: "provider", Hour: at.Truncate(time.Hour).Add(time.Hour), Count: 1},
	}
	if len(hours) != len(want) {
		t.Fatalf("hours %+v, want %+v", hours, want)
	}
	for i := range want {
		if hours[i].Recipient != want[i].Recipient || !hours[i].Hour.Equal(want[i].Hour) || hours[i].Count != want[i].Count {
			t.Fatalf("hours %+v, want %+v", hours, want)
		}
	}
	ids, err := s.ReferralsByCorrelation(ctx, "corr-1")
	if err != nil || len(ids) != 1 || ids[0] != "r1" {
		t.Fatalf("by correlation: %v, %v", ids, err)
	}
	if ids, _ := s.ReferralsByCorrelation(ctx, "nothing"); len(ids) != 0 {
		t.Fatalf("unknown correlation: %v", ids)
	}
}

// sessionRig is a store with two operators, desk1 and desk2, and the
// console's session rules: idle 30 minutes, lifetime 8 hours.
type sessionRig struct {
	t  *testing.T
	s  store.Engine
	t0 time.Time
}

const sessionIdle, sessionLifetime = 30 * time.Minute, 8 * time.Hour

func newSessionRig(t *testing.T, open func(t *testing.T) store.Engine) *sessionRig {
	s := open(t)
	t.Cleanup(func() { s.Close() })
	r := &sessionRig{t: t, s: s, t0: time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.UTC)}
	for _, name := range []string{"desk1", "desk2"} {
		if err := s.AddOperator(context.Background(), store.Operator{Name: name, Role: store.RoleOperator, PasswordHash: "$2a$h", CreatedAt: r.t0}); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// start signs operator in at at with the cookie token and returns the
// session's ID.
func (r *sessionRig) start(token, operator string, at time.Time) string {
	r.t.Helper()
	id := store.SessionID(token)
	cs := store.ConsoleSession{ID: id, Operator: operator, Role: store.RoleOperator, CSRF: "csrf-" + token, Started: at, Seen: at}
	if err := r.s.StartConsoleSession(context.Background(), cs, at.Add(-sessionIdle), at.Add(-sessionLifetime)); err != nil {
		r.t.Fatal(err)
	}
	return id
}

// use is a request of session id at now.
func (r *sessionRig) use(id string, now time.Time) (store.ConsoleSession, error) {
	return r.s.UseConsoleSession(context.Background(), id, now, now.Add(-sessionIdle), now.Add(-sessionLifetime))
}

// Console sessions: a session is found by its ID while it lives, marked
// seen (never back), carries one flash message, and ends when it has been
// idle too long or is past its lifetime.
func testConsoleSessionsLiveAndExpire(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	r := newSessionRig(t, open)
	s, t0, start, use := r.s, r.t0, r.start, r.use
	const idle, lifetime = sessionIdle, sessionLifetime
	if id := store.SessionID("token-a"); len(id) != 64 || id == "token-a" || id != store.SessionID("token-a") || id == store.SessionID("token-b") {
		t.Fatalf("SessionID = %q", id)
	}

	a := start("token-a", "desk1", t0)
	got, err := use(a, t0.Add(time.Minute))
	if err != nil || got.ID != a || got.Operator != "desk1" || got.Role != store.RoleOperator || got.CSRF != "csrf-token-a" ||
		!got.Started.Equal(t0) || !got.Seen.Equal(t0.Add(time.Minute)) || got.Flash != "" {
		t.Fatalf("use = %+v, %v", got, err)
	}
	// A hub whose clock is a little behind does not move seen back.
	if got, err := use(a, t0.Add(30*time.Second)); err != nil || !got.Seen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("use from a slower clock = %+v, %v", got, err)
	}
	if _, err := use(store.SessionID("token-unknown"), t0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}

	// The flash message is shown once.
	if err := s.SetConsoleFlash(ctx, a, "Held message 3 routed."); err != nil {
		t.Fatal(err)
	}
	if got, _ := use(a, t0.Add(2*time.Minute)); got.Flash != "Held message 3 routed." {
		t.Fatalf("flash on use = %q", got.Flash)
	}
	for i, want := range []string{"Held message 3 routed.", ""} {
		if msg, err := s.TakeConsoleFlash(ctx, a); err != nil || msg != want {
			t.Fatalf("take %d = %q, %v; want %q", i, msg, err, want)
		}
	}
	if msg, err := s.TakeConsoleFlash(ctx, store.SessionID("token-unknown")); err != nil || msg != "" {
		t.Fatalf("take of an unknown session = %q, %v", msg, err)
	}

	// Idle too long: ended, and not found afterwards however it is asked.
	if _, err := use(a, t0.Add(2*time.Minute+idle+time.Nanosecond)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle session: %v, want ErrNotFound", err)
	}
	if _, err := s.UseConsoleSession(ctx, a, t0, t0.Add(-24*time.Hour), t0.Add(-24*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired session was kept: %v", err)
	}

	// Used all along, but past its lifetime.
	b := start("token-b", "desk1", t0)
	for at := t0.Add(20 * time.Minute); at.Before(t0.Add(lifetime)); at = at.Add(20 * time.Minute) {
		if _, err := use(b, at); err != nil {
			t.Fatalf("b at %v: %v", at, err)
		}
	}
	if _, err := use(b, t0.Add(lifetime+time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session past its lifetime: %v, want ErrNotFound", err)
	}
}

// Console sessions end when another sign-in finds them expired, when
// signed out, or when their operator is disabled or given a new password;
// no one else's end with them.
func testConsoleSessionsEnd(t *testing.T, open func(t *testing.T) store.Engine) {
	ctx := context.Background()
	r := newSessionRig(t, open)
	s, t0, start, use := r.s, r.t0, r.start, r.use
	const idle = sessionIdle
	// Starting a session ends the expired ones, not the live ones.
	c := start("token-c", "desk1", t0)
	d := start("token-d", "desk2", t0.Add(idle))
	e := start("token-e", "desk2", t0.Add(idle+time.Minute))
	if _, err := s.UseConsoleSession(ctx, c, t0, t0.Add(-24*time.Hour), t0.Add(-24*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired session outlived a new one: %v", err)
	}
	if _, err := use(d, t0.Add(idle+2*time.Minute)); err != nil {
		t.Fatalf("a live session ended by a new one: %v", err)
	}

	// Signing out ends one session.
	if err := s.EndConsoleSession(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := use(e, t0.Add(idle+2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("signed out: %v, want ErrNotFound", err)
	}

	// A new password, or a disabled account, ends that operator's
	// sessions and no one else's; a successful sign-in ends none.
	now := t0.Add(idle + 3*time.Minute)
	f := start("token-f", "desk1", now)
	if err := s.SignInSucceeded(ctx, "desk1"); err != nil {
		t.Fatal(err)
	}
	if _, err := use(f, now); err != nil {
		t.Fatalf("a sign-in ended another session: %v", err)
	}
	if err := s.SetOperatorPassword(ctx, "desk1", "$2a$new"); err != nil {
		t.Fatal(err)
	}
	if _, err := use(f, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session outlived its operator's new password: %v", err)
	}
	if _, err := use(d, now); err != nil {
		t.Fatalf("desk1's new password ended desk2's session: %v", err)
	}
	if err := s.DisableOperator(ctx, "desk2"); err != nil {
		t.Fatal(err)
	}
	if _, err := use(d, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a session outlived its operator's account: %v", err)
	}
}
