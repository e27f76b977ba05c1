// Package delivery sends requests to one partner's HTTP API with retries and
// a circuit breaker, and tells permanent refusals from transient failures.
//
// One Client serves one partner endpoint. Within a call, Do retries
// transient failures (connection errors, timeouts, 408, 425, 429, 5xx) with
// exponential backoff and jitter, sending the caller's Idempotency-Key on
// every attempt. Every HTTP attempt passes a circuit breaker: after
// Config.ConsecutiveFailures attempts in a row failed (no connection, a
// timeout, a 5xx) it opens and calls fail fast, without touching the
// network; after Config.OpenTimeout one trial request decides whether it
// closes again, and each failed trial doubles the time it stays open, up to
// Config.MaxOpenTimeout. A 4xx is the partner working correctly, so it
// never counts towards opening the breaker.
//
// The package logs ids, status codes and timings only, never a request or
// answer body, and never a URL beyond the configured base URL and path.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout             = 10 * time.Second
	DefaultRetryMax            = 4
	DefaultRetryWaitMin        = 200 * time.Millisecond
	DefaultRetryWaitMax        = 10 * time.Second
	DefaultConsecutiveFailures = 5
	DefaultOpenTimeout         = 2 * time.Second
	DefaultMaxOpenTimeout      = 30 * time.Second
	DefaultMaxResponseBytes    = 1 << 20
	DefaultUserAgent           = "iceshub"
)

// Config configures a Client for one partner endpoint. Zero durations and
// counts take the defaults above.
type Config struct {
	// Partner is the partner id, used in errors, logs and the breaker's name.
	// Required.
	Partner string
	// BaseURL is the partner API's absolute http or https URL; request paths
	// are joined to it. Required.
	BaseURL string
	// Token, if not empty, is sent as "Authorization: Bearer <Token>";
	// empty, no Authorization header is sent at all. A token that is blank
	// or has spaces around it is refused. The caller reads it from the
	// environment (and refuses an unset one); it is never logged.
	Token string
	// UserAgent is sent as User-Agent; default DefaultUserAgent.
	UserAgent string

	// Timeout bounds each attempt (connect, send, and read the answer).
	Timeout time.Duration
	// RetryMax is how many times a transient failure is retried within one
	// Do call. Zero means DefaultRetryMax; a negative value means no retries.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the wait between attempts,
	// including a partner's Retry-After.
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration

	// ConsecutiveFailures is how many failed HTTP attempts in a row open
	// the circuit breaker.
	ConsecutiveFailures int
	// OpenTimeout is how long the breaker stays open the first time before
	// it lets one trial request through; each failed trial doubles it, up
	// to MaxOpenTimeout.
	OpenTimeout    time.Duration
	MaxOpenTimeout time.Duration

	// MaxResponseBytes bounds how much of an answer is read; the rest is
	// discarded and Response.Truncated is set.
	MaxResponseBytes int64

	// CheckRetry decides whether to retry after an attempt; default
	// DefaultCheckRetry.
	CheckRetry CheckRetry
	// Backoff decides how long to wait before a retry; default
	// DefaultBackoff. Whatever it returns is capped at RetryWaitMax.
	Backoff Backoff
	// PermanentStatus decides which non-2xx answers are permanent; default
	// DefaultPermanentStatus.
	PermanentStatus PermanentStatus

	// Transport carries the requests; default a clone of
	// http.DefaultTransport. Set it for custom TLS.
	Transport http.RoundTripper
	// Connections is how many requests the hub may have open to the
	// partner at once (its queues' in-flight limits together). As many
	// connections are kept open between requests, when Transport is an
	// *http.Transport; net/http's default keeps two, and every request
	// beyond them would open a connection (a TLS handshake) and close it.
	Connections int
}

// Request is one request to the partner.
type Request struct {
	// Method defaults to POST.
	Method string
	// Path is joined to the base URL ("/orders"). It must not carry personal
	// data: it may appear in errors.
	Path string
	Body []byte
	// IdempotencyKey is sent as Idempotency-Key on every attempt. Required
	// for POST and PATCH, so that a retry can never create a second record.
	IdempotencyKey string
	// CorrelationID, if not empty, is sent as X-Correlation-ID.
	CorrelationID string
	// ContentType defaults to application/json when Body is not empty.
	ContentType string
	// Header holds further headers the partner's contract asks for (FHIR's
	// X-Request-ID and If-None-Exist, an Accept other than
	// application/json). It cannot replace Idempotency-Key,
	// X-Correlation-ID, Authorization, User-Agent or Content-Type, which Do
	// sets from the fields above and the configuration. Values must not
	// carry personal data.
	Header http.Header
}

