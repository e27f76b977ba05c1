package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// PartnerConfig is the inbound configuration of one partner.
type PartnerConfig struct {
	ID   string
	Kind string
	// Mode is ModeMTLS, ModeJWT, ModeHMAC or ModeNone (or empty: none).
	Mode string
	MTLS MTLSConfig
	JWT  JWTConfig
	// HMACSecret is the shared secret of signed webhooks (at least 32
	// bytes); HMACWindow the replay window (zero: DefaultReplayWindow).
	HMACSecret []byte
	HMACWindow time.Duration
	// RatePerSecond and Burst limit the partner's requests; zero
	// RatePerSecond means no limit.
	RatePerSecond float64
	Burst         int
	// Endpoints the partner may call, each "METHOD /path": the path may
	// end in "*" to allow everything below it, and "{self}" stands for the
	// partner's id ("POST /crm/{self}/events"). GET allows HEAD too.
	Endpoints []string
	// Messages are the kinds of message the partner may send (MaySend).
	Messages []string
	// ODSCodes are the ODS codes an nhs partner speaks for
	// (Partner.ODSCodes).
	ODSCodes []string
}

// NewPartner returns the identity of a partner configured as pc, as Wrap
// puts it in the context of the partner's requests; handlers' tests use it
// with WithPartner.
func NewPartner(pc PartnerConfig) Partner {
	return Partner{ID: pc.ID, Kind: pc.Kind, Mode: pc.Mode, ODSCodes: slices.Clone(pc.ODSCodes), messages: slices.Clone(pc.Messages)}
}

