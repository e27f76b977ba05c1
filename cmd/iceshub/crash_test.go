package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/iceshub/iceshub/adapters/crm"
	"github.com/iceshub/iceshub/adapters/provider"
	"github.com/iceshub/iceshub/internal/delivery/partnersim"
	"github.com/iceshub/iceshub/internal/ready"
)

// TestSIGKILLLosesNothing builds the real binary, feeds it referrals from
// several senders, kills it with SIGKILL mid-stream three times, restarts it
// on the same data directory, and checks that every referral the hub
// acknowledged reached the provider and the council, and that repeated
// deliveries carried the same Idempotency-Key.
//
// Longer than 100 lines: a run of the built binary killed and restarted under load, then every
// referral accounted for: one story, in order.
func TestSIGKILLLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and SIGKILLs the real hub process; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "iceshub")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	prov := provider.NewSimulator()
	cwac := crm.NewSimulator()
	ceast := crm.NewSimulator()
	provSrv, cwacSrv, ceastSrv := httptest.NewServer(prov), httptest.NewServer(cwac), httptest.NewServer(ceast)
	defer provSrv.Close()
	defer cwacSrv.Close()
	defer ceastSrv.Close()

	cfgPath := filepath.Join(dir, "iceshub.yaml")
	// The sender is an NHS partner with an HS256 bearer token: serve takes
	// no request without credentials.
	secret := []byte(strings.Repeat("crash-test-secret-", 3))
	secretFile := filepath.Join(dir, "nhs.secret")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		"http://127.0.0.1:9101", provSrv.URL,
		"http://127.0.0.1:9102", cwacSrv.URL,
		"http://127.0.0.1:9103", ceastSrv.URL,
		"poll_interval: 50ms", "poll_interval: 10ms",
		// The trust that sends is the one the referrals name (Y9Z01):
		// a partner may only send referrals for its own organisations.
		"    ods_codes: [Y9Z01, Y9Z02, Y9Z03]\n", "    ods_codes: [Y9Z01, Y9Z02, Y9Z03]\n"+`    inbound:
      mode: jwt
      jwt: {issuer: crash-test, audience: iceshub, algorithm: HS256, secret_file: `+secretFile+`}
      rate: {per_second: 10000, burst: 10000}
`,
	).Replace(string(mustRead(t, "../../internal/config/default.yaml")))
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Issuer: "crash-test", Audience: jwt.ClaimStrings{"iceshub"},
		IssuedAt: jwt.NewNumericDate(time.Now()), ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	template := mustRead(t, "../../testdata/fhir/referral-1-line.json")
	const headerID, bundleID = "918e19e1-647e-5c54-a34d-970fbe8dbb43", "23854247-d727-5601-a30b-80bc7dafc6e9"
	if !bytes.Contains(template, []byte(headerID)) || !bytes.Contains(template, []byte(bundleID)) {
		t.Fatal("fixture changed: update the ids this test replaces")
	}
	data := filepath.Join(dir, "data")
	logFile, err := os.Create(filepath.Join(dir, "hub.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("hub log (last 4 KiB):\n%s", tail(b, 4096))
		}
	}()

	startHub := func() (*exec.Cmd, string) {
		t.Helper()
		addr := freeAddr(t)
		cmd := exec.Command(bin, "serve", "--config", cfgPath, "--data", data, "--addr", addr)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		// serve refuses a token_env that is unset: the simulators take any.
		cmd.Env = append(os.Environ(), "ICESHUB_PROVIDER_TOKEN=crash-provider-token", "ICESHUB_CWAC_TOKEN=crash-cwac-token",
			"ICESHUB_CEAST_TOKEN=crash-ceast-token", "ICESHUB_NHS_TOKEN=crash-nhs-token")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		base := "http://" + addr
		if err := ready.Wait(context.Background(), base, 30*time.Second); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("hub did not start: %v", err)
		}
		return cmd, base
	}

	var (
		mu       sync.Mutex
		accepted []string // correlation ids of referrals the hub answered 200
	)
	send := func(base string) error {
		corr := "crash-" + uuid.NewString()
		body := bytes.ReplaceAll(template, []byte(headerID), []byte(uuid.NewString()))
		body = bytes.ReplaceAll(body, []byte(bundleID), []byte(uuid.NewString()))
		req, _ := http.NewRequest(http.MethodPost, base+"/fhir/$process-message", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("X-Request-ID", uuid.NewString())
		req.Header.Set("X-Correlation-ID", corr)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err // the hub died under us: not acknowledged, so not promised
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("hub answered %d", resp.StatusCode)
		}
		mu.Lock()
		accepted = append(accepted, corr)
		mu.Unlock()
		return nil
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted)
	}

	const rounds, perRound, senders = 3, 40, 4
	for round := 0; round < rounds; round++ {
		cmd, base := startHub()
		target := count() + perRound
		var wg sync.WaitGroup
		sendErrs := make(chan error, senders)
		for i := 0; i < senders; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				for err == nil {
					err = send(base)
				}
				sendErrs <- err
			}()
		}
		for count() < target {
			select {
			case err := <-sendErrs:
				_ = cmd.Process.Kill()
				t.Fatalf("a sender stopped before the kill: %v", err)
			case <-time.After(time.Millisecond):
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		wg.Wait()
		t.Logf("round %d: killed after %d acknowledged referrals in all; provider has %d orders", round+1, count(), prov.Stats().Created)
	}

	cmd, _ := startHub()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()

	want := map[string]bool{}
	for _, c := range accepted {
		want[c] = true
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		missingProv, missingCouncil := missing(want, corrIDs(prov.Received())), missing(want, corrIDs(cwac.Received()))
		if missingProv == 0 && missingCouncil == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart, %d of %d acknowledged referrals never reached the provider and %d never reached the council", missingProv, len(want), missingCouncil)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Repeats are allowed after a crash, but only under the same key, so the
	// partner can recognise them: one Idempotency-Key per referral and partner.
	for name, keys := range map[string]map[string]map[string]bool{"provider": keysByCorr(prov.Received()), "council": keysByCorr(cwac.Received())} {
		for corr, ks := range keys {
			if len(ks) != 1 {
				t.Errorf("%s received referral %s under %d different idempotency keys", name, corr, len(ks))
			}
		}
	}
	if n := len(ceast.Received()); n != 0 {
		t.Errorf("Cheshire East received %d requests for Chester referrals", n)
	}
	t.Logf("%d referrals acknowledged; provider: %+v; council: %+v", len(want), prov.Stats(), cwac.Stats())
}

type receivedOf[T any] = partnersim.Received[T]

func corrIDs[T any](rs []receivedOf[T]) map[string]bool {
	out := map[string]bool{}
	for _, r := range rs {
		if r.Status < 300 {
			out[r.Header.CorrelationID] = true
		}
	}
	return out
}

func keysByCorr[T any](rs []receivedOf[T]) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, r := range rs {
		if out[r.Header.CorrelationID] == nil {
			out[r.Header.CorrelationID] = map[string]bool{}
		}
		out[r.Header.CorrelationID][r.Header.IdempotencyKey] = true
	}
	return out
}

func missing(want, got map[string]bool) int {
	n := 0
	for c := range want {
		if !got[c] {
			n++
		}
	}
	return n
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