// Response is a partner's 2xx answer.
type Response struct {
	StatusCode int
	// Header is the answer's headers (a FHIR server's Location and ETag).
	Header http.Header
	// Body is the answer, at most Config.MaxResponseBytes of it.
	Body []byte
	// Truncated reports that the answer was longer than
	// Config.MaxResponseBytes.
	Truncated bool
}

// Client sends requests to one partner. It is safe for concurrent use.
type Client struct {
	partner   string
	base      *url.URL
	token     string
	userAgent string
	maxBody   int64
	permanent PermanentStatus
	http      *retryablehttp.Client
	breaker   *breaker
	log       *slog.Logger
}

// New returns a Client for cfg. It returns an error for an empty partner
// id, a base URL that is not an absolute http(s) URL, a token that cannot be
// sent in a header, negative durations, or a nil logger.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		return nil, errors.New("delivery: nil logger")
	}
	base, err := checkConfig(cfg)
	if err != nil {
		return nil, err
	}
	cfg = withDefaults(cfg)
	if cfg.RetryWaitMin > cfg.RetryWaitMax {
		return nil, fmt.Errorf("delivery: partner %q: retry wait min %s exceeds max %s", cfg.Partner, cfg.RetryWaitMin, cfg.RetryWaitMax)
	}
	return newClient(cfg, base, logger), nil
}

// checkConfig refuses what New cannot work with, and returns the parsed
// base URL.
func checkConfig(cfg Config) (*url.URL, error) {
	if strings.TrimSpace(cfg.Partner) == "" {
		return nil, errors.New("delivery: empty partner id")
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		// url.Parse quotes the URL, which may hold credentials: say only what
		// is wrong.
		return nil, fmt.Errorf("delivery: partner %q: base URL cannot be parsed", cfg.Partner)
	}
	if (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("delivery: partner %q: base URL must be an absolute http or https URL", cfg.Partner)
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("delivery: partner %q: base URL must not have a query or fragment", cfg.Partner)
	}
	if strings.ContainsAny(cfg.Token, "\r\n") || strings.ContainsAny(cfg.UserAgent, "\r\n") {
		return nil, fmt.Errorf("delivery: partner %q: token or user agent holds a line break", cfg.Partner)
	}
	if cfg.Token != "" && strings.TrimSpace(cfg.Token) != cfg.Token {
		return nil, fmt.Errorf("delivery: partner %q: the token is blank or starts or ends with spaces", cfg.Partner)
	}
	for name, d := range map[string]time.Duration{
		"timeout": cfg.Timeout, "retry wait min": cfg.RetryWaitMin, "retry wait max": cfg.RetryWaitMax, "open timeout": cfg.OpenTimeout, "max open timeout": cfg.MaxOpenTimeout,
	} {
		if d < 0 {
			return nil, fmt.Errorf("delivery: partner %q: negative %s", cfg.Partner, name)
		}
	}
	if cfg.ConsecutiveFailures < 0 || cfg.MaxResponseBytes < 0 {
		return nil, fmt.Errorf("delivery: partner %q: negative consecutive failures or response limit", cfg.Partner)
	}
	return base, nil
}

