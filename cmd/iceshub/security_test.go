package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/demo"
	"github.com/iceshub/iceshub/internal/intake"
	"github.com/iceshub/iceshub/internal/nhsnumber"
	"github.com/iceshub/iceshub/internal/ready"
	"github.com/iceshub/iceshub/internal/store"
	"github.com/iceshub/iceshub/internal/store/sqlite"
)

// outcomeCode returns the first issue code of an OperationOutcome.
func outcomeCode(b []byte) string {
	var oo struct {
		ResourceType string
		Issue        []struct{ Code string }
	}
	if json.Unmarshal(b, &oo) != nil || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
		return ""
	}
	return oo.Issue[0].Code
}

// TestFHIREdgeRefusals sends what a penetration tester would to the running
// hub: each is refused with its status and an OperationOutcome, and nothing
// is stored.
func TestFHIREdgeRefusals(t *testing.T) {
	base, h, sims := startTestHub(t, io.Discard)
	referral := mustRead(t, "../../testdata/fhir/referral-1-line.json")
	post := func(body []byte, edit func(*http.Request)) (int, []byte, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"/fhir/$process-message", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("X-Request-ID", uuid.NewString())
		if edit != nil {
			edit(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header
	}
	bearer := func(r *http.Request) {
		if err := sims.Creds.Authorise(r); err != nil {
			t.Fatal(err)
		}
	}
	huge := append([]byte(`{"resourceType":"Bundle","type":"message","pad":"`), bytes.Repeat([]byte("x"), int(h.Config().Server.MaxBodyBytes))...)
	huge = append(huge, `"}`...)
	bomb := []byte(strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 1000))
	cases := []struct {
		name   string
		body   []byte
		edit   func(*http.Request)
		status int
		code   string
	}{
		{"no credentials", referral, nil, 401, "login"},
		{"wrong credentials", referral, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5kZW1vLmljZXNodWIuaW52YWxpZCJ9.c2lnbmF0dXJl")
		}, 401, "login"},
		{"the provider's webhook credentials at the FHIR edge", referral, func(r *http.Request) {
			if err := sims.Creds.SignWebhook(r, "provider", referral); err != nil {
				t.Fatal(err)
			}
		}, 403, "forbidden"},
		{"body over the limit", huge, bearer, 413, "too-long"},
		{"deeply nested JSON bomb", bomb, bearer, 400, "structure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body, hdr := post(c.body, c.edit)
			if status != c.status || outcomeCode(body) != c.code {
				t.Fatalf("status %d, issue %q; want %d %q\n%s", status, outcomeCode(body), c.status, c.code, body)
			}
			if status == 401 && hdr.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	if n, err := h.Store().Pending(context.Background(), intake.TopicReferralReceived); err != nil || n != 0 {
		t.Fatalf("%d referrals stored after refusals (%v)", n, err)
	}
	// Counted on /metrics, per partner and outcome.
	m := scrape(t, base)
	unauthenticated := series("iceshub_inbound_requests_total", "partner", auth.UnknownPartner, "outcome", auth.OutcomeUnauthenticated)
	forbidden := series("iceshub_inbound_requests_total", "partner", "provider", "outcome", auth.OutcomeForbidden)
	if m[unauthenticated] != 2 || m[forbidden] != 1 {
		t.Fatalf("refusals not counted: %s = %v, %s = %v", unauthenticated, m[unauthenticated], forbidden, m[forbidden])
	}
	// The same referral with the NHS partner's token is accepted.
	if status, body, _ := post(referral, bearer); status != http.StatusOK {
		t.Fatalf("with credentials: %d\n%s", status, body)
	}
}

// TestSlowLorisIsCutOff: a client that sends its headers a byte at a time,
// or never finishes them, is disconnected by the read header timeout; one
// that trickles its body by the read timeout. Neither is answered 2xx.
func TestSlowLorisIsCutOff(t *testing.T) {
	base, _, _ := startHubWith(t, io.Discard, func(c *config.Config) {
		c.Server.ReadHeaderTimeout = 300 * time.Millisecond
		c.Server.ReadTimeout = 600 * time.Millisecond
	})
	addr := strings.TrimPrefix(base, "http://")
	for _, c := range []struct {
		name string
		head string
	}{
		{"headers never finished", "POST /fhir/$process-message HTTP/1.1\r\nHost: iceshub\r\nContent-Type: application/fhir+json\r\n"},
		{"body trickled", "POST /fhir/$process-message HTTP/1.1\r\nHost: iceshub\r\nContent-Type: application/fhir+json\r\nContent-Length: 100000\r\n\r\n{"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, c.head); err != nil {
				t.Fatal(err)
			}
			// Keep trickling one byte at a time; the server must close the
			// connection long before the test's own deadline.
			deadline := time.Now().Add(20 * time.Second)
			closed := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(bufio.NewReader(conn))
				closed <- b
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case answer := <-closed:
					if bytes.HasPrefix(answer, []byte("HTTP/1.1 2")) {
						t.Fatalf("slow client answered %s", answer)
					}
					return
				case <-tick.C:
					if time.Now().After(deadline) {
						t.Fatal("the server kept a slow client's connection open")
					}
					if _, err := conn.Write([]byte("x")); err != nil && !errors.Is(err, net.ErrClosed) {
						// The server closed its end: the reader sees it next.
						continue
					}
				}
			}
		})
	}
}

