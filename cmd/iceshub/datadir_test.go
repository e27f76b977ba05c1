package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/hub"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
)

// testClock is a clock that moves only when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestReadyzWritesTheStoreAtMostOnceASecond: /readyz is unauthenticated, so
// its callers must not decide how often the hub writes: 100 calls within a
// second (of the hub's readiness clock, which the test holds still) are
// answered from one probe, and write nothing more to the store (its own
// count of writes); a second later the next call probes again.
func TestReadyzWritesTheStoreAtMostOnceASecond(t *testing.T) {
	clock := newTestClock()
	o := startOpsHub(t, opsHubConfig{now: clock.now})
	_, before := o.hub.Store().GroupStats()
	for i := 0; i < 100; i++ {
		if code := getStatus(t, o.base+"/readyz"); code != http.StatusOK {
			t.Fatalf("call %d: /readyz = %d", i, code)
		}
	}
	_, after := o.hub.Store().GroupStats()
	if writes := after - before; writes > 1 {
		t.Fatalf("100 calls to /readyz made %d store writes, want at most 1", writes)
	}
	clock.advance(hub.ReadyProbeEvery)
	if code := getStatus(t, o.base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz a second later = %d", code)
	}
	if _, probed := o.hub.Store().GroupStats(); probed <= after {
		t.Fatal("a second later /readyz did not probe the store again")
	}
}

// TestOpsListenerServesOnlyTheOperatorsEndpoints: with server.ops_addr, the
// partners' listener answers 404 for /healthz, /readyz, /metrics and the
// admin API, and still takes referrals; the ops listener serves those and
// nothing of the partners'. Refusals on the partners' listener are counted
// on the ops listener's /metrics.
func TestOpsListenerServesOnlyTheOperatorsEndpoints(t *testing.T) {
	const token = "fictional-admin-token-for-the-ops-listener"
	o := startOpsHub(t, opsHubConfig{opsAddr: true, adminToken: token})
	if o.opsBase == o.base {
		t.Fatal("no listener of its own")
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/admin/dlq"} {
		if code, _ := adminCall(t, http.MethodGet, o.base+path, token, ""); code != http.StatusNotFound {
			t.Errorf("partners' listener: GET %s = %d, want 404", path, code)
		}
		if code, body := adminCall(t, http.MethodGet, o.opsBase+path, token, ""); code != http.StatusOK {
			t.Errorf("ops listener: GET %s = %d, want 200\n%s", path, code, body)
		}
	}
	if code := getStatus(t, o.opsBase+"/fhir/metadata"); code != http.StatusNotFound {
		t.Errorf("ops listener: GET /fhir/metadata = %d, want 404", code)
	}
	if code, _ := adminCall(t, http.MethodGet, o.opsBase+"/admin/dlq", "", ""); code != http.StatusUnauthorized {
		t.Errorf("ops listener: admin API without the token = %d, want 401", code)
	}
	// Partners still reach the hub; a caller without credentials is
	// refused, and counted.
	o.send(t, referralTemplate(t))
	if code := getStatus(t, o.base+"/fhir/metadata"); code != http.StatusUnauthorized {
		t.Errorf("partners' listener: GET /fhir/metadata without credentials = %d, want 401", code)
	}
	m := scrape(t, o.opsBase)
	if v := m[series("iceshub_inbound_requests_total", "partner", auth.UnknownPartner, "outcome", auth.OutcomeUnauthenticated)]; v != 1 {
		t.Errorf("unauthenticated requests counted %v, want 1", v)
	}
	if v := m[series("iceshub_inbound_requests_total", "partner", "nhs-trust", "outcome", auth.OutcomeAccepted)]; v != 1 {
		t.Errorf("accepted requests of nhs-trust counted %v, want 1", v)
	}
}

// TestASecondHubOnTheDataDirectoryRefusesToStart: 'serve' on a directory a
// hub runs on fails (main exits 1 with the error) naming the lock and the
// pid that holds it, and the first hub keeps serving; once it has stopped,
// a hub starts there. (serve runs on a context already ended, so that
// without the lock it would start and stop at once, returning nil.)
func TestASecondHubOnTheDataDirectoryRefusesToStart(t *testing.T) {
	o := startOpsHub(t, opsHubConfig{})
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	var errOut bytes.Buffer
	err := cmdServe(ended, []string{"--data", o.dir, "--addr", "127.0.0.1:0"}, &errOut)
	lock := filepath.Join(o.dir, sqlite.LockFileName)
	if err == nil || !strings.Contains(err.Error(), lock) || !strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second serve: %v; want an error naming %s and pid %d\n%s", err, lock, os.Getpid(), errOut.String())
	}
	if code := getStatus(t, o.base+"/readyz"); code != http.StatusOK {
		t.Fatalf("the first hub after the second's refusal: /readyz = %d", code)
	}
	if err := o.stop(); err != nil {
		t.Fatal(err)
	}
	again := startOpsHub(t, opsHubConfig{dir: o.dir})
	if code := getStatus(t, again.base+"/readyz"); code != http.StatusOK {
		t.Fatalf("a hub on the directory once the first stopped: /readyz = %d", code)
	}
}

// TestDatabaseFilesAre0600AfterARun: after a hub has run and stored a
// referral, under a umask that would leave others able to read, the data
// directory is 0700 and every file in it is 0600.
func TestDatabaseFilesAre0600AfterARun(t *testing.T) {
	withUmask(t, 0o022)
	dir := filepath.Join(t.TempDir(), "data")
	o := startOpsHub(t, opsHubConfig{dir: dir})
	id := o.send(t, referralTemplate(t))
	eventually(t, "the referral delivered", func() bool { return o.outcomes(t, id)["provider"] == store.OutcomeSent })
	check := func(when string) {
		t.Helper()
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: data directory %v, %v; want 0700", when, fi.Mode(), err)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, e := range entries {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			names[e.Name()] = true
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s is %v, want 0600", when, e.Name(), fi.Mode().Perm())
			}
		}
		for _, want := range []string{sqlite.FileName, "data.key", "subject.key", sqlite.LockFileName} {
			if !names[want] {
				t.Errorf("%s: no %s in the data directory (have %v)", when, want, names)
			}
		}
	}
	check("while running")
	if err := o.stop(); err != nil {
		t.Fatal(err)
	}
	check("after the run")
}

// withUmask runs the test under umask, restoring the process's after.
func withUmask(t *testing.T, umask int) {
	t.Helper()
	old := syscall.Umask(umask)
	t.Cleanup(func() { syscall.Umask(old) })
}
