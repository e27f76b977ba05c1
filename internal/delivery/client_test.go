package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sony/gobreaker"

	"github.com/iceshub/iceshub/internal/delivery"
)

// syncBuffer is a log sink safe for the client's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// fastConfig keeps every wait tiny so that no test depends on timing.
func fastConfig(baseURL string) delivery.Config {
	return delivery.Config{
		Partner:      "provider",
		BaseURL:      baseURL,
		Token:        "s3cret-token",
		Timeout:      5 * time.Second,
		RetryMax:     4,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
		OpenTimeout:  time.Hour,
	}
}

func newClient(t *testing.T, cfg delivery.Config) (*delivery.Client, *syncBuffer) {
	t.Helper()
	logger, buf := testLogger(t)
	c, err := delivery.New(cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, buf
}

// seen is what the test server saw of one request.
type seen struct {
	method, path                                     string
	idempotencyKey, correlationID, auth, contentType string
	body                                             string
}

// recorder is a test server that answers with the statuses in script, one
// per request, repeating the last one.
type recorder struct {
	mu       sync.Mutex
	requests []seen
	script   []func(w http.ResponseWriter)
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.requests = append(rec.requests, seen{
		method: r.Method, path: r.URL.Path,
		idempotencyKey: r.Header.Get("Idempotency-Key"), correlationID: r.Header.Get("X-Correlation-ID"),
		auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"), body: string(b),
	})
	i := min(len(rec.requests), len(rec.script)) - 1
	answer := rec.script[i]
	rec.mu.Unlock()
	answer(w)
}

func (rec *recorder) seen() []seen {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]seen(nil), rec.requests...)
}

func status(code int, body string, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// hold keeps a request unanswered until the client goes away. The body is
// read first: only then does the server notice a closed connection.
func hold(r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
	}
}

func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

var order = delivery.Request{
	Method:         http.MethodPost,
	Path:           "/orders",
	Body:           []byte(`{"hubReference":"ref-1","marker":"PERSONAL-DATA-MARKER"}`),
	IdempotencyKey: "key-1",
	CorrelationID:  "corr-1",
}

func TestRetriesThenSuccessKeepTheIdempotencyKey(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){
		status(503, `{"code":"unavailable"}`),
		status(502, ``),
		status(201, `{"orderReference":"ORD-1","status":"received"}`),
	}}
	srv := serve(t, rec)
	c, logs := newClient(t, fastConfig(srv.URL))

	resp, err := c.Do(context.Background(), order)
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.StatusCode != 201 || !strings.Contains(string(resp.Body), "ORD-1") {
		t.Fatalf("response = %d %s", resp.StatusCode, resp.Body)
	}
	got := rec.seen()
	if len(got) != 3 {
		t.Fatalf("requests = %d, want 3", len(got))
	}
	for i, s := range got {
		want := seen{
			method: "POST", path: "/orders", idempotencyKey: "key-1", correlationID: "corr-1",
			auth: "Bearer s3cret-token", contentType: "application/json", body: string(order.Body),
		}
		if s != want {
			t.Errorf("attempt %d: got %+v, want %+v", i+1, s, want)
		}
	}
	if out := logs.String(); strings.Contains(out, "PERSONAL-DATA-MARKER") || strings.Contains(out, "s3cret-token") {
		t.Errorf("logs hold the body or the token:\n%s", out)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("retries were not logged:\n%s", logs.String())
	}
}

