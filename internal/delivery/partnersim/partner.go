package partnersim

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// FailFunc decides, for one request, whether a Partner fails it: path is the
// request's escaped path, idempotencyKey its Idempotency-Key header and body
// its raw body (possibly cut short when it was too large). It is called with
// the Partner's lock held: it must not call the simulator.
type FailFunc func(path, idempotencyKey string, body []byte) (status int, retryAfter string, fail bool)

// Entry is one request in a Partner's journal.
type Entry struct {
	// Seq numbers the Partner's requests in the order answered, from 1.
	Seq    int
	At     time.Time
	Method string
	// Path is the request's escaped path.
	Path   string
	Header Header
	Status int
	// Reference is the partner reference answered, empty when refused.
	Reference string
	// Repeat reports an Idempotency-Key seen before.
	Repeat bool
	// Body is the decoded body, re-encoded; nil when it did not decode.
	Body json.RawMessage
}

// Partner is what the endpoints (Sims) of one simulated partner share: its
// bearer token, injected failures, the references it created and one
// journal of every request. Its zero value is not usable; call NewPartner.
// It is safe for concurrent use.
type Partner struct {
	mu                 sync.Mutex
	token              string
	failNext           int
	failNextStatus     int
	failNextRetryAfter string
	failAlways         int
	failWhen           FailFunc
	refs               map[string]bool
	entries            []Entry
}

// NewPartner returns a Partner with no token, no failures and no requests.
func NewPartner() *Partner { return &Partner{refs: map[string]bool{}} }

// RequireToken makes every endpoint refuse (401) any request whose
// Authorization is not "Bearer <token>". An empty token requires none, but
// an Authorization header that is present must still be a bearer token.
func (p *Partner) RequireToken(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.token = token
}

// FailNext makes the next n requests, to any endpoint, fail with status,
// sending Retry-After: retryAfter when it is not empty. The failing requests
// are recorded but create nothing.
func (p *Partner) FailNext(n, status int, retryAfter string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failNext, p.failNextStatus, p.failNextRetryAfter = n, status, retryAfter
}

// SetFailure makes every request fail with status until ClearFailure.
func (p *Partner) SetFailure(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failAlways = status
}

// FailWhen makes every request for which f reports fail, until ClearFailure
// or another FailWhen, fail with the status (and Retry-After) f returns:
// one referral's order can fail while the others pass. FailNext and
// SetFailure, when set, are consulted first. A nil f ends FailWhen.
func (p *Partner) FailWhen(f FailFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failWhen = f
}

// ClearFailure ends SetFailure and FailWhen, and cancels what is left of
// FailNext.
func (p *Partner) ClearFailure() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failAlways, p.failNext, p.failWhen = 0, 0, nil
}

// Known reports whether ref is a reference one of the Partner's endpoints
// created.
func (p *Partner) Known(ref string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refs[ref]
}

// Remember makes ref a reference the Partner knows, as if one of its
// endpoints had created it: a complaint case the council opened itself,
// say.
func (p *Partner) Remember(ref string) { p.created(ref) }

// Journal returns every request the Partner's endpoints answered, in order
// (Seq ascending). The bodies are shared: treat them as read-only.
func (p *Partner) Journal() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.entries)
}

// injectedFailure consumes one injected failure, if any.
func (p *Partner) injectedFailure(path, key string, body []byte) (status int, retryAfter string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failNext > 0 {
		p.failNext--
		return p.failNextStatus, p.failNextRetryAfter, true
	}
	if p.failAlways != 0 {
		return p.failAlways, "", true
	}
	if p.failWhen != nil {
		if status, retryAfter, fail := p.failWhen(path, key, body); fail {
			return status, retryAfter, true
		}
	}
	return 0, "", false
}

func (p *Partner) authorised(h string) (string, bool) {
	p.mu.Lock()
	token := p.token
	p.mu.Unlock()
	if token == "" {
		if h == "" || strings.HasPrefix(h, "Bearer ") {
			return "", true
		}
		return "Authorization must be a bearer token", false
	}
	if h == "" {
		return "send Authorization: Bearer <token>", false
	}
	if h != "Bearer "+token {
		return "the bearer token is not valid", false
	}
	return "", true
}

func (p *Partner) created(ref string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refs[ref] = true
}

// journal appends e and returns its sequence number.
func (p *Partner) journal(e Entry) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	e.Seq = len(p.entries) + 1
	p.entries = append(p.entries, e)
	return e.Seq
}

// Params matches an escaped request path against a pattern whose {name}
// segments match any one non-empty segment, and returns the unescaped
// values of those segments. A pattern without {name} segments matches only
// itself.
func Params(pattern, path string) (map[string]string, bool) {
	ps, qs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(qs) {
		return nil, false
	}
	params := map[string]string{}
	for i, seg := range ps {
		if name, ok := strings.CutPrefix(seg, "{"); ok && strings.HasSuffix(name, "}") {
			v, err := url.PathUnescape(qs[i])
			if err != nil || v == "" {
				return nil, false
			}
			params[strings.TrimSuffix(name, "}")] = v
			continue
		}
		if seg != qs[i] {
			return nil, false
		}
	}
	return params, true
}

// Endpoint is a Sim as an http.Handler that knows its path.
type Endpoint interface {
	http.Handler
	Matches(escapedPath string) bool
}

// Route returns a handler that passes each request to the first endpoint
// whose path it matches, and any other request to fallback (which answers
// 404 for a path not its own, and records it).
func Route(fallback Endpoint, endpoints ...Endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		for _, e := range endpoints {
			if e.Matches(path) {
				e.ServeHTTP(w, r)
				return
			}
		}
		fallback.ServeHTTP(w, r)
	})
}
