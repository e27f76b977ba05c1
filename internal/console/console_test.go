package console

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/iceshub/iceshub/internal/logging"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
	"github.com/iceshub/iceshub/internal/store/storetest"
	"github.com/iceshub/iceshub/routes"
)

// fakeHeld records what the console asked of the held resolver.
type fakeHeld struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeHeld) add(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeHeld) Route(_ context.Context, id int64, council, by, reason string) (routes.Resolved, error) {
	f.add("route " + council + " by " + by + ": " + reason)
	return routes.Resolved{ID: id, Action: store.ActionRouted, Recipient: council, Kind: "referral"}, nil
}

func (f *fakeHeld) Release(_ context.Context, id int64, p store.PermissionRecord, by, reason string) (routes.Resolved, error) {
	f.add("release by " + by + " evidence " + p.Evidence)
	return routes.Resolved{ID: id, Action: store.ActionReleased, Recipient: "provider", Kind: "referral"}, nil
}

func (f *fakeHeld) Close(_ context.Context, id int64, by, reason string) (routes.Resolved, error) {
	f.add("close by " + by)
	return routes.Resolved{ID: id, Action: store.ActionClosed}, nil
}

func (f *fakeHeld) Replay(_ context.Context, id int64, by, reason string) (model.Delivery, error) {
	f.add("replay by " + by)
	return model.Delivery{Recipient: "provider", Kind: "referral"}, nil
}

func (f *fakeHeld) Discard(_ context.Context, id int64, by, reason string) error {
	f.add("discard by " + by)
	return nil
}

func (f *fakeHeld) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