func TestPermanentStatusesAreNotRetried(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 409, 410, 422, 501} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			answer := `{"code":"invalid-order","message":"echoed PERSONAL-DATA-MARKER"}`
			rec := &recorder{script: []func(http.ResponseWriter){status(code, answer)}}
			srv := serve(t, rec)
			c, _ := newClient(t, fastConfig(srv.URL))

			resp, err := c.Do(context.Background(), order)
			if !delivery.IsPermanent(err) {
				t.Fatalf("err = %v, want permanent", err)
			}
			if n := len(rec.seen()); n != 1 {
				t.Errorf("requests = %d, want 1 (no retry)", n)
			}
			var de *delivery.Error
			if !errors.As(err, &de) {
				t.Fatalf("err is %T, not *delivery.Error", err)
			}
			if de.StatusCode != code || de.Partner != "provider" || de.Body != answer || de.Attempts != 1 {
				t.Errorf("error = %+v", de)
			}
			if resp.StatusCode != code {
				t.Errorf("response status = %d, want %d", resp.StatusCode, code)
			}
			if strings.Contains(err.Error(), "PERSONAL-DATA-MARKER") {
				t.Errorf("Error() holds the partner's answer: %s", err)
			}
		})
	}
}

func TestTransientStatusesAreRetriedThenReturned(t *testing.T) {
	for _, code := range []int{408, 429, 500, 502, 503, 504} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			rec := &recorder{script: []func(http.ResponseWriter){status(code, `{"code":"busy"}`)}}
			srv := serve(t, rec)
			cfg := fastConfig(srv.URL)
			cfg.RetryMax = 2
			c, _ := newClient(t, cfg)

			_, err := c.Do(context.Background(), order)
			var de *delivery.Error
			if !errors.As(err, &de) || de.Permanent {
				t.Fatalf("err = %v, want transient *delivery.Error", err)
			}
			if de.StatusCode != code || de.Attempts != 3 {
				t.Errorf("error = %+v, want status %d after 3 attempts", de, code)
			}
			if n := len(rec.seen()); n != 3 {
				t.Errorf("requests = %d, want 3", n)
			}
		})
	}
}

func TestRetryAfterIsHonouredButCapped(t *testing.T) {
	// The partner asks for an hour; RetryWaitMax (5ms) wins, so the test
	// finishes at once.
	rec := &recorder{script: []func(http.ResponseWriter){
		status(503, `{}`, "Retry-After", "3600"),
		status(201, `{"orderReference":"ORD-2"}`),
	}}
	srv := serve(t, rec)
	cfg := fastConfig(srv.URL)
	var asked []time.Duration
	var mu sync.Mutex
	cfg.Backoff = func(min, max time.Duration, n int, resp *http.Response) time.Duration {
		d := delivery.DefaultBackoff(min, max, n, resp)
		mu.Lock()
		asked = append(asked, d)
		mu.Unlock()
		return d
	}
	c, _ := newClient(t, cfg)

	done := make(chan error, 1)
	go func() { _, err := c.Do(context.Background(), order); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Do waited for the partner's Retry-After instead of RetryWaitMax")
	}
	if n := len(rec.seen()); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 1 || asked[0] != 5*time.Millisecond {
		t.Errorf("backoff = %v, want [5ms] (Retry-After capped at RetryWaitMax)", asked)
	}
}

func TestBackoffCapsWhateverThePolicyReturns(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(500, ``), status(200, `{}`)}}
	srv := serve(t, rec)
	cfg := fastConfig(srv.URL)
	cfg.Backoff = func(time.Duration, time.Duration, int, *http.Response) time.Duration { return time.Hour }
	c, _ := newClient(t, cfg)
	done := make(chan error, 1)
	go func() { _, err := c.Do(context.Background(), order); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Do: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a custom Backoff was not capped at RetryWaitMax")
	}
}