// TestDatabaseHoldsNoPersonalDataInClear sends every sample referral through
// the hub (one held for review) and reads the raw database file and its
// write-ahead log: no NHS number, name, postcode or address line of the test
// people may be there in clear.
func TestDatabaseHoldsNoPersonalDataInClear(t *testing.T) {
	// The scan itself: a short name turns up by chance in megabytes of
	// ciphertext (a 3-letter one about once in 16 MB); in clear it stands
	// in text.
	if inClear([]byte(`{"given":["Ian"],"family":"Doe"}`), "Ian") < 0 {
		t.Fatal("inClear misses a name in a JSON payload")
	}
	if inClear([]byte("\x8f\x02\xd1\x7f\x00\x9cIan\x03\xfe\x81\x10\x99\xaa\xc4\x05"), "Ian") >= 0 {
		t.Fatal("inClear takes a chance match amid sealed bytes for a name")
	}
	base, h, sims := startTestHub(t, io.Discard)
	files, _ := filepath.Glob("../../testdata/fhir/referral-*.json")
	if len(files) < 3 {
		t.Fatalf("%d sample referrals", len(files))
	}
	var secrets []string
	for _, f := range files {
		status, answer, err := sims.PostBundle(context.Background(), base, mustRead(t, f))
		if err != nil || status != http.StatusOK {
			t.Fatalf("%s: %d %v", f, status, err)
		}
		waitOutcomes(t, h, demo.ReferralIDFrom(answer), 3)
	}
	goldens, _ := filepath.Glob("../../testdata/fhir/golden/referral-*.json")
	for _, g := range goldens {
		r := readCanonical(t, filepath.Base(g))
		secrets = append(secrets, r.Person.NHSNumber, r.Person.Name.Family, r.Person.Address.Postcode, r.Requester.PractitionerName)
		secrets = append(secrets, r.Person.Name.Given...)
		secrets = append(secrets, r.Person.Address.Lines...)
	}
	held, err := h.Store().Held(context.Background())
	if err != nil || len(held) == 0 {
		t.Fatalf("no held message (%v): the scan would not cover held payloads", err)
	}
	raw := func() []byte {
		var all []byte
		for _, name := range []string{sqlite.FileName, sqlite.FileName + "-wal"} {
			b, err := os.ReadFile(filepath.Join(h.Config().Store.DataDir, name))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		return all
	}()
	if len(raw) < 4096 {
		t.Fatalf("raw database of %d bytes: nothing to scan", len(raw))
	}
	for _, s := range secrets {
		if at := inClear(raw, s); at >= 0 {
			t.Errorf("the database file holds %q in clear: %q", s, raw[max(0, at-40):min(len(raw), at+len(s)+40)])
		}
	}
	// Any valid NHS number of the test range standing on its own (random
	// bytes of sealed values and timestamps can hold ten digits by chance;
	// they rarely pass the check digit as well).
	for _, m := range regexp.MustCompile(`(?:^|[^0-9])(999\d{7})(?:[^0-9]|$)`).FindAllSubmatchIndex(raw, -1) {
		if n := string(raw[m[2]:m[3]]); nhsnumber.Check(n) == nil {
			t.Errorf("the database file holds an NHS number in clear: %s (in %q)", n, raw[max(0, m[2]-80):min(len(raw), m[3]+40)])
		}
	}
	// The key is kept apart from the database, and not readable by others.
	fi, err := os.Stat(filepath.Join(h.Config().Store.DataDir, "data.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("data key file: %v %v", fi, err)
	}
}

// TestKeysRotateCommand: while a hub runs, 'keys rotate --new-key' is
// refused, naming the data directory's lock, and changes nothing: the key
// file is as it was, and the hub keeps serving, delivering a new referral
// and reading what it stored before (a dead letter's sealed copy). Once the
// hub has stopped, the rotation runs (a second run finds nothing to do),
// and a hub started again on the directory reads what was stored under the
// old key and serves.
func TestKeysRotateCommand(t *testing.T) {
	ctx := context.Background()
	o := startOpsHub(t, opsHubConfig{})
	o.sims.Provider.FailNext(1, http.StatusUnprocessableEntity, "")
	template := referralTemplate(t)
	first := o.send(t, template)
	eventually(t, "the first referral dead-lettered", func() bool { return len(o.deadLetters(t)) == 1 })
	dl, err := o.hub.Store().DeadLetter(ctx, o.deadLetters(t)[0].ID)
	if err != nil || dl.ReferralID != first || len(dl.Payload) == 0 {
		t.Fatalf("dead letter %+v", dl)
	}
	keyFile := filepath.Join(o.dir, "data.key")
	keysBefore, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	var out, errOut bytes.Buffer
	if code := run([]string{"keys", "rotate", "--data", o.dir, "--new-key", "--batch", "2"}, &out, &errOut); code != 1 ||
		!strings.Contains(errOut.String(), filepath.Join(o.dir, sqlite.LockFileName)) || !strings.Contains(errOut.String(), "stop the hub") {
		t.Fatalf("keys rotate with the hub running = %d, want 1 naming the lock\n%s%s", code, out.String(), errOut.String())
	}
	if keysAfter, _ := os.ReadFile(keyFile); !bytes.Equal(keysAfter, keysBefore) {
		t.Fatal("the refused rotation changed the key file")
	}
	// The hub keeps serving: ready, a new referral delivered, the dead
	// letter's sealed copy opened.
	if err := ready.Wait(ctx, o.base, 5*time.Second); err != nil {
		t.Fatalf("after the refused rotation: %v", err)
	}
	second := o.send(t, template)
	eventually(t, "the second referral delivered", func() bool { return o.outcomes(t, second)["provider"] == store.OutcomeSent })
	if got, err := o.hub.Store().DeadLetter(ctx, dl.ID); err != nil || !bytes.Equal(got.Payload, dl.Payload) {
		t.Fatalf("the running hub cannot read its dead letter after the refused rotation: %v", err)
	}
	if err := o.stop(); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	errOut.Reset()
	if code := run([]string{"keys", "rotate", "--data", o.dir, "--new-key", "--batch", "2"}, &out, &errOut); code != 0 {
		t.Fatalf("keys rotate exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "new active data key") || strings.Contains(out.String(), " 0 rewritten") {
		t.Fatalf("first rotation:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"keys", "rotate", "--data", o.dir}, &out, &errOut); code != 0 {
		t.Fatalf("second keys rotate exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), ": 0 rewritten") {
		t.Fatalf("second rotation rewrote values:\n%s", out.String())
	}

	again := startOpsHub(t, opsHubConfig{dir: o.dir})
	if got, err := again.hub.Store().DeadLetter(ctx, dl.ID); err != nil || !bytes.Equal(got.Payload, dl.Payload) {
		t.Fatalf("after the rotation the hub cannot read its dead letter: %v", err)
	}
	third := again.send(t, template)
	eventually(t, "a referral delivered after the rotation", func() bool { return again.outcomes(t, third)["provider"] == store.OutcomeSent })
}

// inClear returns where secret stands in raw as readable data, or -1.
// Secrets of 6 bytes and more count wherever they are: ciphertext holds one
// by chance about once in 2^48 bytes. A shorter one (a given name like
// "Ian") counts only with 8 printable bytes on one side of it, as in a JSON
// payload or a text column beside others, because random bytes hold a
// 3-byte string about once in 16 MB and the database and its log are
// megabytes of sealed values; 8 printable random bytes beside it are a
// chance of about 1 in 2,800.
func inClear(raw []byte, secret string) int {
	if len(secret) < 3 {
		return -1
	}
	printable := func(b []byte) bool {
		for _, c := range b {
			if c < 0x20 || c > 0x7e {
				return false
			}
		}
		return true
	}
	for from := 0; ; {
		i := bytes.Index(raw[from:], []byte(secret))
		if i < 0 {
			return -1
		}
		at := from + i
		end := at + len(secret)
		if len(secret) >= 6 || (at >= 8 && printable(raw[at-8:at])) || (end+8 <= len(raw) && printable(raw[end:end+8])) {
			return at
		}
		from = at + 1
	}
}