// Config configures an Authenticator.
type Config struct {
	Partners []PartnerConfig
	// InsecureDev lets requests without any credentials through as
	// InsecureDevID, with a warning logged for each. Credentials that are
	// presented are still checked. Never in production.
	InsecureDev bool
	// MaxBodyBytes bounds the body read to check a webhook's signature;
	// zero means 1 MiB. A larger body is answered 413.
	MaxBodyBytes int64
	// Replays remembers accepted webhook signatures and single-use tokens'
	// ids; nil means a cache in this process's memory, of ReplayCacheSize
	// entries (zero: DefaultReplayCacheSize), forgotten at a restart.
	Replays         ReplayStore
	ReplayCacheSize int
	// Counter counts every decision; nil counts nothing.
	Counter Counter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Authenticator authenticates and authorises inbound requests (Wrap). It is
// safe for concurrent use.
type Authenticator struct {
	cfg      Config
	log      *slog.Logger
	partners map[string]*partner
	certs    map[[32]byte]*partner
	spkis    map[[32]byte]*partner
	jwts     []*jwtPartner
	hmacs    []*hmacPartner
	replays  ReplayStore
}

// partner is one partner's inbound state.
type partner struct {
	id        PartnerConfig
	ident     Partner
	limiter   *rate.Limiter
	endpoints []string
}

// New returns an Authenticator for cfg, or an error naming the partner for
// any configuration it cannot enforce (a mode without its credentials, a
// key of the wrong kind, a fingerprint or secret claimed by two partners).
func New(cfg Config, logger *slog.Logger) (*Authenticator, error) {
	if logger == nil {
		return nil, errors.New("auth: nil logger")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	a := &Authenticator{
		cfg:      cfg,
		log:      logger.With("component", "auth"),
		partners: map[string]*partner{},
		certs:    map[[32]byte]*partner{},
		spkis:    map[[32]byte]*partner{},
		replays:  cfg.Replays,
	}
	if a.replays == nil {
		a.replays = newReplayCache(cfg.ReplayCacheSize)
	}
	secrets := map[string]string{}
	for _, pc := range cfg.Partners {
		if pc.ID == "" || pc.ID == InsecureDevID || pc.ID == UnknownPartner {
			return nil, fmt.Errorf("auth: partner id %q is empty or reserved", pc.ID)
		}
		if _, dup := a.partners[pc.ID]; dup {
			return nil, fmt.Errorf("auth: partner %q configured twice", pc.ID)
		}
		if pc.Mode == "" {
			pc.Mode = ModeNone
		}
		p := &partner{id: pc, ident: NewPartner(pc)}
		for _, e := range pc.Endpoints {
			method, pth, ok := strings.Cut(strings.TrimSpace(e), " ")
			if !ok || method == "" || !strings.HasPrefix(strings.TrimSpace(pth), "/") {
				return nil, fmt.Errorf("auth: partner %q: endpoint %q is not \"METHOD /path\"", pc.ID, e)
			}
			p.endpoints = append(p.endpoints, strings.ToUpper(method)+" "+strings.ReplaceAll(strings.TrimSpace(pth), "{self}", pc.ID))
		}
		if pc.RatePerSecond < 0 || pc.Burst < 0 {
			return nil, fmt.Errorf("auth: partner %q: negative rate or burst", pc.ID)
		}
		if pc.RatePerSecond > 0 {
			burst := pc.Burst
			if burst < 1 {
				burst = max(1, int(pc.RatePerSecond))
			}
			p.limiter = rate.NewLimiter(rate.Limit(pc.RatePerSecond), burst)
		}
		switch pc.Mode {
		case ModeNone:
		case ModeMTLS:
			if len(pc.MTLS.CertSHA256)+len(pc.MTLS.SPKISHA256) == 0 {
				return nil, fmt.Errorf("auth: partner %q: mtls needs at least one certificate or public key fingerprint", pc.ID)
			}
			for _, fp := range pc.MTLS.CertSHA256 {
				if other, dup := a.certs[fp]; dup {
					return nil, fmt.Errorf("auth: partners %q and %q pin the same certificate", other.id.ID, pc.ID)
				}
				a.certs[fp] = p
			}
			for _, fp := range pc.MTLS.SPKISHA256 {
				if other, dup := a.spkis[fp]; dup {
					return nil, fmt.Errorf("auth: partners %q and %q pin the same public key", other.id.ID, pc.ID)
				}
				a.spkis[fp] = p
			}
		case ModeJWT:
			jp, err := newJWTPartner(pc.ID, pc.JWT, cfg.Now)
			if err != nil {
				return nil, fmt.Errorf("auth: partner %q: %w", pc.ID, err)
			}
			a.jwts = append(a.jwts, jp)
		case ModeHMAC:
			if len(pc.HMACSecret) < 32 {
				return nil, fmt.Errorf("auth: partner %q: the webhook secret must be at least 32 bytes", pc.ID)
			}
			if other, dup := secrets[string(pc.HMACSecret)]; dup {
				return nil, fmt.Errorf("auth: partners %q and %q share a webhook secret: each partner needs its own", other, pc.ID)
			}
			secrets[string(pc.HMACSecret)] = pc.ID
			w := pc.HMACWindow
			if w <= 0 {
				w = DefaultReplayWindow
			}
			a.hmacs = append(a.hmacs, &hmacPartner{id: pc.ID, secret: bytes.Clone(pc.HMACSecret), window: w})
		default:
			return nil, fmt.Errorf("auth: partner %q: mode %q is not one of mtls, jwt, hmac, none", pc.ID, pc.Mode)
		}
		a.partners[pc.ID] = p
	}
	if cfg.InsecureDev {
		a.log.Warn("INSECURE DEVELOPMENT MODE: requests without credentials are accepted from anyone; never run this way with real data")
	}
	return a, nil
}

// Wrap returns a handler that authenticates each request, limits the
// partner's rate, checks that sel and the partner's configured endpoints
// both allow it, and then calls next with the partner in the context
// (PartnerFrom). Refusals are written by ew and next is not called:
// 401 without or with invalid credentials, 403 for a partner not allowed
// here, 429 over its rate, 413 for a signed body over the limit.
//
// For a signed webhook the body is read (up to Config.MaxBodyBytes) to check
// the signature and handed to next unchanged.
func (a *Authenticator) Wrap(sel Selector, next http.Handler, ew ErrorWriter) http.Handler {
	if sel == nil {
		sel = func(*http.Request, Partner) bool { return false }
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, e := a.authenticate(r)
		if e != nil {
			a.refuse(w, r, UnknownPartner, e, ew)
			return
		}
		if p == nil {
			// Insecure development mode and no credentials at all.
			a.count(InsecureDevID, OutcomeInsecureDev)
			a.log.Warn("INSECURE DEVELOPMENT MODE: request accepted without credentials", "route", routeOf(r))
			next.ServeHTTP(w, r.WithContext(WithPartner(r.Context(), Partner{ID: InsecureDevID, Mode: ModeNone, Insecure: true})))
			return
		}
		if p.limiter != nil {
			now := a.cfg.Now()
			res := p.limiter.ReserveN(now, 1)
			if d := res.DelayFrom(now); !res.OK() || d > 0 {
				res.CancelAt(now)
				e := refuse(http.StatusTooManyRequests, CodeRateLimited, "rate", "too many requests from this partner: slow down and retry after the time given")
				e.RetryAfter = max(d, time.Second)
				a.refuse(w, r, p.id.ID, e, ew)
				return
			}
		}
		if !sel(r, p.ident) || !p.allows(r) {
			a.refuse(w, r, p.id.ID, refuse(http.StatusForbidden, CodeForbidden, "endpoint", "this partner may not call this endpoint"), ew)
			return
		}
		v := &verdict{outcome: OutcomeAccepted}
		ctx := context.WithValue(WithPartner(r.Context(), p.ident), verdictKey{}, v)
		next.ServeHTTP(w, r.WithContext(ctx))
		v.mu.Lock()
		outcome, reason := v.outcome, v.reason
		v.mu.Unlock()
		a.count(p.id.ID, outcome)
		if outcome != OutcomeAccepted {
			a.log.Warn("inbound request refused", "partner", p.id.ID, "route", routeOf(r), "status", http.StatusForbidden, "reason", reason)
		}
	})
}

// authenticate returns the partner r proves to be; nil and no error when
// r carries no credentials and the hub runs in insecure development mode.
func (a *Authenticator) authenticate(r *http.Request) (*partner, *Error) {
	var certPresented bool
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		certPresented = true
		c := r.TLS.PeerCertificates[0]
		p := a.certs[CertFingerprint(c)]
		if p == nil {
			p = a.spkis[SPKIFingerprint(c)]
		}
		if p != nil {
			now := a.cfg.Now()
			if now.Before(c.NotBefore) || now.After(c.NotAfter) {
				return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, "certificate_expired", "the client certificate has expired or is not valid yet")
			}
			return p, nil
		}
	}
	if h := r.Header.Get("Authorization"); h != "" {
		tok, err := ParseBearer(h)
		if err != nil {
			return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, "authorization_header", err.Error())
		}
		return a.authenticateJWT(r.Context(), tok)
	}
	if r.Header.Get(HeaderSignature) != "" || r.Header.Get(HeaderTimestamp) != "" {
		return a.authenticateHMAC(r)
	}
	if certPresented {
		return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, "certificate_unknown", "the client certificate is not pinned to any partner")
	}
	if a.cfg.InsecureDev {
		return nil, nil
	}
	return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, "no_credentials", "credentials required: a client certificate, a bearer token or a signed request, as agreed for your organisation")
}