func TestDefaultBackoff(t *testing.T) {
	min, max := 100*time.Millisecond, 10*time.Second
	answer := func(code int, retryAfter string) *http.Response {
		h := http.Header{}
		if retryAfter != "" {
			h.Set("Retry-After", retryAfter)
		}
		return &http.Response{StatusCode: code, Header: h}
	}
	for _, tc := range []struct {
		name     string
		attempt  int
		resp     *http.Response
		low, top time.Duration
	}{
		{"first retry", 0, nil, 50 * time.Millisecond, 100 * time.Millisecond},
		{"third retry", 2, answer(500, ""), 200 * time.Millisecond, 400 * time.Millisecond},
		{"capped", 20, nil, 5 * time.Second, 10 * time.Second},
		{"huge attempt does not overflow", 200, nil, 5 * time.Second, 10 * time.Second},
		{"503 Retry-After seconds", 0, answer(503, "3"), 3 * time.Second, 3 * time.Second},
		{"429 Retry-After seconds", 5, answer(429, "2"), 2 * time.Second, 2 * time.Second},
		{"Retry-After capped at max", 0, answer(429, "86400"), max, max},
		{"Retry-After date capped", 0, answer(503, time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), max, max},
		{"Retry-After in the past", 0, answer(503, "Mon, 02 Jan 2006 15:04:05 GMT"), 0, 0},
		{"Retry-After unparsable", 0, answer(503, "soon"), 50 * time.Millisecond, 100 * time.Millisecond},
		{"Retry-After ignored on 500", 0, answer(500, "3"), 50 * time.Millisecond, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 50 {
				got := delivery.DefaultBackoff(min, max, tc.attempt, tc.resp)
				if got < tc.low || got > tc.top {
					t.Fatalf("DefaultBackoff = %v, want within [%v, %v]", got, tc.low, tc.top)
				}
			}
		})
	}
}

func TestClassification(t *testing.T) {
	for code, want := range map[int]bool{
		400: true, 401: true, 403: true, 404: true, 409: true, 410: true, 413: true, 415: true, 422: true, 501: true,
		408: false, 425: false, 429: false, 500: false, 502: false, 503: false, 504: false, 307: false,
	} {
		if got := delivery.DefaultPermanentStatus(code); got != want {
			t.Errorf("DefaultPermanentStatus(%d) = %v, want %v", code, got, want)
		}
	}
	for code, want := range map[int]bool{408: true, 425: true, 429: true, 500: true, 502: true, 503: true, 504: true, 501: false, 422: false, 200: false, 307: false} {
		if got := delivery.RetryableStatus(code); got != want {
			t.Errorf("RetryableStatus(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(307, ``, "Location", "/elsewhere")}}
	srv := serve(t, rec)
	c, _ := newClient(t, fastConfig(srv.URL))
	_, err := c.Do(context.Background(), order)
	var de *delivery.Error
	if !errors.As(err, &de) || de.Permanent || de.StatusCode != 307 {
		t.Fatalf("err = %v, want a transient 307", err)
	}
	if got := rec.seen(); len(got) != 1 || got[0].path != "/orders" {
		t.Errorf("requests = %+v, want one to /orders", got)
	}
}

func TestBreakerOpensAfterTransientFailuresAndFailsFast(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(503, `{}`)}}
	srv := serve(t, rec)
	cfg := fastConfig(srv.URL)
	cfg.RetryMax = 1
	cfg.ConsecutiveFailures = 3
	c, logs := newClient(t, cfg)

	// The breaker counts HTTP attempts: the first call's two attempts and
	// the second call's first open it, and the second call's retry is not
	// sent.
	var de *delivery.Error
	for i, wantAttempts := range []int{2, 1} {
		_, err := c.Do(context.Background(), order)
		if err == nil || delivery.IsPermanent(err) || !errors.As(err, &de) || de.Attempts != wantAttempts {
			t.Fatalf("call %d: err = %v (%+v), want a transient failure after %d attempts", i+1, err, de, wantAttempts)
		}
	}
	if got := c.BreakerState(); got != "open" {
		t.Fatalf("breaker = %s, want open", got)
	}
	before := len(rec.seen())
	if before != 3 {
		t.Errorf("requests = %d, want 3 (the third failed attempt opens the breaker)", before)
	}

	_, err := c.Do(context.Background(), order)
	if !errors.Is(err, gobreaker.ErrOpenState) {
		t.Fatalf("err = %v, want ErrOpenState", err)
	}
	if !errors.As(err, &de) || de.Permanent || de.Partner != "provider" || de.Attempts != 0 {
		t.Errorf("breaker error = %+v, want a transient *delivery.Error with no attempts", de)
	}
	if after := len(rec.seen()); after != before {
		t.Errorf("an open breaker let %d requests through", after-before)
	}
	if !strings.Contains(logs.String(), "circuit breaker state changed") {
		t.Errorf("breaker opening was not logged")
	}
}

// TestBreakerStaysOpenLongerWhileThePartnerStaysDown: each failed trial
// doubles how long the breaker stays open, up to MaxOpenTimeout; once a
// trial succeeds it closes and the next opening starts short again. The
// intervals are read from the log, not timed.
func TestBreakerStaysOpenLongerWhileThePartnerStaysDown(t *testing.T) {
	var healthy atomic.Bool
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			status(201, `{}`)(w)
			return
		}
		status(503, `{}`)(w)
	}))
	cfg := fastConfig(srv.URL)
	cfg.RetryMax = -1
	cfg.ConsecutiveFailures = 1
	cfg.OpenTimeout = 5 * time.Millisecond
	cfg.MaxOpenTimeout = 20 * time.Millisecond
	c, logs := newClient(t, cfg)

	trials := 0
	deadline := time.Now().Add(10 * time.Second)
	for trials < 4 {
		_, err := c.Do(context.Background(), order)
		if !errors.Is(err, gobreaker.ErrOpenState) {
			trials++ // the partner was asked and failed
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d trials", trials)
		}
		time.Sleep(time.Millisecond)
	}
	var opened []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if _, after, ok := strings.Cut(line, "open_for="); ok {
			opened = append(opened, strings.Fields(after)[0])
		}
	}
	if want := []string{"5ms", "10ms", "20ms", "20ms"}; strings.Join(opened, " ") != strings.Join(want, " ") {
		t.Errorf("open intervals %v, want %v", opened, want)
	}
	healthy.Store(true)
	for {
		if _, err := c.Do(context.Background(), order); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the breaker never closed")
		}
		time.Sleep(time.Millisecond)
	}
	healthy.Store(false)
	_, _ = c.Do(context.Background(), order)
	if i := strings.LastIndex(logs.String(), "open_for="); i < 0 || !strings.HasPrefix(logs.String()[i:], "open_for=5ms") {
		t.Errorf("after closing, the next opening should be short again:\n%s", logs)
	}
}

