package delivery

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// CheckRetry decides, after each attempt, whether the client tries again
// within one Do call. resp is nil when err is not. A non-nil error returned
// ends the call with that error. It has the signature of go-retryablehttp's
// CheckRetry.
type CheckRetry func(ctx context.Context, resp *http.Response, err error) (bool, error)

// Backoff returns how long to wait before retry attemptNum (0 for the first
// retry), given the answer to the attempt that failed (nil when there was
// none). It has the signature of go-retryablehttp's Backoff.
type Backoff func(min, max time.Duration, attemptNum int, resp *http.Response) time.Duration

// PermanentStatus reports whether a partner's non-2xx HTTP status means the
// request will never succeed as it stands.
type PermanentStatus func(code int) bool

// DefaultCheckRetry retries connection errors and timeouts, and the statuses
// RetryableStatus names. It stops at once when ctx is done, and does not
// retry errors that another attempt cannot fix (an invalid URL scheme, an
// untrusted certificate, too many redirects), which are still transient
// failures for the caller: the configuration, not the message, is wrong.
func DefaultCheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	return RetryableStatus(resp.StatusCode), nil
}

// RetryableStatus reports whether an HTTP status is worth another attempt:
// 408, 425, 429 and every 5xx except 501 Not Implemented.
func RetryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented:
		return false
	}
	return code >= 500 && code <= 599
}

// DefaultPermanentStatus treats every 4xx as permanent except 408 Request
// Timeout, 425 Too Early and 429 Too Many Requests, and 501 Not Implemented
// as permanent too. Everything else that is not 2xx (5xx, an unexpected 3xx
// or 1xx) is transient.
//
// 401 and 403 are permanent by this policy: a wrong or expired token
// dead-letters the messages sent with it, and they are replayed once the
// token is fixed.
func DefaultPermanentStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	case http.StatusNotImplemented:
		return true
	}
	return code >= 400 && code <= 499
}

// DefaultBackoff waits exponentially longer between attempts (min, 2*min,
// 4*min, ... up to max) with "equal jitter": half of each wait is fixed and
// half random, so that many hubs retrying at once spread out.
//
// For 429 and 503 it honours the partner's Retry-After (seconds or an HTTP
// date), but never waits longer than max: go-retryablehttp's own backoffs do
// not cap Retry-After, and a partner asking for an hour must not hold a
// delivery worker for an hour. The message's queue retries later anyway.
func DefaultBackoff(min, max time.Duration, attemptNum int, resp *http.Response) time.Duration {
	if max < min {
		max = min
	}
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if wait, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return capDuration(wait, max)
		}
	}
	base := min
	for i := 0; i < attemptNum && base < max; i++ {
		if base > max/2 {
			base = max
			break
		}
		base *= 2
	}
	base = capDuration(base, max)
	if base <= 0 {
		return 0
	}
	half := base / 2
	return half + rand.N(base-half+1)
}

// retryAfter parses a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(24*time.Hour/time.Second) {
			secs = int64(24 * time.Hour / time.Second) // capped by the caller anyway; avoid overflow
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return d, true
	}
	return 0, true
}

func capDuration(d, max time.Duration) time.Duration {
	if d > max {
		return max
	}
	return d
}