func (a *Authenticator) authenticateJWT(ctx context.Context, tok string) (*partner, *Error) {
	iss, ok := unverifiedIssuer(tok)
	if !ok {
		return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, "token_invalid", tokenMessages["token_invalid"])
	}
	reason := ""
	for _, jp := range a.jwts {
		if jp.cfg.Issuer != iss {
			continue
		}
		v, why, ok := jp.verify(tok)
		if ok {
			if jp.cfg.SingleUse {
				if e := a.once(ctx, jtiKey(jp.id, v.jti), v.until, "token_replay", tokenMessages["token_replay"]); e != nil {
					return nil, e
				}
			}
			return a.partners[jp.id], nil
		}
		if reason == "" {
			reason = why
		}
	}
	if reason == "" {
		reason = "token_issuer"
	}
	return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, reason, tokenMessages[reason])
}

func (a *Authenticator) authenticateHMAC(r *http.Request) (*partner, *Error) {
	tsText := strings.TrimSpace(r.Header.Get(HeaderTimestamp))
	ts, err := ParseTimestamp(tsText)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, "timestamp_header", err.Error())
	}
	sigs, err := ParseSignature(r.Header.Get(HeaderSignature))
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, "signature_header", err.Error())
	}
	body, e := a.readBody(r)
	if e != nil {
		return nil, e
	}
	now := a.cfg.Now()
	for _, hp := range a.hmacs {
		sig, ok := hp.verify(tsText, body, sigs)
		if !ok {
			continue
		}
		// Only a valid signature tells whose window applies, so the
		// timestamp is checked after it.
		if d := now.Sub(ts); d > hp.window || d < -hp.window {
			return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, "timestamp_stale", "the request's timestamp is outside the replay window: sign each request when you send it")
		}
		if e := a.once(r.Context(), replayKey(hp.id, sig), ts.Add(hp.window), "replay", "this signed request was received before: sign each attempt afresh, with a new timestamp"); e != nil {
			return nil, e
		}
		return a.partners[hp.id], nil
	}
	return nil, refuse(http.StatusUnauthorized, CodeUnauthenticated, "signature_mismatch", "the signature does not match the body under any partner's secret")
}