// TestBreakerIgnoresTooManyRequests: a partner answering 429 is up and
// asks for less; its answers do not open the breaker.
func TestBreakerIgnoresTooManyRequests(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(429, `{}`)}}
	srv := serve(t, rec)
	cfg := fastConfig(srv.URL)
	cfg.RetryMax = -1
	cfg.ConsecutiveFailures = 1
	c, _ := newClient(t, cfg)
	for range 3 {
		if _, err := c.Do(context.Background(), order); err == nil || errors.Is(err, gobreaker.ErrOpenState) {
			t.Fatalf("err = %v, want the 429", err)
		}
	}
	if got := c.BreakerState(); got != "closed" {
		t.Errorf("breaker = %s after 429s, want closed", got)
	}
}

func TestPermanentRefusalsDoNotOpenTheBreaker(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(422, `{"code":"invalid-order"}`)}}
	srv := serve(t, rec)
	cfg := fastConfig(srv.URL)
	cfg.ConsecutiveFailures = 2
	c, _ := newClient(t, cfg)
	for i := range 10 {
		if _, err := c.Do(context.Background(), order); !delivery.IsPermanent(err) {
			t.Fatalf("call %d: err = %v, want permanent", i+1, err)
		}
	}
	if got := c.BreakerState(); got != "closed" {
		t.Errorf("breaker = %s after 422s, want closed", got)
	}
	if n := len(rec.seen()); n != 10 {
		t.Errorf("requests = %d, want 10", n)
	}
}