type rig struct {
	srv   *httptest.Server
	st    *sqlite.SQLite
	held  *fakeHeld
	logs  *bytes.Buffer
	clock *clock
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const testPassword = "correct horse battery"

func newRig(t *testing.T) *rig {
	t.Helper()
	bcryptCost = bcrypt.MinCost // the cost is not what these tests are about
	st, err := sqlite.Open(sqlite.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hash, err := HashPassword(testPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct{ name, role string }{{"vera", store.RoleViewer}, {"otto", store.RoleOperator}, {"dana", store.RoleDPO}} {
		if err := st.AddOperator(context.Background(), store.Operator{Name: o.name, Role: o.role, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	r := &rig{st: st, held: &fakeHeld{}, logs: &bytes.Buffer{}, clock: &clock{t: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}}
	r.srv = r.anotherHub(t)
	return r
}

// anotherHub serves a console of its own on the rig's store, clock and
// log, as a second hub behind the same load balancer would.
func (r *rig) anotherHub(t *testing.T) *httptest.Server {
	t.Helper()
	c, err := New(Config{Store: r.st, Held: r.held, DeadLetter: r.held, Subject: func(n string) string { return "sbj_" + n[len(n)-2:] },
		SubjectAccess: func(ctx context.Context, n string, received time.Time) (SubjectReport, error) {
			return SubjectReport{NHSNumber: n, Download: []byte(`{"nhsNumber":"` + n + `"}`)}, nil
		},
		Partners: []Partner{{ID: "provider", Kind: "provider"}, {ID: "council-cwac", Kind: "council"}},
		Stats:    smallStats,
		Now:      r.clock.now, Logger: slog.New(logging.New(slog.NewTextHandler(r.logs, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// client is a browser without redirects followed, with a cookie jar.
func (r *rig) client(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in:\n%s", body)
	}
	return m[1]
}

// signIn signs name in and returns the session's CSRF token.
func (r *rig) signIn(t *testing.T, c *http.Client, name, password string) (*http.Response, string) {
	t.Helper()
	_, body := get(t, c, r.srv.URL+"/console/login")
	resp, _ := post(t, c, r.srv.URL+"/console/login", url.Values{"csrf": {csrfOf(t, body)}, "name": {name}, "password": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		return resp, ""
	}
	_, body = get(t, c, r.srv.URL+"/console/")
	return resp, csrfOf(t, body)
}

func TestNotSignedInGoesToSignIn(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	for _, p := range []string{"/console/", "/console/held", "/console/dead-letters/1", "/console/record", "/console/subject-access", "/console/stats"} {
		resp, _ := get(t, c, r.srv.URL+p)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
			t.Errorf("%s: %d to %q, want 303 to /console/login", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	resp, _ := post(t, c, r.srv.URL+"/console/held/1/close", url.Values{"reason": {"x"}})
	if resp.StatusCode != http.StatusForbidden || len(r.held.Calls()) != 0 {
		t.Fatalf("POST not signed in: %d, calls %v", resp.StatusCode, r.held.Calls())
	}
}

func TestSignInSetsAStrictHttpOnlyCookie(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	resp, _ := r.signIn(t, c, "otto", testPassword)
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == SessionCookie {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/console/" || len(session.Value) < 40 {
		t.Fatalf("session cookie %+v", session)
	}
	// Not over TLS here: not Secure; the console sets it over TLS.
	if session.Secure {
		t.Fatal("Secure over plain HTTP: the browser would never send it back")
	}
	_, body := get(t, c, r.srv.URL+"/console/")
	if !strings.Contains(body, "otto (operator)") {
		t.Fatalf("overview does not name the operator:\n%s", body)
	}
	acts, _ := r.st.OperatorActions(context.Background(), 10)
	if len(acts) != 1 || acts[0].Operator != "otto" || acts[0].Action != "sign-in" || acts[0].Outcome != "ok" {
		t.Fatalf("operator record %+v", acts)
	}
}

func TestLockoutAfterRepeatedFailures(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	for i := range DefaultMaxFailures {
		if resp, _ := r.signIn(t, c, "otto", "wrong password "+string(rune('a'+i))); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	// Locked: the right password is refused too, with the same answer.
	if resp, _ := r.signIn(t, c, "otto", testPassword); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("locked account signed in: %d", resp.StatusCode)
	}
	r.clock.add(DefaultLockFor - time.Minute)
	if resp, _ := r.signIn(t, c, "otto", testPassword); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("signed in before the lock ended: %d", resp.StatusCode)
	}
	r.clock.add(2 * time.Minute)
	if resp, _ := r.signIn(t, c, "otto", testPassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the lock: %d", resp.StatusCode)
	}
	if o, _ := r.st.Operator(context.Background(), "otto"); o.FailedSignIns != 0 {
		t.Fatalf("failures not cleared: %+v", o)
	}
	// Another account was never locked.
	if resp, _ := r.signIn(t, r.client(t), "vera", testPassword); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("vera: %d", resp.StatusCode)
	}
	rep, _ := r.st.VerifyOperatorRecord(context.Background())
	if !rep.OK || rep.Entries < DefaultMaxFailures+2 {
		t.Fatalf("operator record: %+v", rep)
	}
}

func TestDisabledAndUnknownRefusedAlike(t *testing.T) {
	r := newRig(t)
	if err := r.st.DisableOperator(context.Background(), "vera"); err != nil {
		t.Fatal(err)
	}
	_, unknown := func() (*http.Response, string) {
		c := r.client(t)
		_, body := get(t, c, r.srv.URL+"/console/login")
		return post(t, c, r.srv.URL+"/console/login", url.Values{"csrf": {csrfOf(t, body)}, "name": {"nobody"}, "password": {testPassword}})
	}()
	resp, _ := r.signIn(t, r.client(t), "vera", testPassword)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(unknown, "Sign-in refused") {
		t.Fatalf("disabled: %d; unknown said:\n%s", resp.StatusCode, unknown)
	}
}

func TestFormsWithoutTheirCSRFTokenAreRefused(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	// The sign-in form too.
	get(t, c, r.srv.URL+"/console/login")
	if resp, _ := post(t, c, r.srv.URL+"/console/login", url.Values{"name": {"otto"}, "password": {testPassword}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without token: %d", resp.StatusCode)
	}
	_, csrf := r.signIn(t, c, "otto", testPassword)
	for _, form := range []url.Values{
		{"reason": {"sent in error"}},
		{"reason": {"sent in error"}, "csrf": {"forged"}},
	} {
		resp, body := post(t, c, r.srv.URL+"/console/held/1/close", form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "security token") {
			t.Fatalf("close with %v: %d", form, resp.StatusCode)
		}
	}
	if calls := r.held.Calls(); len(calls) != 0 {
		t.Fatalf("a refused form acted: %v", calls)
	}
	resp, _ := post(t, c, r.srv.URL+"/console/held/1/close", url.Values{"reason": {"sent in error"}, "csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("close with the token: %d", resp.StatusCode)
	}
	if calls := r.held.Calls(); len(calls) != 1 || calls[0] != "close by console:otto" {
		t.Fatalf("calls %v", calls)
	}
}

func TestAViewerCannotAct(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	_, csrf := r.signIn(t, c, "vera", testPassword)
	for _, p := range []string{"/console/held/1/route", "/console/held/1/release", "/console/held/1/close",
		"/console/dead-letters/1/replay", "/console/dead-letters/1/discard", "/console/subject-access"} {
		resp, _ := post(t, c, r.srv.URL+p, url.Values{"csrf": {csrf}, "reason": {"x"}, "council": {"council-cwac"},
			"permission_by": {"OT"}, "evidence": {"SA-1"}, "nhs_number": {"9990000026"}})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d, want 403", p, resp.StatusCode)
		}
	}
	if resp, _ := get(t, c, r.srv.URL+"/console/subject-access"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer sees the subject access page: %d", resp.StatusCode)
	}
	if calls := r.held.Calls(); len(calls) != 0 {
		t.Fatalf("a viewer acted: %v", calls)
	}
}

func TestOperatorActionsAreRecordedUnderTheirName(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	_, csrf := r.signIn(t, c, "otto", testPassword)
	post(t, c, r.srv.URL+"/console/held/3/route", url.Values{"csrf": {csrf}, "council": {"council-cwac"}, "reason": {"moved to Chester"}})
	if _, body := get(t, c, r.srv.URL+"/console/held"); !strings.Contains(body, "Held message 3 routed") {
		t.Fatalf("no confirmation after the redirect:\n%s", body)
	}
	post(t, c, r.srv.URL+"/console/dead-letters/4/replay", url.Values{"csrf": {csrf}})
	calls := r.held.Calls()
	if len(calls) != 2 || calls[0] != "route council-cwac by console:otto: moved to Chester" || calls[1] != "replay by console:otto" {
		t.Fatalf("calls %v", calls)
	}
	acts, _ := r.st.OperatorActions(context.Background(), 2)
	if len(acts) != 2 || acts[1].Action != "held.route" || acts[1].Target != "held:3" || acts[1].Outcome != store.ActionRouted ||
		acts[0].Action != "dead-letter.replay" || acts[0].Target != "dead-letter:4" || acts[0].Operator != "otto" {
		t.Fatalf("record %+v", acts)
	}
}

// An NHS number searched for is in no URL, no page, no log and no
// record: only its keyed hash is recorded.
func TestNHSNumberSearchLeavesNoTrace(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	_, csrf := r.signIn(t, c, "vera", testPassword)
	resp, body := post(t, c, r.srv.URL+"/console/search", url.Values{"csrf": {csrf}, "by": {"nhs"}, "q": {"999 000 0026"}})
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "9990000026") || strings.Contains(body, "999 000 0026") ||
		!strings.Contains(body, "No referral found") {
		t.Fatalf("search answered %d:\n%s", resp.StatusCode, body)
	}
	if strings.Contains(r.logs.String(), "0026") {
		t.Fatalf("logged:\n%s", r.logs.String())
	}
	acts, _ := r.st.OperatorActions(context.Background(), 1)
	if len(acts) != 1 || acts[0].Action != "search" || acts[0].Target != "subject:sbj_26" {
		t.Fatalf("record %+v", acts)
	}
	resp, _ = post(t, c, r.srv.URL+"/console/search", url.Values{"csrf": {csrf}, "by": {"nhs"}, "q": {"9990000027"}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad check digit: %d", resp.StatusCode)
	}
}

func TestSubjectAccessForTheDPOOnlyAndRecorded(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	_, csrf := r.signIn(t, c, "dana", testPassword)
	resp, body := post(t, c, r.srv.URL+"/console/subject-access", url.Values{"csrf": {csrf}, "nhs_number": {"9990000026"}, "download": {"json"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") || body != `{"nhsNumber":"9990000026"}` {
		t.Fatalf("download %d %v:\n%s", resp.StatusCode, resp.Header, body)
	}
	acts, _ := r.st.OperatorActions(context.Background(), 1)
	if acts[0].Action != "subject-access.download" || acts[0].Operator != "dana" || acts[0].Target != "subject:sbj_26" {
		t.Fatalf("record %+v", acts)
	}
}

func TestPagesLoadNothingFromElsewhere(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	r.signIn(t, c, "dana", testPassword)
	for _, p := range []string{"/console/", "/console/held", "/console/dead-letters", "/console/search", "/console/policy", "/console/record", "/console/subject-access"} {
		resp, body := get(t, c, r.srv.URL+p)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d\n%s", p, resp.StatusCode, body)
		}
		if m := regexp.MustCompile(`(?:src|href)="(?:https?:)?//`).FindString(body); m != "" {
			t.Errorf("%s loads from another host: %s", p, m)
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("%s: CSP %q", p, resp.Header.Get("Content-Security-Policy"))
		}
	}
	resp, _ := get(t, c, r.srv.URL+"/console/static/console.css")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("stylesheet: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// A form body beyond the limit is refused before anything reads it.
func TestAnOversizedFormIsRefused(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	_, csrf := r.signIn(t, c, "otto", testPassword)
	resp, _ := post(t, c, r.srv.URL+"/console/held/1/close", url.Values{"reason": {strings.Repeat("x", 70<<10)}, "csrf": {csrf}})
	if resp.StatusCode != http.StatusForbidden || len(r.held.Calls()) != 0 {
		t.Fatalf("oversized form: %d, calls %v", resp.StatusCode, r.held.Calls())
	}
}

// Several hubs on one store behind a load balancer: a session begun on one
// hub is used on another, the flash message of a form posted to one is
// shown by the other, and signing out on either ends it on both.
func TestASessionIsKnownToEveryHubOfTheStore(t *testing.T) {
	r := newRig(t)
	other := r.anotherHub(t)
	c := r.client(t)
	_, csrf := r.signIn(t, c, "otto", testPassword)
	resp, body := get(t, c, other.URL+"/console/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "otto (operator)") {
		t.Fatalf("the other hub: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := post(t, c, other.URL+"/console/held/3/close", url.Values{"csrf": {csrf}, "reason": {"sent in error"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("close on the other hub with the first hub's token: %d", resp.StatusCode)
	}
	if _, body := get(t, c, r.srv.URL+"/console/held"); !strings.Contains(body, "Held message 3 closed") {
		t.Fatalf("the first hub does not show the other's confirmation:\n%s", body)
	}
	if _, body := get(t, c, other.URL+"/console/held"); strings.Contains(body, "Held message 3 closed") {
		t.Fatal("the confirmation was shown twice")
	}
	// Signed out on the other hub, the cookie (which a browser drops,
	// an attacker keeps) no longer works on the first.
	u, _ := url.Parse(r.srv.URL + "/console/")
	kept := c.Jar.Cookies(u)
	if resp, _ := post(t, c, other.URL+"/console/logout", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: %d", resp.StatusCode)
	}
	replay := r.client(t)
	replay.Jar.SetCookies(u, kept)
	if resp, _ := get(t, replay, r.srv.URL+"/console/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("a signed-out session still works on the first hub: %d", resp.StatusCode)
	}
}

// A session ends after Idle without a request, and after Lifetime however
// busy; it ends at once when its operator is disabled or given a new
// password. Each ended session is sent to sign in again.
func TestASessionEnds(t *testing.T) {
	r := newRig(t)
	signedIn := func(c *http.Client) bool {
		t.Helper()
		resp, _ := get(t, c, r.srv.URL+"/console/")
		return resp.StatusCode == http.StatusOK
	}
	idle := r.client(t)
	r.signIn(t, idle, "otto", testPassword)
	r.clock.add(DefaultIdle - time.Minute)
	if !signedIn(idle) {
		t.Fatal("ended before Idle")
	}
	r.clock.add(DefaultIdle + time.Second)
	if signedIn(idle) {
		t.Fatal("still signed in after Idle without a request")
	}

	busy := r.client(t)
	r.signIn(t, busy, "otto", testPassword)
	for range int(DefaultLifetime/(DefaultIdle/2)) - 1 {
		r.clock.add(DefaultIdle / 2)
		if !signedIn(busy) {
			t.Fatal("a busy session ended before its lifetime")
		}
	}
	r.clock.add(DefaultIdle/2 + time.Second)
	if signedIn(busy) {
		t.Fatal("still signed in after Lifetime")
	}

	vera, dana := r.client(t), r.client(t)
	r.signIn(t, vera, "vera", testPassword)
	r.signIn(t, dana, "dana", testPassword)
	ctx := context.Background()
	if err := r.st.DisableOperator(ctx, "vera"); err != nil {
		t.Fatal(err)
	}
	if signedIn(vera) || !signedIn(dana) {
		t.Fatal("disabling vera did not end her session alone")
	}
	hash, _ := HashPassword("a new password for dana")
	if err := r.st.SetOperatorPassword(ctx, "dana", hash); err != nil {
		t.Fatal(err)
	}
	if signedIn(dana) {
		t.Fatal("a session outlived its operator's new password")
	}
}

// The store holds the session's hash, never the cookie: whoever reads the
// database cannot sign in with what is there.
func TestTheStoreNeverHoldsTheSessionCookie(t *testing.T) {
	r := newRig(t)
	c := r.client(t)
	r.signIn(t, c, "otto", testPassword)
	u, _ := url.Parse(r.srv.URL + "/console/")
	var token string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == SessionCookie {
			token = ck.Value
		}
	}
	now := r.clock.now()
	if _, err := r.st.UseConsoleSession(context.Background(), token, now, now.Add(-time.Hour), now.Add(-time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the cookie's value is a session ID in the store: %v", err)
	}
	if cs, err := r.st.UseConsoleSession(context.Background(), store.SessionID(token), now, now.Add(-time.Hour), now.Add(-time.Hour)); err != nil || cs.Operator != "otto" {
		t.Fatalf("the session under the cookie's hash: %+v, %v", cs, err)
	}
}

// A referral's journey says whether the person's express permission is
// recorded, and where it came from (codes and a date, no personal value):
// none, or given by an operator's release.
func TestTheJourneyShowsTheRecordedPermission(t *testing.T) {
	r := newRig(t)
	storetest.AcceptReferral(t, r.st, "ref-perm", "sr-perm")
	c := r.client(t)
	r.signIn(t, c, "vera", testPassword)
	if _, body := get(t, c, r.srv.URL+"/console/referrals/ref-perm"); !strings.Contains(body, "none recorded") {
		t.Fatalf("journey without a permission:\n%s", body)
	}
	given := model.Permission{Given: true, Source: model.PermissionSourceOperator, Recorded: "2026-12-07"}
	if err := r.st.Commit(context.Background(), store.Batch{Refs: []store.RefUpdate{{ReferralID: "ref-perm", Permission: &given}}}); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, c, r.srv.URL+"/console/referrals/ref-perm"); !strings.Contains(body, "given (operator-recorded, 2026-12-07)") {
		t.Fatalf("journey with a recorded permission:\n%s", body)
	}
}
