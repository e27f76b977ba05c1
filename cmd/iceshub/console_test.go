package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/audit"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/console"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/subject"
)

// consoleRig is a hub on the simulated partners with the demo's referrals
// in it and one console account per role. The provider route needs the
// person's express permission, so that every referral's provider copy is
// held for it; the first council delivery is refused for good (a dead
// letter); the referral whose postcode no council covers is held for the
// council.
type consoleRig struct {
	*opsHub
	// chester is referral-1-line's id: its provider copy is held for
	// permission, its council copy a dead letter. leeds is
	// referral-no-council's: its council copy is held for want of a
	// council. all holds every referral sent, by fixture.
	chester, leeds string
	all            map[string]string
}

const consolePassword = "fictional console password 1"

func newConsoleRig(t *testing.T) *consoleRig {
	t.Helper()
	t.Setenv(subject.EnvKey, "")
	o := startOpsHub(t, opsHubConfig{mutate: func(cfg *config.Config) {
		for i, r := range cfg.Routes {
			if r.Message == string(model.KindReferral) && r.To == "provider" {
				cfg.Routes[i].RequiresPermission = true
			}
		}
	}})
	hash, err := console.HashPassword(consolePassword)
	if err != nil {
		t.Fatal(err)
	}
	for name, role := range map[string]string{"vera": store.RoleViewer, "otto": store.RoleOperator, "dana": store.RoleDPO} {
		if err := o.hub.Store().AddOperator(t.Context(), store.Operator{Name: name, Role: role, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	r := &consoleRig{opsHub: o, all: map[string]string{}}
	o.sims.Councils["council-cwac"].FailNext(1, http.StatusUnprocessableEntity, "")
	r.chester = r.sendFixture(t, "referral-1-line.json")
	eventually(t, "the council's dead letter", func() bool { return len(o.deadLetters(t)) == 1 })
	r.leeds = r.sendFixture(t, "referral-no-council.json")
	// The rest of the demo's referrals.
	files, _ := filepath.Glob("../../testdata/fhir/referral-*.json")
	for _, f := range files {
		if name := filepath.Base(f); r.all[name] == "" {
			r.sendFixture(t, name)
		}
	}
	for _, id := range r.all {
		r.holdFor(t, id, "provider")
	}
	r.holdFor(t, r.leeds, config.RecipientCouncil)
	return r
}

func (r *consoleRig) sendFixture(t *testing.T, name string) string {
	t.Helper()
	status, answer, err := r.sims.PostBundle(t.Context(), r.base, mustRead(t, "../../testdata/fhir/"+name))
	if err != nil || status != http.StatusOK {
		t.Fatalf("POST %s = %d, %v\n%s", name, status, err, answer)
	}
	id := demo.ReferralIDFrom(answer)
	r.all[name] = id
	return id
}

// holdFor waits for the open hold of referral id on route and returns it.
func (r *consoleRig) holdFor(t *testing.T, id, route string) store.Hold {
	t.Helper()
	var found store.Hold
	eventually(t, "the "+route+" hold of "+id, func() bool {
		hs, err := r.hub.Store().Held(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			if h.ReferralID == id && h.Route == route {
				found = h
				return true
			}
		}
		return false
	})
	return found
}

// personalValues are the values of the demo's people a page must not
// show to a viewer or an operator: NHS numbers (as written and spaced),
// names, address lines, postcodes and dates of birth.
func personalValues(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob("../../testdata/fhir/referral-*.json")
	var out []string
	for _, f := range files {
		p := readCanonical(t, filepath.Base(f)).Person
		if p.NHSNumber == "" {
			t.Fatalf("%s: no NHS number in the golden referral", f)
		}
		n := p.NHSNumber
		out = append(out, n, n[:3]+" "+n[3:6]+" "+n[6:], p.Name.Text, p.Name.Family, p.BirthDate, p.Address.Postcode)
		out = append(out, p.Name.Given...)
		out = append(out, p.Address.Lines...)
		for _, c := range p.Telecom {
			out = append(out, c.Value)
		}
	}
	return out
}

// browserless is a console client over plain HTTP.
type browserless struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (r *consoleRig) signIn(t *testing.T, name string) *browserless {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &browserless{t: t, base: r.base, c: &http.Client{Jar: jar}}
	_, body := b.get("/console/login")
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-in page:\n%s", body)
	}
	status, body := b.post("/console/login", url.Values{"csrf": {m[1]}, "name": {name}, "password": {consolePassword}})
	if status != http.StatusOK || !strings.Contains(body, name+" (") {
		t.Fatalf("sign in as %s: %d\n%s", name, status, body)
	}
	b.csrf = csrfInput.FindStringSubmatch(body)[1]
	return b
}

func (b *browserless) do(req *http.Request) (int, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browserless) get(path string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

func (b *browserless) post(path string, form url.Values) (int, string) {
	if form.Get("csrf") == "" && b.csrf != "" {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var consoleLink = regexp.MustCompile(`href="(/console/[^"#]*)"`)

// walk visits every console page reachable by links from start, and the
// search results for every referral and every person, returning each
// page's body by path.
func (b *browserless) walk(nhsNumbers, referralIDs []string) map[string]string {
	b.t.Helper()
	seen := map[string]string{}
	queue := []string{"/console/"}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if _, ok := seen[p]; ok || strings.HasPrefix(p, "/console/static/") {
			continue
		}
		status, body := b.get(p)
		if status != http.StatusOK && status != http.StatusForbidden {
			b.t.Errorf("GET %s = %d", p, status)
		}
		seen[p] = body
		for _, m := range consoleLink.FindAllStringSubmatch(body, -1) {
			queue = append(queue, m[1])
		}
	}
	for _, id := range referralIDs {
		for _, by := range []string{"hub", "correlation"} {
			_, seen["POST search "+by+" "+id] = b.post("/console/search", url.Values{"by": {by}, "q": {id}})
		}
		_, seen["GET referral "+id] = b.get("/console/referrals/" + id)
	}
	for i, n := range nhsNumbers {
		status, body := b.post("/console/search", url.Values{"by": {"nhs"}, "q": {n}})
		if status != http.StatusOK || !strings.Contains(body, "/console/referrals/") {
			b.t.Errorf("search by NHS number %d = %d, found nothing", i, status)
		}
		seen[fmt.Sprintf("POST search nhs %d", i)] = body
	}
	return seen
}

// TestConsoleShowsNoPersonalValues: over the demo's referrals, held
// copies and a dead letter, every page a viewer or an operator can reach,
// every search result and every referral's journey shows references,
// statuses and field names, and no NHS number, name, address, postcode or
// date of birth; the dpo sees the NHS number on the subject access page
// only, and the view is in the operator record. The hub's log holds none
// of them either.
func TestConsoleShowsNoPersonalValues(t *testing.T) {
	r := newConsoleRig(t)
	values := personalValues(t)
	var nhs, ids []string
	for name, id := range r.all {
		nhs = append(nhs, readCanonical(t, name).Person.NHSNumber)
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, who := range []string{"vera", "otto"} {
		pages := r.signIn(t, who).walk(nhs, ids)
		if len(pages) < 10+3*len(ids) {
			t.Errorf("%s reached only %d pages", who, len(pages))
		}
		for _, must := range []string{"/console/held", "/console/dead-letters", "/console/record", "/console/policy", "/console/search", "/console/stats"} {
			if _, ok := pages[must]; !ok {
				t.Errorf("%s never reached %s", who, must)
			}
		}
		for p, body := range pages {
			for _, v := range values {
				if v != "" && strings.Contains(body, v) {
					t.Errorf("%s sees %q on %s", who, v, p)
				}
			}
		}
	}
	// The walk saw the journeys with their field names.
	_, journey := r.signIn(t, "vera").get("/console/referrals/" + r.chester)
	if !strings.Contains(journey, "person.nhsNumber") || !strings.Contains(journey, "withheld") || !strings.Contains(journey, "council-cwac") {
		t.Errorf("the journey lacks its disclosures:\n%s", journey)
	}

	dpo := r.signIn(t, "dana")
	n := readCanonical(t, "referral-1-line.json").Person.NHSNumber
	status, body := dpo.post("/console/subject-access", url.Values{"nhs_number": {n}})
	if status != http.StatusOK || !strings.Contains(body, n) || !strings.Contains(body, r.chester) {
		t.Fatalf("subject access = %d\n%s", status, body)
	}
	acts, err := r.hub.Store().OperatorActions(t.Context(), 1)
	if err != nil || len(acts) != 1 || acts[0].Operator != "dana" || acts[0].Action != "subject-access.view" || strings.Contains(acts[0].Target, n) {
		t.Fatalf("operator record %+v, %v", acts, err)
	}
	for _, v := range values {
		if v != "" && strings.Contains(r.logs.String(), v) {
			t.Errorf("the hub's log holds %q", v)
		}
	}
}

// subjectReportOf runs `audit subject --json` for the person of fixture.
func subjectReportOf(t *testing.T, r *consoleRig, fixture string) audit.Report {
	t.Helper()
	var out, errOut strings.Builder
	n := readCanonical(t, fixture).Person.NHSNumber
	if code := run([]string{"audit", "subject", "--nhs-number", n, "--json", "--data", r.dir}, &out, &errOut); code != 0 {
		t.Fatalf("audit subject = %d\n%s", code, errOut.String())
	}
	var rep audit.Report
	if err := json.Unmarshal([]byte(out.String()), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func sentTo(rep audit.Report, referral, recipient string) bool {
	for _, d := range rep.Disclosures {
		if d.ReferralID == referral && d.Recipient == recipient && d.Outcome == store.OutcomeSent && len(d.Fields) > 0 {
			return true
		}
	}
	return false
}

// operatorDid reports whether the operator record has action on target
// by operator with outcome.
func operatorDid(t *testing.T, st store.Operators, operator, action, target, outcome string) bool {
	t.Helper()
	acts, err := st.OperatorActions(context.Background(), 500)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if a.Operator == operator && a.Action == action && a.Target == target && a.Outcome == outcome {
			return true
		}
	}
	return false
}

// TestDemoStayPrintsTheConsoleAndAOneTimePassword: `demo --stay` keeps the
// hub up after its referrals, prints the console's address and a
// password, and that password signs in to a console showing the demo's
// referral held for want of a council; it stops at the signal.
func TestDemoStayPrintsTheConsoleAndAOneTimePassword(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- cmdDemo(ctx, []string{"--stay", "--no-return", "--referrals", "../../testdata/fhir",
			"--refuse", ""}, out, io.Discard)
	}()
	addr := regexp.MustCompile(`operators' console: (http://\S+)/console/\n  name: +(\S+) .*\n  password: (\S+)`)
	var m []string
	eventually(t, "the console's address", func() bool {
		m = addr.FindStringSubmatch(out.String())
		return m != nil
	})
	r := &consoleRig{opsHub: &opsHub{base: m[1]}}
	jar, _ := cookiejar.New(nil)
	b := &browserless{t: t, base: r.base, c: &http.Client{Jar: jar}}
	_, body := b.get("/console/login")
	status, body := b.post("/console/login", url.Values{"csrf": {csrfInput.FindStringSubmatch(body)[1]}, "name": {m[2]}, "password": {m[3]}})
	if status != http.StatusOK || !strings.Contains(body, m[2]+" (dpo)") {
		t.Fatalf("sign in with the printed password = %d\n%s", status, body)
	}
	if _, body := b.get("/console/held"); !strings.Contains(body, "Send to council") {
		t.Errorf("the demo's held referral is not offered to a council:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo --stay: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo --stay did not stop")
	}
}

// TestOperatorsCommand: add reads the password from standard input and
// stores only its hash; a short password, an unknown role and a taken
// name are refused; password replaces the hash, clears the failures and
// ends the account's sessions; list shows the accounts; a disabled one
// says so; each change is in the operator record.
func TestOperatorsCommand(t *testing.T) {
	dir := t.TempDir()
	st, err := hub.OpenStore(hub.StoreSettings{Store: hub.SQLiteAt(dir)})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	op := func(stdin string, args ...string) (string, error) {
		var out strings.Builder
		err := cmdOperators(t.Context(), append(args, "--data", dir), strings.NewReader(stdin), &out, io.Discard)
		return out.String(), err
	}
	if out, err := op(consolePassword+"\n", "add", "--name", "desk1", "--role", "operator"); err != nil || !strings.Contains(out, "desk1 added") {
		t.Fatalf("add = %v %s", err, out)
	}
	for _, c := range []struct {
		stdin string
		args  []string
	}{
		{"short\n", []string{"add", "--name", "desk2", "--role", "viewer"}},
		{consolePassword, []string{"add", "--name", "desk2", "--role", "admin"}},
		{consolePassword, []string{"add", "--name", "desk1", "--role", "viewer"}},
		{"", []string{"disable"}},
	} {
		if _, err := op(c.stdin, c.args...); err == nil {
			t.Errorf("operators %v with %q was accepted", c.args, c.stdin)
		}
	}
	// A new password: the old hash replaced, failures cleared, the
	// account's sessions ended.
	st, err = hub.OpenExisting(hub.SQLiteAt(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := st.Operator(t.Context(), "desk1")
	if _, err := st.SignInFailed(t.Context(), "desk1", time.Now()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	session := store.ConsoleSession{ID: store.SessionID("a-session-of-desk1"), Operator: "desk1", Role: store.RoleOperator, Started: now, Seen: now}
	if err := st.StartConsoleSession(t.Context(), session, now.Add(-time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	for _, bad := range []struct{ stdin, name string }{{"short\n", "desk1"}, {consolePassword, "nobody"}, {consolePassword, ""}} {
		if _, err := op(bad.stdin, "password", "--name", bad.name); err == nil {
			t.Errorf("operators password --name %q with %q was accepted", bad.name, bad.stdin)
		}
	}
	if out, err := op("another long passphrase\n", "password", "--name", "desk1"); err != nil || !strings.Contains(out, "sessions ended") {
		t.Fatalf("password = %v %s", err, out)
	}
	st, err = hub.OpenExisting(hub.SQLiteAt(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := st.Operator(t.Context(), "desk1")
	_, sessionErr := st.UseConsoleSession(t.Context(), session.ID, now, now.Add(-time.Hour), now.Add(-time.Hour))
	st.Close()
	if after.PasswordHash == before.PasswordHash || after.FailedSignIns != 0 || !errors.Is(sessionErr, store.ErrNotFound) {
		t.Fatalf("after password: hash replaced %v, failures %d, session %v", after.PasswordHash != before.PasswordHash, after.FailedSignIns, sessionErr)
	}

	if _, err := op("", "disable", "--name", "desk1"); err != nil {
		t.Fatal(err)
	}
	out, err := op("", "list", "--json")
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["name"] != "desk1" ||
		list[0]["role"] != "operator" || list[0]["disabled"] != true || strings.Contains(out, "$2") {
		t.Fatalf("list = %v %s", err, out)
	}
	st, err = hub.OpenExisting(hub.SQLiteAt(dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	o, err := st.Operator(t.Context(), "desk1")
	if err != nil || !strings.HasPrefix(o.PasswordHash, "$2a$") || strings.Contains(o.PasswordHash, consolePassword) {
		t.Fatalf("stored %q, %v", o.PasswordHash, err)
	}
	// Each change of the account is in the operator record, by whoever
	// ran the command; the refused ones are not.
	acts, err := st.OperatorActions(t.Context(), 10)
	if err != nil || len(acts) != 3 {
		t.Fatalf("operator record %+v, %v", acts, err)
	}
	for i, want := range []string{"account.disable", "account.password", "account.add"} {
		if a := acts[i]; a.Action != want || a.Target != "operator:desk1" || a.Outcome != "ok" || !strings.HasPrefix(a.Operator, "cli") {
			t.Errorf("entry %d: %+v, want %s", i, a, want)
		}
	}
	if rep, err := st.VerifyOperatorRecord(t.Context()); err != nil || !rep.OK {
		t.Errorf("operator record: %+v, %v", rep, err)
	}
}

// TestConsoleSettingsReachTheConsole: console.secure_cookies marks the
// session cookie Secure although this hub serves plain HTTP (as behind a
// proxy that ends TLS), and console.max_failed_sign_ins locks an account
// after that many failures rather than the default five.
func TestConsoleSettingsReachTheConsole(t *testing.T) {
	o := startOpsHub(t, opsHubConfig{mutate: func(cfg *config.Config) {
		cfg.Console.SecureCookies, cfg.Console.MaxFailedSignIns = true, 2
	}})
	hash, err := console.HashPassword(consolePassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"otto", "olga"} {
		if err := o.hub.Store().AddOperator(t.Context(), store.Operator{Name: name, Role: store.RoleOperator, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	signIn := func(name, password string) *http.Response {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		b := &browserless{t: t, base: o.base, c: c}
		_, body := b.get("/console/login")
		m := csrfInput.FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no CSRF token on the sign-in page:\n%s", body)
		}
		// The login cookie is Secure too: a client that honours it would
		// not send it back over plain HTTP, so it is sent by hand.
		req, _ := http.NewRequest(http.MethodPost, o.base+"/console/login",
			strings.NewReader(url.Values{"csrf": {m[1]}, "name": {name}, "password": {password}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: console.LoginCookie, Value: m[1]})
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := signIn("otto", consolePassword)
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == console.SessionCookie {
			session = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly {
		t.Fatalf("sign-in = %d, session cookie %+v: want Secure under console.secure_cookies", resp.StatusCode, session)
	}
	for i := range 2 {
		if resp := signIn("olga", "a wrong password "+strconv.Itoa(i)); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, resp.StatusCode)
		}
	}
	if resp := signIn("olga", consolePassword); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after 2 failures (console.max_failed_sign_ins: 2) the right password signed in: %d", resp.StatusCode)
	}
}