func TestBreakerClosesAgainWhenThePartnerRecovers(t *testing.T) {
	var healthy atomic.Bool
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			status(201, `{}`)(w)
			return
		}
		status(500, `{}`)(w)
	}))
	cfg := fastConfig(srv.URL)
	cfg.RetryMax = -1
	cfg.ConsecutiveFailures = 1
	cfg.OpenTimeout = time.Millisecond
	c, _ := newClient(t, cfg)

	if _, err := c.Do(context.Background(), order); err == nil {
		t.Fatal("want a failure")
	}
	healthy.Store(true)
	// The breaker lets a trial call through once OpenTimeout has passed;
	// poll rather than sleep for a fixed time.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Do(context.Background(), order)
		if err == nil {
			break
		}
		if !errors.Is(err, gobreaker.ErrOpenState) || time.Now().After(deadline) {
			t.Fatalf("err = %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if got := c.BreakerState(); got != "closed" {
		t.Errorf("breaker = %s, want closed", got)
	}
}

func TestContextCancelledWhileThePartnerIsSlow(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		hold(r) // until the client gives up
	}))
	cfg := fastConfig(srv.URL)
	cfg.ConsecutiveFailures = 1
	c, _ := newClient(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	_, err := c.Do(ctx, order)
	if !errors.Is(err, context.Canceled) || delivery.IsPermanent(err) {
		t.Fatalf("err = %v, want transient context.Canceled", err)
	}
	if got := c.BreakerState(); got != "closed" {
		t.Errorf("a cancelled call opened the breaker (%s)", got)
	}
}

func TestContextCancelledDuringBackoff(t *testing.T) {
	arrived := make(chan struct{}, 10)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		status(503, `{}`)(w)
	}))
	cfg := fastConfig(srv.URL)
	cfg.RetryWaitMax = time.Hour
	cfg.Backoff = func(time.Duration, time.Duration, int, *http.Response) time.Duration { return time.Hour }
	c, _ := newClient(t, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-arrived; cancel() }()
	_, err := c.Do(ctx, order)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if len(arrived) != 0 {
		t.Errorf("a retry was sent after cancellation")
	}
}

func TestAlreadyCancelledContextSendsNothing(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(201, `{}`)}}
	srv := serve(t, rec)
	c, _ := newClient(t, fastConfig(srv.URL))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Do(ctx, order); !errors.Is(err, context.Canceled) || delivery.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if n := len(rec.seen()); n != 0 {
		t.Errorf("requests = %d, want 0", n)
	}
}

func TestAttemptTimeoutIsTransientAndRetried(t *testing.T) {
	var n atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			hold(r) // the first attempt never answers
			return
		}
		status(201, `{}`)(w)
	}))
	cfg := fastConfig(srv.URL)
	cfg.Timeout = 50 * time.Millisecond
	c, _ := newClient(t, cfg)
	if _, err := c.Do(context.Background(), order); err != nil {
		t.Fatalf("Do: %v", err)
	}
	if n.Load() != 2 {
		t.Errorf("requests = %d, want 2", n.Load())
	}

	// A partner that never answers: transient, a deadline error, every
	// attempt used.
	slow := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hold(r) }))
	cfg = fastConfig(slow.URL)
	cfg.Timeout = 20 * time.Millisecond
	cfg.RetryMax = 1
	c, _ = newClient(t, cfg)
	_, err := c.Do(context.Background(), order)
	var de *delivery.Error
	if !errors.As(err, &de) || de.Permanent || de.StatusCode != 0 || de.Attempts != 2 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v (%+v), want a transient timeout after 2 attempts", err, de)
	}
	if strings.Contains(err.Error(), slow.URL) {
		t.Errorf("error repeats the URL: %s", err)
	}
}

func TestConnectionRefusedIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cfg := fastConfig(url)
	cfg.RetryMax = 2
	c, _ := newClient(t, cfg)
	_, err := c.Do(context.Background(), order)
	var de *delivery.Error
	if !errors.As(err, &de) || de.Permanent || de.StatusCode != 0 || de.Attempts != 3 {
		t.Fatalf("err = %v (%+v), want transient after 3 attempts", err, de)
	}
}

