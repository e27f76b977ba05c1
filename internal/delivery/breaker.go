package delivery

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/sony/gobreaker"
)

// breaker is a partner endpoint's circuit breaker. It counts HTTP attempts,
// not Do calls: with each call making up to RetryMax+1 attempts, counting
// calls let a partner that was down take thousands of requests before the
// breaker opened (about 4.5 s under load in the outside test). Each time it
// opens again after a failed trial, it stays open twice as long as the time
// before, from Config.OpenTimeout up to Config.MaxOpenTimeout, so that a
// partner back within seconds gets traffic within seconds, and one down for
// hours gets one trial request every MaxOpenTimeout.
//
// gobreaker decides when to open (ReadyToTrip) and lets one trial through
// when half-open; the growing interval is a hold in front of it: gobreaker
// is given the first interval, and breaker refuses calls itself until the
// longer interval has passed.
type breaker struct {
	cb       *gobreaker.CircuitBreaker
	first    time.Duration
	longest  time.Duration
	now      func() time.Time
	log      *slog.Logger
	mu       sync.Mutex
	reopened int       // openings since the breaker was last closed, less one
	holdTill time.Time // calls are refused until then, whatever cb says
}

func newBreaker(name string, failures int, first, longest time.Duration, log *slog.Logger) *breaker {
	b := &breaker{first: first, longest: max(longest, first), now: time.Now, log: log}
	b.cb = gobreaker.NewCircuitBreaker(gobreaker.Settings{
		Name:        name,
		MaxRequests: 1,
		Timeout:     first,
		ReadyToTrip: func(counts gobreaker.Counts) bool {
			return counts.ConsecutiveFailures >= uint32(failures)
		},
		OnStateChange: b.changed,
	})
	return b
}

// changed runs inside gobreaker's lock: it must not call b.cb.
func (b *breaker) changed(_ string, from, to gobreaker.State) {
	b.mu.Lock()
	var openFor time.Duration
	switch to {
	case gobreaker.StateOpen:
		if from == gobreaker.StateHalfOpen {
			b.reopened++
		} else {
			b.reopened = 0
		}
		openFor = b.first
		for i := 0; i < b.reopened && openFor < b.longest; i++ {
			openFor *= 2
		}
		openFor = min(openFor, b.longest)
		b.holdTill = b.now().Add(openFor)
	case gobreaker.StateClosed:
		b.reopened, b.holdTill = 0, time.Time{}
	}
	b.mu.Unlock()
	level := slog.LevelWarn
	attrs := []any{"from", from.String(), "to", to.String()}
	switch to {
	case gobreaker.StateClosed:
		level = slog.LevelInfo
	case gobreaker.StateOpen:
		attrs = append(attrs, "open_for", openFor.String())
	}
	b.log.Log(context.Background(), level, "circuit breaker state changed", attrs...)
}

// held reports whether calls are refused by the growing hold.
func (b *breaker) held() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now().Before(b.holdTill)
}

// State returns "closed", "half-open" or "open"; open while the hold lasts.
func (b *breaker) State() string {
	if b.held() {
		return gobreaker.StateOpen.String()
	}
	return b.cb.State().String()
}

// errFailedAttempt tells gobreaker that an attempt the partner answered
// failed; the answer itself still goes back to the retry loop.
var errFailedAttempt = errors.New("partner answered with a failure")

// breakerTransport sends each HTTP attempt through the breaker, so that
// the breaker sees every attempt and an open breaker stops the retries of
// a call in progress too (the retry policy does not retry its refusal).
type breakerTransport struct {
	next http.RoundTripper
	b    *breaker
}

// RoundTrip sends r unless the breaker is open. A connection error, a
// timeout and a 5xx other than 501 count as failures; a caller that went
// away, a 2xx, a 4xx (429 included: the partner is up and asks for less)
// and any other answer do not.
func (t *breakerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	cl, _ := r.Context().Value(callKey{}).(*call)
	if t.b.held() {
		drainRequest(r)
		return nil, gobreaker.ErrOpenState
	}
	var resp *http.Response
	var sendErr error
	_, err := t.b.cb.Execute(func() (any, error) {
		if cl != nil {
			cl.attempts++
		}
		resp, sendErr = t.next.RoundTrip(r)
		switch {
		case sendErr != nil && cl != nil && cl.ctx.Err() != nil:
			return nil, nil // the caller went away: not the partner's failure
		case sendErr != nil:
			return nil, sendErr
		case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
			return nil, errFailedAttempt
		}
		return nil, nil
	})
	switch {
	case resp != nil:
		return resp, nil
	case sendErr != nil:
		return nil, sendErr
	case err != nil:
		// Refused by gobreaker itself: open, or half-open with its one
		// trial request already out.
		drainRequest(r)
		return nil, err
	}
	return nil, errors.New("delivery: transport returned neither an answer nor an error")
}

// drainRequest closes the body of a request that is not sent, as a
// RoundTripper must.
func drainRequest(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

// breakerRefused reports whether err is the breaker refusing a call.
func breakerRefused(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// gobreakerErr returns gobreaker's own error within err, without the
// url.Error around it (which names the URL).
func gobreakerErr(err error) error {
	if errors.Is(err, gobreaker.ErrTooManyRequests) {
		return gobreaker.ErrTooManyRequests
	}
	return gobreaker.ErrOpenState
}
