package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/iceshub/iceshub/internal/audit"
	"github.com/iceshub/iceshub/internal/model"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/routes"
)

// The console in a real browser: Debian's Chromium driven by chromedp, with
// axe-core (npm, pinned in .ci/run) checking each page. Without Chromium or
// axe-core the test is skipped, except under CI=true, where it fails:
// .ci/run installs both.

// axeScript is where .ci/run installs axe-core; ICESHUB_AXE overrides it.
const axeScript = "../../.ci/axe/node_modules/axe-core/axe.min.js"

// screenshotsEnv names a directory to write a PNG of each page to (for
// docs/console.md): ICESHUB_SCREENSHOTS=docs/console go test -run TestConsoleInABrowser.
const screenshotsEnv = "ICESHUB_SCREENSHOTS"

type browserTest struct {
	t    *testing.T
	ctx  context.Context
	base string
	axe  string
	shot string
	// checked are the pages axe-core has checked.
	checked []string
}

func newBrowserTest(t *testing.T, base string) *browserTest {
	t.Helper()
	ci := os.Getenv("CI") != ""
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	axePath := axeScript
	if p := os.Getenv("ICESHUB_AXE"); p != "" {
		axePath = p
	}
	axe, axeErr := os.ReadFile(axePath)
	switch {
	case path == "" && ci:
		t.Fatal("no Chromium (apt-get install chromium chromium-driver; .ci/run does)")
	case path == "":
		t.Skip("no Chromium installed (apt-get install chromium chromium-driver)")
	case axeErr != nil && ci:
		t.Fatalf("no axe-core at %s (.ci/run installs it): %v", axePath, axeErr)
	case axeErr != nil:
		t.Skipf("no axe-core at %s (run .ci/run once, or npm install axe-core@4.10.3 there): %v", axePath, axeErr)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start Chromium: %v", err)
	}
	return &browserTest{t: t, ctx: ctx, base: base, axe: string(axe), shot: os.Getenv(screenshotsEnv)}
}

func (b *browserTest) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// submit runs steps that end in a navigation (a click on a form's button)
// and returns the status of the page the browser lands on.
func (b *browserTest) submit(what string, steps ...chromedp.Action[chromedp.Void]) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return int(resp.Status)
}

func (b *browserTest) open(path string) int {
	b.t.Helper()
	return b.submit("open "+path, chromedp.Navigate(b.base+path))
}

func (b *browserTest) text() string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *browserTest) count(css string) int {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(css)+`).length`))
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

func jsString(s string) string {
	j, _ := json.Marshal(s)
	return string(j)
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// check runs axe-core on the page (WCAG 2.2 A and AA rules and best
// practice) and fails on a serious or critical violation; with
// ICESHUB_SCREENSHOTS set it also saves a screenshot as name.png.
func (b *browserTest) check(name string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[chromedp.Void](b.axe)); err != nil {
		b.t.Fatalf("inject axe-core on %s: %v", name, err)
	}
	vs, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]axeViolation](`axe.run(document, {resultTypes: ['violations'],
		runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})
		.then(r => r.violations.map(v => ({id: v.id, impact: v.impact || '', help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))`,
		chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("axe-core on %s: %v", name, err)
	}
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("axe-core, %s: %s %s (%s) at %v", name, v.Impact, v.ID, v.Help, v.Nodes)
		} else {
			b.t.Logf("axe-core, %s: %s %s (%s)", name, v.Impact, v.ID, v.Help)
		}
	}
	b.checked = append(b.checked, name)
	if b.shot != "" {
		png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot()) // the window, not the whole page: a long table is megabytes
		if err != nil {
			b.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(b.shot, name+".png"), png, 0o644); err != nil {
			b.t.Fatal(err)
		}
	}
}