func TestRequestDetails(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(200, `{}`)}}
	srv := serve(t, rec)
	cfg := fastConfig(srv.URL + "/api/v1/")
	cfg.Token = ""
	c, _ := newClient(t, cfg)
	_, err := c.Do(context.Background(), delivery.Request{
		Path: "/cases", Body: []byte(`{}`), IdempotencyKey: "k", ContentType: "application/merge-patch+json",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := rec.seen()[0]
	if got.method != "POST" || got.path != "/api/v1/cases" || got.auth != "" || got.contentType != "application/merge-patch+json" || got.correlationID != "" {
		t.Errorf("request = %+v", got)
	}
}

// Without a token no Authorization header leaves, not even one the caller
// put in the request's headers, empty or not.
func TestNoTokenSendsNoAuthorizationHeader(t *testing.T) {
	var mu sync.Mutex
	var seen [][]string
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		_, present := r.Header["Authorization"]
		if present {
			seen = append(seen, r.Header.Values("Authorization"))
		}
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	cfg := fastConfig(srv.URL)
	cfg.Token = ""
	c, _ := newClient(t, cfg)
	for _, h := range []http.Header{nil, {"Authorization": {""}}, {"Authorization": {"Bearer "}}, {"Authorization": {"Bearer x"}}} {
		if _, err := c.Do(context.Background(), delivery.Request{Path: "/x", Body: []byte(`{}`), IdempotencyKey: "k", Header: h}); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 0 {
		t.Fatalf("Authorization sent without a token: %q", seen)
	}
}

func TestPostWithoutIdempotencyKeyIsRefusedLocally(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(201, `{}`)}}
	srv := serve(t, rec)
	c, _ := newClient(t, fastConfig(srv.URL))
	_, err := c.Do(context.Background(), delivery.Request{Method: "POST", Path: "/orders", Body: []byte(`{}`)})
	if !delivery.IsPermanent(err) || !errors.Is(err, delivery.ErrInvalidRequest) {
		t.Fatalf("err = %v, want permanent ErrInvalidRequest", err)
	}
	if n := len(rec.seen()); n != 0 {
		t.Errorf("requests = %d, want 0", n)
	}
}

func TestAnswerReadIsBounded(t *testing.T) {
	big := strings.Repeat("x", 3000)
	rec := &recorder{script: []func(http.ResponseWriter){status(201, big)}}
	srv := serve(t, rec)
	cfg := fastConfig(srv.URL)
	cfg.MaxResponseBytes = 1000
	c, _ := newClient(t, cfg)
	resp, err := c.Do(context.Background(), order)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Body) != 1000 || !resp.Truncated {
		t.Errorf("body = %d bytes, truncated = %v", len(resp.Body), resp.Truncated)
	}
}

func TestErrorBodyIsTruncated(t *testing.T) {
	big := strings.Repeat("é", 400) // 800 bytes
	rec := &recorder{script: []func(http.ResponseWriter){status(400, big)}}
	srv := serve(t, rec)
	c, _ := newClient(t, fastConfig(srv.URL))
	_, err := c.Do(context.Background(), order)
	var de *delivery.Error
	if !errors.As(err, &de) {
		t.Fatal(err)
	}
	if len(de.Body) != delivery.MaxErrorBody || de.Body != big[:delivery.MaxErrorBody] {
		t.Errorf("body = %d bytes", len(de.Body))
	}
}

func TestSnippet(t *testing.T) {
	if got := delivery.Snippet([]byte("short")); got != "short" {
		t.Errorf("Snippet = %q", got)
	}
	// 511 ASCII bytes then a 3-byte rune across the cut.
	in := strings.Repeat("a", 511) + "€" + "tail"
	got := delivery.Snippet([]byte(in))
	if got != strings.Repeat("a", 511) {
		t.Errorf("Snippet split a rune: %d bytes, suffix %q", len(got), got[len(got)-3:])
	}
	if got := delivery.Snippet([]byte{'a', 0xff, 'b'}); got != "a\uFFFDb" {
		t.Errorf("Snippet = %q", got)
	}
}