// newClient builds the Client of a checked configuration with its
// defaults: the transport behind the breaker, and the retrying client.
func newClient(cfg Config, base *url.URL, logger *slog.Logger) *Client {
	log := logger.With("partner", cfg.Partner)
	c := &Client{
		partner:   cfg.Partner,
		base:      base,
		token:     cfg.Token,
		userAgent: cfg.UserAgent,
		maxBody:   cfg.MaxResponseBytes,
		permanent: cfg.PermanentStatus,
		log:       log,
	}

	transport := cfg.Transport
	if transport == nil {
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	if t, ok := transport.(*http.Transport); ok && cfg.Connections > t.MaxIdleConnsPerHost {
		t.MaxIdleConnsPerHost = cfg.Connections
		t.MaxIdleConns = max(t.MaxIdleConns, cfg.Connections)
	}
	c.breaker = newBreaker(cfg.Partner, cfg.ConsecutiveFailures, cfg.OpenTimeout, cfg.MaxOpenTimeout, log)
	transport = &breakerTransport{next: transport, b: c.breaker}
	retryMax := cfg.RetryMax
	if retryMax < 0 {
		retryMax = 0
	}
	checkRetry, backoff := cfg.CheckRetry, cfg.Backoff
	waitMax := cfg.RetryWaitMax
	c.http = &retryablehttp.Client{
		HTTPClient: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			// A redirected POST would become a GET, or go somewhere the
			// configuration never named: take the 3xx as the answer.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		// go-retryablehttp's own logging is off: this package logs what it
		// needs through the hooks below, without URLs or bodies.
		Logger:       nil,
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		RetryMax:     retryMax,
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			if breakerRefused(err) {
				// Open: fail fast, the queue tries again later.
				return false, nil
			}
			retry, checkErr := checkRetry(ctx, resp, err)
			if retry {
				c.logRetry(ctx, resp, err)
			}
			return retry, checkErr
		},
		Backoff: func(min, max time.Duration, attemptNum int, resp *http.Response) time.Duration {
			return capDuration(backoff(min, max, attemptNum, resp), waitMax)
		},
		// Hand back the last answer rather than a generic "giving up" error,
		// so that the caller sees the partner's status and answer.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}

	return c
}

func withDefaults(cfg Config) Config {
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.RetryWaitMin == 0 {
		cfg.RetryWaitMin = DefaultRetryWaitMin
	}
	if cfg.RetryWaitMax == 0 {
		cfg.RetryWaitMax = DefaultRetryWaitMax
	}
	if cfg.ConsecutiveFailures == 0 {
		cfg.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if cfg.OpenTimeout == 0 {
		cfg.OpenTimeout = DefaultOpenTimeout
	}
	if cfg.MaxOpenTimeout == 0 {
		cfg.MaxOpenTimeout = max(DefaultMaxOpenTimeout, cfg.OpenTimeout)
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.CheckRetry == nil {
		cfg.CheckRetry = DefaultCheckRetry
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.PermanentStatus == nil {
		cfg.PermanentStatus = DefaultPermanentStatus
	}
	return cfg
}

// Partner returns the partner id the client sends to.
func (c *Client) Partner() string { return c.partner }

// BreakerState returns the circuit breaker's state: "closed", "half-open"
// or "open".
func (c *Client) BreakerState() string { return c.breaker.State() }

// call carries per-call details to the retry hooks and the breaker.
type call struct {
	ctx            context.Context // the caller's, without the call's own values
	idempotencyKey string
	correlationID  string
	// attempts is how many requests were sent (those the breaker let
	// through); only the one goroutine of the call touches it.
	attempts int
}

type callKey struct{}

// Do sends req, retrying transient failures, and returns the partner's 2xx
// answer. Any other outcome is an *Error: Permanent when the partner refused
// the request (see Config.PermanentStatus), transient otherwise, including
// when the circuit breaker is open (wrapping gobreaker.ErrOpenState or
// gobreaker.ErrTooManyRequests) and when ctx ends (wrapping ctx.Err()). For a
// non-2xx answer the returned Response holds it too.
func (c *Client) Do(ctx context.Context, req Request) (Response, error) {
	if req.Method == "" {
		req.Method = http.MethodPost
	}
	if (req.Method == http.MethodPost || req.Method == http.MethodPatch) && req.IdempotencyKey == "" {
		return Response{}, &Error{Partner: c.partner, Permanent: true, Err: fmt.Errorf("%w: %s without an idempotency key", ErrInvalidRequest, req.Method)}
	}
	if strings.ContainsAny(req.IdempotencyKey+req.CorrelationID+req.ContentType, "\r\n") || headerBreaks(req.Header) {
		return Response{}, &Error{Partner: c.partner, Permanent: true, Err: fmt.Errorf("%w: header value holds a line break", ErrInvalidRequest)}
	}
	if err := ctx.Err(); err != nil {
		return Response{}, &Error{Partner: c.partner, Err: err}
	}

	cl := &call{ctx: ctx, idempotencyKey: req.IdempotencyKey, correlationID: req.CorrelationID}
	return c.attempt(context.WithValue(ctx, callKey{}, cl), req, cl)
}

// attempt makes one Do call's worth of attempts and classifies the outcome.
func (c *Client) attempt(ctx context.Context, req Request, cl *call) (Response, error) {
	var body any
	if len(req.Body) > 0 {
		body = req.Body
	}
	r, err := retryablehttp.NewRequestWithContext(ctx, req.Method, c.base.JoinPath(req.Path).String(), body)
	if err != nil {
		return Response{}, &Error{Partner: c.partner, Permanent: true, Err: fmt.Errorf("%w: %s %s", ErrInvalidRequest, req.Method, req.Path)}
	}
	h := r.Header
	h.Set("Accept", "application/json")
	for name, values := range req.Header {
		h[http.CanonicalHeaderKey(name)] = append([]string(nil), values...)
	}
	h.Set("User-Agent", c.userAgent)
	if req.IdempotencyKey != "" {
		h.Set("Idempotency-Key", req.IdempotencyKey)
	}
	if req.CorrelationID != "" {
		h.Set("X-Correlation-ID", req.CorrelationID)
	}
	// Authorization is the configuration's alone: the partner's token, or
	// no header at all (never an empty one, nor one from req.Header).
	h.Del("Authorization")
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
	switch {
	case req.ContentType != "":
		h.Set("Content-Type", req.ContentType)
	case len(req.Body) > 0:
		h.Set("Content-Type", "application/json")
	}

	started := time.Now()
	hresp, err := c.http.Do(r)
	if err != nil {
		if hresp != nil {
			drain(hresp.Body)
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Response{}, &Error{Partner: c.partner, Attempts: cl.attempts, Err: ctxErr}
		}
		if breakerRefused(err) && cl.attempts == 0 {
			return Response{}, &Error{Partner: c.partner, Err: gobreakerErr(err)}
		}
		return Response{}, &Error{Partner: c.partner, Attempts: cl.attempts, Err: cause(err)}
	}
	defer drain(hresp.Body)
	out, readErr := c.read(hresp)
	c.log.Debug("partner answered", "status", out.StatusCode, "attempts", cl.attempts,
		"idempotency_key", cl.idempotencyKey, "correlation_id", cl.correlationID, "ms", time.Since(started).Milliseconds())

	if out.StatusCode >= 200 && out.StatusCode <= 299 {
		if readErr != nil {
			// Accepted, but the answer was cut off: transient, and the
			// retry with the same Idempotency-Key reads it again.
			return out, &Error{Partner: c.partner, StatusCode: out.StatusCode, Attempts: cl.attempts, Err: fmt.Errorf("%w: %v", ErrUnreadableAnswer, cause(readErr))}
		}
		return out, nil
	}
	return out, &Error{
		Partner:    c.partner,
		StatusCode: out.StatusCode,
		Permanent:  c.permanent(out.StatusCode),
		Body:       Snippet(out.Body),
		Attempts:   cl.attempts,
		RetryAfter: askedWait(out.Header),
		Err:        fmt.Errorf("partner answered %d %s", out.StatusCode, http.StatusText(out.StatusCode)),
	}
}

// askedWait is how long an answer's Retry-After asks the hub to wait, or
// zero.
func askedWait(h http.Header) time.Duration {
	wait, _ := retryAfter(h.Get("Retry-After"), time.Now())
	return wait
}

// read reads at most maxBody bytes of the answer.
func (c *Client) read(resp *http.Response) (Response, error) {
	out := Response{StatusCode: resp.StatusCode, Header: resp.Header}
	b, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBody+1))
	if int64(len(b)) > c.maxBody {
		b, out.Truncated = b[:c.maxBody], true
	}
	out.Body = b
	return out, err
}

// headerBreaks reports whether a header name or value holds a line break.
func headerBreaks(h http.Header) bool {
	for name, values := range h {
		if strings.ContainsAny(name, "\r\n") {
			return true
		}
		for _, v := range values {
			if strings.ContainsAny(v, "\r\n") {
				return true
			}
		}
	}
	return false
}

// logRetry logs one failed attempt that is about to be retried.
func (c *Client) logRetry(ctx context.Context, resp *http.Response, err error) {
	attrs := []any{}
	if cl, ok := ctx.Value(callKey{}).(*call); ok {
		attrs = append(attrs, "attempt", cl.attempts, "idempotency_key", cl.idempotencyKey, "correlation_id", cl.correlationID)
	}
	if resp != nil {
		attrs = append(attrs, "status", resp.StatusCode)
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			attrs = append(attrs, "retry_after", ra)
		}
	}
	if err != nil {
		attrs = append(attrs, "error", cause(err).Error())
	}
	c.log.Info("delivery attempt failed; retrying", attrs...)
}

// cause strips the *url.Error wrapper, whose message repeats the full URL,
// keeping the cause (which still matches context.DeadlineExceeded for a
// timeout).
func cause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s request: %w", ue.Op, ue.Err)
	}
	return err
}

// drain reads a little of what is left of a body, so that the connection
// can be reused, and closes it.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 4<<10))
	_ = body.Close()
}

// ForPartner is New for the client of one partner whose id is id: the
// checks every adapter makes before it sends (an id, cfg.Partner empty or
// that id, a logger), its errors prefixed with what (the adapter's name).
// cfg.Partner defaults to id.
func ForPartner(what, id string, cfg Config, logger *slog.Logger) (*Client, error) {
	if logger == nil {
		return nil, fmt.Errorf("%s: nil logger", what)
	}
	if strings.TrimSpace(id) == "" {
		return nil, fmt.Errorf("%s: empty partner id", what)
	}
	if cfg.Partner == "" {
		cfg.Partner = id
	}
	if cfg.Partner != id {
		return nil, fmt.Errorf("%s: delivery partner %q differs from id %q", what, cfg.Partner, id)
	}
	c, err := New(cfg, logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return c, nil
}