// once records key in the replay store until until, and refuses (401 with
// reason and message) when it was there already, or (503) when the store
// cannot say: a replay is never let through because the store failed.
func (a *Authenticator) once(ctx context.Context, key [32]byte, until time.Time, reason, message string) *Error {
	seen, err := a.replays.SeenBefore(ctx, key, a.cfg.Now(), until)
	if err != nil {
		a.log.Error("replay store unavailable: request refused", "error", err)
		e := refuse(http.StatusServiceUnavailable, CodeUnavailable, "replay_store", "the hub cannot check this request against replay just now: retry later, signed afresh")
		e.RetryAfter = 5 * time.Second
		return e
	}
	if seen {
		return refuse(http.StatusUnauthorized, CodeUnauthenticated, reason, message)
	}
	return nil
}

// readBody reads the body up to the limit and puts it back for the handler.
func (a *Authenticator) readBody(r *http.Request) ([]byte, *Error) {
	tooLarge := refuse(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "body_too_large", fmt.Sprintf("the request body is larger than the hub accepts (%d bytes)", a.cfg.MaxBodyBytes))
	if r.ContentLength > a.cfg.MaxBodyBytes {
		return nil, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, a.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, refuse(http.StatusBadRequest, CodeUnauthenticated, "body_unreadable", "the request body could not be read")
	}
	if int64(len(body)) > a.cfg.MaxBodyBytes {
		return nil, tooLarge
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return body, nil
}

// allows reports whether the partner's configured endpoints include r.
func (p *partner) allows(r *http.Request) bool {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	pth := strings.TrimRight(path.Clean("/"+r.URL.Path), "/")
	for _, e := range p.endpoints {
		m, pat, _ := strings.Cut(e, " ")
		if m != method {
			continue
		}
		pat = strings.TrimRight(pat, "/")
		if prefix, ok := strings.CutSuffix(pat, "*"); ok {
			if strings.HasPrefix(pth+"/", strings.TrimRight(prefix, "/")+"/") || pth == strings.TrimRight(prefix, "/") {
				return true
			}
			continue
		}
		if pth == pat {
			return true
		}
	}
	return false
}

// refuse counts, logs and writes a refusal.
func (a *Authenticator) refuse(w http.ResponseWriter, r *http.Request, partnerID string, e *Error, ew ErrorWriter) {
	outcome := OutcomeUnauthenticated
	switch e.Status {
	case http.StatusForbidden:
		outcome = OutcomeForbidden
	case http.StatusTooManyRequests:
		outcome = OutcomeRateLimited
	case http.StatusServiceUnavailable:
		outcome = OutcomeUnavailable
	}
	a.count(partnerID, outcome)
	a.log.Warn("inbound request refused", "partner", partnerID, "route", routeOf(r), "status", e.Status, "reason", e.reason)
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="iceshub", ICES-HMAC-SHA256 realm="iceshub"`)
	}
	setRetryAfter(w, e)
	if ew == nil {
		ew = JSONError
	}
	ew(w, r, e)
}

func (a *Authenticator) count(partner, outcome string) {
	if a.cfg.Counter != nil {
		a.cfg.Counter.Inc(partner, outcome)
	}
}

// routeOf names the request's route for logs: the mux pattern that matched,
// never the path as sent (which an attacker chooses).
func routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

// Partner returns the identity of a configured partner, for tests.
func (a *Authenticator) Partner(id string) (Partner, bool) {
	p, ok := a.partners[id]
	if !ok {
		return Partner{}, false
	}
	return p.ident, true
}

// Limits harden a JSON endpoint's input (Harden).
type Limits struct {
	// MaxBodyBytes bounds the body; zero means 1 MiB.
	MaxBodyBytes int64
	// ContentTypes are the media types accepted (parameters aside);
	// empty means application/json.
	ContentTypes []string
	// MaxJSONDepth and MaxJSONValues bound the JSON's shape
	// (internal/jsonlimit); zero means its defaults.
	MaxJSONDepth, MaxJSONValues int
}

// Harden returns a handler that refuses, for requests with a body (POST,
// PUT, PATCH), a Content-Type not in l.ContentTypes (415), a body over
// l.MaxBodyBytes (413) and JSON nested too deep (400) or too large (413),
// and otherwise calls next with the body read into memory. Place it inside
// Wrap: a.Wrap(sel, auth.Harden(l, h, ew), ew).
func Harden(l Limits, next http.Handler, ew ErrorWriter) http.Handler {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 1 << 20
	}
	if len(l.ContentTypes) == 0 {
		l.ContentTypes = []string{"application/json"}
	}
	if ew == nil {
		ew = JSONError
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
			next.ServeHTTP(w, r)
			return
		}
		if e := hardenBody(w, r, l); e != nil {
			setRetryAfter(w, e)
			ew(w, r, e)
			return
		}
		next.ServeHTTP(w, r)
	})
}