func TestIsPermanent(t *testing.T) {
	perm := &delivery.Error{Partner: "p", StatusCode: 422, Permanent: true}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("plain"), false},
		{perm, true},
		{fmt.Errorf("wrapped: %w", perm), true},
		{&delivery.Error{Partner: "p", StatusCode: 503}, false},
	} {
		if got := delivery.IsPermanent(tc.err); got != tc.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	cause := errors.New("cause")
	e := &delivery.Error{Partner: "council-a", StatusCode: 409, Permanent: true, Attempts: 1, Err: cause, Body: "secret"}
	if !errors.Is(e, cause) {
		t.Error("Unwrap does not reach the cause")
	}
	if got, want := e.Error(), "delivery to council-a refused (permanent, HTTP 409): cause"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestNewChecksItsConfig(t *testing.T) {
	logger, _ := testLogger(t)
	ok := delivery.Config{Partner: "p", BaseURL: "https://partner.example/api"}
	if _, err := delivery.New(ok, logger); err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
	for name, mutate := range map[string]func(*delivery.Config){
		"empty partner":      func(c *delivery.Config) { c.Partner = " " },
		"empty base URL":     func(c *delivery.Config) { c.BaseURL = "" },
		"unparsable URL":     func(c *delivery.Config) { c.BaseURL = "http://user:pw@[::1" },
		"relative URL":       func(c *delivery.Config) { c.BaseURL = "/orders" },
		"other scheme":       func(c *delivery.Config) { c.BaseURL = "ftp://partner.example" },
		"query":              func(c *delivery.Config) { c.BaseURL = "https://partner.example/?a=b" },
		"token line break":   func(c *delivery.Config) { c.Token = "a\r\nX-Evil: 1" },
		"blank token":        func(c *delivery.Config) { c.Token = "   " },
		"token with spaces":  func(c *delivery.Config) { c.Token = " tok " },
		"negative timeout":   func(c *delivery.Config) { c.Timeout = -time.Second },
		"min above max wait": func(c *delivery.Config) { c.RetryWaitMin, c.RetryWaitMax = time.Minute, time.Second },
		"negative failures":  func(c *delivery.Config) { c.ConsecutiveFailures = -1 },
	} {
		cfg := ok
		mutate(&cfg)
		_, err := delivery.New(cfg, logger)
		if err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
			continue
		}
		if strings.Contains(err.Error(), "pw") {
			t.Errorf("%s: error leaks the URL's credentials: %v", name, err)
		}
	}
	if _, err := delivery.New(ok, nil); err == nil {
		t.Error("New accepted a nil logger")
	}
}