func (b *browserTest) signIn(name string) {
	b.t.Helper()
	if status := b.open("/console/"); status != http.StatusOK || !strings.Contains(b.text(), "Sign in") {
		b.t.Fatalf("not signed in, /console/ = %d:\n%s", status, b.text())
	}
	status := b.submit("sign in as "+name,
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), consolePassword),
		chromedp.Click(chromedp.CSS(`form[action="/console/login"] button`)))
	if status != http.StatusOK || !strings.Contains(b.text(), name+" (") {
		b.t.Fatalf("sign in as %s = %d:\n%s", name, status, b.text())
	}
}

func (b *browserTest) signOut() {
	b.t.Helper()
	b.submit("sign out", chromedp.Click(chromedp.CSS(".signout button")))
}

// TestConsoleInABrowser: an operator signs in, routes the referral no
// council covers to Cheshire West and Chester, records the person's
// permission and releases a provider copy held for it, and replays a dead
// letter, each reaching its partner and each in the operator record and
// the subject access report; a form without its CSRF token is refused; a
// viewer sees no action and a viewer's forged form is refused; the dpo
// exports a subject access report. axe-core finds no serious or critical
// violation on any page.
//
// Longer than 100 lines: one session of a person through every page in
// turn, each step acting on what the step before left (the routed hold,
// the released copy, the replayed dead letter, the signed-in role).
func TestConsoleInABrowser(t *testing.T) {
	r := newConsoleRig(t)
	b := newBrowserTest(t, r.base)
	ctx := t.Context()

	if status := b.open("/console/"); status != http.StatusOK || !strings.Contains(b.text(), "Sign in") {
		t.Fatalf("not signed in, /console/ = %d:\n%s", status, b.text())
	}
	b.check("sign-in")
	b.signIn("otto")
	b.check("overview")
	if txt := b.text(); !strings.Contains(txt, "council-cwac") || !strings.Contains(txt, "provider") {
		t.Errorf("overview lacks the partners:\n%s", txt)
	}

	// Route the referral no council covers to Cheshire West and Chester.
	hold := r.holdFor(t, r.leeds, "council")
	b.open("/console/held")
	b.check("held")
	status := b.submit("route",
		chromedp.SetValue(chromedp.CSS(fmt.Sprintf("#council-%d", hold.ID)), "council-cwac"),
		chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#route-reason-%d", hold.ID)), "the person has moved to Chester"),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`form[action="/console/held/%d/route"] button`, hold.ID))))
	if want := fmt.Sprintf("Held message %d routed", hold.ID); status != http.StatusOK || !strings.Contains(b.text(), want) {
		t.Fatalf("route = %d:\n%s", status, b.text())
	}
	routedKey := routes.IdempotencyKey(r.leeds, "council-cwac", model.KindReferral)
	eventually(t, "Cheshire West's case of the routed referral", func() bool {
		_, ok := r.sims.Received("council-cwac", routedKey)
		return ok
	})

	// Record permission and release the Chester referral's provider copy.
	perm := r.holdFor(t, r.chester, "provider")
	status = b.submit("release",
		chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#perm-by-%d", perm.ID)), "OT D. Example"),
		chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#evidence-%d", perm.ID)), "shared agreement form SA-0042"),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`form[action="/console/held/%d/release"] button`, perm.ID))))
	if status != http.StatusOK || !strings.Contains(b.text(), fmt.Sprintf("Held message %d released", perm.ID)) ||
		!strings.Contains(b.text(), "The permission now stands for the referral's later messages") {
		t.Fatalf("release = %d:\n%s", status, b.text())
	}
	releasedKey := routes.IdempotencyKey(r.chester, "provider", model.KindReferral)
	eventually(t, "the provider's order of the released copy", func() bool {
		_, ok := r.sims.Received("provider", releasedKey)
		return ok
	})

	// A form without its CSRF token is refused, and decides nothing.
	other := r.holdFor(t, r.leeds, "provider")
	b.open("/console/held")
	status = b.submit("close without the token",
		chromedp.SendKeys(chromedp.CSS(fmt.Sprintf("#close-reason-%d", other.ID)), "test"),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector('form[action="/console/held/%d/close"] input[name=csrf]').remove()`, other.ID)),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`form[action="/console/held/%d/close"] button`, other.ID))))
	if status != http.StatusForbidden || !strings.Contains(b.text(), "security token") {
		t.Errorf("close without the CSRF token = %d:\n%s", status, b.text())
	}
	b.check("refused")
	if h, err := r.hub.Store().HeldMessage(ctx, other.ID); err != nil || h.Resolution != nil {
		t.Errorf("the refused form resolved the hold: %+v, %v", h.Resolution, err)
	}

	// Replay the dead letter: the council's copy of the Chester referral.
	dls := r.deadLetters(t)
	if len(dls) != 1 || dls[0].ReferralID != r.chester {
		t.Fatalf("dead letters %+v", dls)
	}
	dl := dls[0]
	b.open("/console/dead-letters")
	b.check("dead-letters")
	b.open(fmt.Sprintf("/console/dead-letters/%d", dl.ID))
	b.check("dead-letter")
	if txt := b.text(); !strings.Contains(txt, "person.nhsNumber") {
		t.Errorf("the dead letter does not name its fields:\n%s", txt)
	}
	status = b.submit("replay", chromedp.Click(chromedp.CSS(fmt.Sprintf(`form[action="/console/dead-letters/%d/replay"] button`, dl.ID))))
	if status != http.StatusOK || !strings.Contains(b.text(), fmt.Sprintf("Dead letter %d replayed", dl.ID)) {
		t.Fatalf("replay = %d:\n%s", status, b.text())
	}
	eventually(t, "the replayed case at Cheshire West", func() bool {
		_, ok := r.sims.Received("council-cwac", dl.IdempotencyKey)
		return ok
	})

	// Search by hub reference, and the referral's journey.
	b.open("/console/search")
	b.check("search")
	status = b.submit("search",
		chromedp.Click(chromedp.CSS("#by-hub")),
		chromedp.SendKeys(chromedp.CSS("#q"), r.leeds),
		chromedp.Click(chromedp.CSS(`form[action="/console/search"] button`)))
	if status != http.StatusOK || b.count(`a[href="/console/referrals/`+r.leeds+`"]`) != 1 {
		t.Fatalf("search = %d:\n%s", status, b.text())
	}
	b.submit("journey", chromedp.Click(chromedp.CSS(`a[href="/console/referrals/`+r.leeds+`"]`)))
	b.check("journey")
	if txt := b.text(); !strings.Contains(txt, "council-cwac") || !strings.Contains(txt, "routed to council-cwac by console:otto") {
		t.Errorf("the journey lacks the routed copy:\n%s", txt)
	}
	b.open("/console/policy")
	b.check("policy")
	b.open("/console/stats")
	b.check("stats")
	if b.count(`figure svg[role="img"]`) != 1 || b.count(`table th[scope="col"]`) < 10 {
		t.Errorf("statistics page:\n%s", b.text())
	}
	b.open("/console/record")
	b.check("record")
	if txt := b.text(); !strings.Contains(txt, "held.route") || strings.Count(txt, "intact") != 2 {
		t.Errorf("record page:\n%s", txt)
	}
	b.signOut()

	// Both resolutions and the replay are in the operator record under
	// the operator's name, and in the subject access reports.
	for _, a := range []struct{ action, target, outcome string }{
		{"held.route", fmt.Sprintf("held:%d", hold.ID), store.ActionRouted},
		{"held.release", fmt.Sprintf("held:%d", perm.ID), store.ActionReleased},
		{"dead-letter.replay", fmt.Sprintf("dead-letter:%d", dl.ID), "replayed"},
	} {
		if !operatorDid(t, r.hub.Store(), "otto", a.action, a.target, a.outcome) {
			t.Errorf("the operator record lacks %+v", a)
		}
	}
	eventually(t, "the disclosures of the console's decisions", func() bool {
		return sentTo(subjectReportOf(t, r, "referral-no-council.json"), r.leeds, "council-cwac") &&
			sentTo(subjectReportOf(t, r, "referral-1-line.json"), r.chester, "provider")
	})

	// A viewer sees no action, and a viewer's forged form is refused.
	b.signIn("vera")
	b.open("/console/held")
	if n := b.count(`form[action^="/console/held/"]`); n != 0 {
		t.Errorf("a viewer is offered %d held message actions", n)
	}
	status = b.submit("a viewer's forged close", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => {
		const f = document.createElement('form'); f.method = 'post'; f.action = '/console/held/%d/close';
		for (const [k, v] of [['csrf', document.querySelector('.signout input[name=csrf]').value], ['reason', 'forged']]) {
			const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
		}
		document.body.appendChild(f); f.submit();
	})()`, other.ID)))
	if status != http.StatusForbidden || !strings.Contains(b.text(), "may not do this") {
		t.Errorf("a viewer's close = %d:\n%s", status, b.text())
	}
	if h, _ := r.hub.Store().HeldMessage(ctx, other.ID); h.Resolution != nil {
		t.Errorf("a viewer resolved a hold: %+v", h.Resolution)
	}
	if status := b.open("/console/subject-access"); status != http.StatusForbidden {
		t.Errorf("a viewer opens the subject access page: %d", status)
	}
	b.signOut()

	// The dpo exports a subject access report.
	b.signIn("dana")
	b.open("/console/subject-access")
	b.check("subject-access")
	n := readCanonical(t, "referral-no-council.json").Person.NHSNumber
	status = b.submit("show the report",
		chromedp.SendKeys(chromedp.CSS("#nhs_number"), n),
		chromedp.Click(chromedp.CSS(`form[action="/console/subject-access"] button:not([name])`)))
	if txt := b.text(); status != http.StatusOK || !strings.Contains(txt, n) || !strings.Contains(txt, r.leeds) {
		t.Fatalf("report = %d:\n%s", status, txt)
	}
	b.check("subject-access-report")
	if loc, _ := chromedp.Run(b.ctx, chromedp.Location()); strings.Contains(loc, n) {
		t.Errorf("the NHS number is in the address: %s", loc)
	}
	dir := t.TempDir()
	b.do("download",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir})
			return err
		}),
		chromedp.SetValue(chromedp.CSS("#nhs_number"), n),
		chromedp.Click(chromedp.CSS(`form[action="/console/subject-access"] button[name=download]`)))
	var report audit.Report
	eventually(t, "the downloaded report", func() bool {
		files, _ := filepath.Glob(filepath.Join(dir, "subject-access-*.json"))
		if len(files) != 1 {
			return false
		}
		body, err := os.ReadFile(files[0])
		return err == nil && json.Unmarshal(body, &report) == nil
	})
	if report.NHSNumber != n || !sentToIn(report.Disclosures, r.leeds, "council-cwac") || !report.RecordIntegrity.OK {
		t.Errorf("downloaded report %+v", report)
	}
	if last := mustActions(t, r.hub.Store())[0]; last.Operator != "dana" || last.Action != "subject-access.download" ||
		last.Target != "subject:"+report.Subject || strings.Contains(last.Target+last.Detail, n) {
		t.Errorf("the download's operator record entry: %+v", last)
	}
	if len(b.checked) < 12 {
		t.Errorf("axe-core checked only %v", b.checked)
	}
}

func sentToIn(ds []store.Disclosure, referral, recipient string) bool {
	return sentTo(audit.Report{Disclosures: ds}, referral, recipient)
}

func mustActions(t *testing.T, st store.Operators) []store.OperatorAction {
	t.Helper()
	acts, err := st.OperatorActions(context.Background(), 20)
	if err != nil {
		t.Fatal(err)
	}
	return acts
}
