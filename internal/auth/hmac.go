package auth

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Signed webhooks. The sender puts the Unix time in seconds in
// HeaderTimestamp and "v1=" followed by the hex HMAC-SHA256, under the
// partner's secret, of timestamp + "." + body in HeaderSignature. Several
// signatures may be sent separated by commas (while a partner changes its
// secret); one matching is enough. A request is refused when its timestamp
// is further than the replay window from the hub's clock, or when the same
// signature was accepted before within the window (ReplayStore): every
// attempt, retries included, must be signed afresh with a new timestamp.
const (
	HeaderTimestamp = "X-ICES-Timestamp"
	HeaderSignature = "X-ICES-Signature"
)

// DefaultReplayWindow is how far a webhook's timestamp may be from now.
const DefaultReplayWindow = 5 * time.Minute

// Limits on the signature headers, so that parsing them costs nothing.
const (
	maxSignatureHeader = 1024
	maxSignatures      = 4
)

// Sign returns the HeaderSignature value for body sent at ts under secret.
// Partners' simulators, the demo and tests use it; it is what a partner
// implements.
func Sign(secret []byte, ts time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return timestamp, "v1=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of the signature headers' parsers.
var (
	ErrBadTimestamp = errors.New("X-ICES-Timestamp must be the Unix time in whole seconds")
	ErrBadSignature = errors.New(`X-ICES-Signature must be "v1=" and 64 hex digits (several separated by commas)`)
)

// ParseTimestamp reads a HeaderTimestamp value: 1 to 12 decimal digits.
func ParseTimestamp(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 12 {
		return time.Time{}, ErrBadTimestamp
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return time.Time{}, ErrBadTimestamp
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, ErrBadTimestamp
	}
	return time.Unix(n, 0), nil
}

// ParseSignature reads a HeaderSignature value: up to 4 comma-separated
// "v1=<64 hex digits>"; other schemes ("v0=...") are ignored so that a
// later version can be sent beside v1. It returns the v1 MACs.
func ParseSignature(v string) ([][]byte, error) {
	if len(v) > maxSignatureHeader {
		return nil, ErrBadSignature
	}
	parts := strings.Split(v, ",")
	if len(parts) > maxSignatures {
		return nil, ErrBadSignature
	}
	var out [][]byte
	for _, p := range parts {
		p = strings.TrimSpace(p)
		scheme, val, ok := strings.Cut(p, "=")
		if !ok || scheme == "" {
			return nil, ErrBadSignature
		}
		if scheme != "v1" {
			continue
		}
		if len(val) != 2*sha256.Size {
			return nil, ErrBadSignature
		}
		b, err := hex.DecodeString(val)
		if err != nil {
			return nil, ErrBadSignature
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, ErrBadSignature
	}
	return out, nil
}

// hmacPartner is a partner that signs its webhooks.
type hmacPartner struct {
	id     string
	secret []byte
	window time.Duration
}

// verify reports whether one of sigs is the MAC of timestamp and body under
// the partner's secret, comparing in constant time, and which one.
func (p *hmacPartner) verify(timestamp string, body []byte, sigs [][]byte) ([]byte, bool) {
	want := mac(p.secret, timestamp, body)
	for _, s := range sigs {
		if hmac.Equal(want, s) {
			return s, true
		}
	}
	return nil, false
}

// ReplayStore remembers what was accepted once, so that it is refused when
// it comes again: a webhook's signature, a single-use token's jti. Keys are
// SHA-256 hashes (replayKey, jtiKey), never a signature or token itself.
// The hub's store implements it, so that a replay is refused after a
// restart and by every replica sharing the store; without one each
// Authenticator keeps its own bounded cache in memory.
type ReplayStore interface {
	// SeenBefore records key until until and reports whether it was
	// already recorded with an until after now. An error means the answer
	// is unknown: the request is refused (503), never accepted.
	SeenBefore(ctx context.Context, key [32]byte, now, until time.Time) (bool, error)
}

// DefaultReplayCacheSize bounds the signatures remembered against replay.
const DefaultReplayCacheSize = 100_000

// replayCache remembers accepted signatures until their window has passed.
// It is bounded: when full, the entry closest to expiry is forgotten first
// (entries arrive in about the order they expire), which is the one least
// useful to an attacker. It is per process, and forgets everything at a
// restart: the default ReplayStore, when none is configured.
type replayCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *replayEntry, oldest first
	seen  map[[32]byte]*list.Element
}

type replayEntry struct {
	key     [32]byte
	expires time.Time
}

func newReplayCache(max int) *replayCache {
	if max < 1 {
		max = DefaultReplayCacheSize
	}
	return &replayCache{max: max, order: list.New(), seen: map[[32]byte]*list.Element{}}
}

// SeenBefore implements ReplayStore; it never fails.
func (c *replayCache) SeenBefore(_ context.Context, key [32]byte, now, until time.Time) (bool, error) {
	return !c.add(key, until, now), nil
}

// add records key until expires and reports whether it was new (not seen
// within its window).
func (c *replayCache) add(key [32]byte, expires, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.order.Front(); e != nil; e = c.order.Front() {
		if e.Value.(*replayEntry).expires.After(now) {
			break
		}
		delete(c.seen, e.Value.(*replayEntry).key)
		c.order.Remove(e)
	}
	if el, ok := c.seen[key]; ok && el.Value.(*replayEntry).expires.After(now) {
		return false
	}
	for c.order.Len() >= c.max {
		e := c.order.Front()
		delete(c.seen, e.Value.(*replayEntry).key)
		c.order.Remove(e)
	}
	c.seen[key] = c.order.PushBack(&replayEntry{key: key, expires: expires})
	return true
}

func (c *replayCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// replayKey names an accepted webhook signature of a partner.
func replayKey(partner string, sig []byte) [32]byte {
	return hashKey("hmac", partner, sig)
}

// jtiKey names an accepted token id (jti) of a single-use partner.
func jtiKey(partner, jti string) [32]byte {
	return hashKey("jti", partner, []byte(jti))
}

// hashKey is SHA-256 of what, the partner and v, each part apart, so that
// a signature and a jti never name the same key.
func hashKey(what, partner string, v []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(what))
	h.Write([]byte{0})
	h.Write([]byte(partner))
	h.Write([]byte{0})
	h.Write(v)
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}