func TestExtraHeadersAndAnswerHeaders(t *testing.T) {
	var got http.Header
	var mu sync.Mutex
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
		w.Header().Set("Location", "https://fhir.example/Task/t1/_history/2")
		w.WriteHeader(http.StatusCreated)
	}))
	c, _ := newClient(t, fastConfig(srv.URL))
	resp, err := c.Do(context.Background(), delivery.Request{
		Method: http.MethodPut, Path: "/Task/t1", Body: []byte(`{}`), IdempotencyKey: "key-1",
		ContentType: "application/fhir+json",
		Header: http.Header{
			"Accept":          {"application/fhir+json"},
			"X-Request-ID":    {"0b6c2a4e-0000-4000-8000-000000000001"},
			"Idempotency-Key": {"must-not-win"},
			"Authorization":   {"Bearer must-not-win"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for name, want := range map[string]string{
		"Accept": "application/fhir+json", "X-Request-Id": "0b6c2a4e-0000-4000-8000-000000000001",
		"Idempotency-Key": "key-1", "Authorization": "Bearer s3cret-token", "Content-Type": "application/fhir+json",
	} {
		if v := got.Get(name); v != want {
			t.Errorf("%s = %q, want %q", name, v, want)
		}
	}
	if loc := resp.Header.Get("Location"); loc != "https://fhir.example/Task/t1/_history/2" {
		t.Errorf("answer Location = %q", loc)
	}
}

func TestHeaderWithLineBreakIsRefusedLocally(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){status(201, `{}`)}}
	srv := serve(t, rec)
	c, _ := newClient(t, fastConfig(srv.URL))
	_, err := c.Do(context.Background(), delivery.Request{Path: "/x", Body: []byte(`{}`), IdempotencyKey: "k",
		Header: http.Header{"X-Request-ID": {"a\r\nInjected: yes"}}})
	if !delivery.IsPermanent(err) || !errors.Is(err, delivery.ErrInvalidRequest) {
		t.Fatalf("err = %v, want permanent ErrInvalidRequest", err)
	}
	if n := len(rec.seen()); n != 0 {
		t.Errorf("requests = %d, want 0", n)
	}
}

// A failure carries the partner's Retry-After, so that whoever tries again
// later (the routes' parked lanes) waits as long as the partner asked.
func TestErrorCarriesRetryAfter(t *testing.T) {
	rec := &recorder{script: []func(http.ResponseWriter){
		status(503, `{}`, "Retry-After", "120"),
	}}
	srv := serve(t, rec)
	cfg := fastConfig(srv.URL)
	cfg.RetryMax = -1
	c, _ := newClient(t, cfg)
	_, err := c.Do(context.Background(), order)
	var de *delivery.Error
	if !errors.As(err, &de) || de.Permanent || de.RetryAfter != 2*time.Minute {
		t.Fatalf("err = %#v, want a transient error asking for 2m", err)
	}
}

// TestConcurrentRequestsReuseTheirConnections: with Connections set to how
// many requests the hub has open at once, rounds of that many concurrent
// requests reuse the connections the first round opened, instead of opening
// (and, with TLS, handshaking) a new one for every request beyond net/http's
// default of two idle connections per host.
func TestConcurrentRequestsReuseTheirConnections(t *testing.T) {
	const concurrent, rounds = 8, 10
	var (
		mu      sync.Mutex
		waiting int
		release = make(chan struct{})
		opened  atomic.Int32
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		// Hold each round's requests until all of them have arrived, so
		// that every round has `concurrent` requests open at once.
		mu.Lock()
		ch := release
		if waiting++; waiting == concurrent {
			close(release)
			release, waiting = make(chan struct{}), 0
		}
		mu.Unlock()
		<-ch
		w.WriteHeader(http.StatusCreated)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	cfg := fastConfig(srv.URL)
	cfg.Connections = concurrent
	c, _ := newClient(t, cfg)
	for range rounds {
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				if resp, err := c.Do(context.Background(), order); err != nil || resp.StatusCode != http.StatusCreated {
					t.Errorf("Do = %v, %v", resp, err)
				}
			})
		}
		wg.Wait()
	}
	// The first round opens `concurrent`; a connection returned to the
	// pool a moment after its answer was read may be missed by the next
	// round, hence the slack. Without reuse it is about 2 + 6 per round.
	if n := opened.Load(); n > 2*concurrent {
		t.Fatalf("%d connections opened for %d rounds of %d concurrent requests; want them reused", n, rounds, concurrent)
	}
}

// ForPartner refuses what no adapter may send with, naming the adapter.
func TestForPartnerRefusesAMismatchedPartner(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	cfg := delivery.Config{BaseURL: "http://127.0.0.1:1"}
	if _, err := delivery.ForPartner("crm", " ", cfg, logger); err == nil || !strings.Contains(err.Error(), "crm: empty partner id") {
		t.Errorf("empty id: %v", err)
	}
	cfg.Partner = "council-a"
	if _, err := delivery.ForPartner("crm", "council-b", cfg, logger); err == nil || !strings.Contains(err.Error(), `"council-a" differs from id "council-b"`) {
		t.Errorf("mismatch: %v", err)
	}
	if _, err := delivery.ForPartner("crm", "council-a", cfg, nil); err == nil {
		t.Error("nil logger accepted")
	}
	cfg.Partner = ""
	c, err := delivery.ForPartner("crm", "council-a", cfg, logger)
	if err != nil || c == nil {
		t.Fatalf("valid: %v", err)
	}
}
