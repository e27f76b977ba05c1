package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testNow = time.Date(2025, 6, 2, 9, 30, 0, 0, time.UTC)

// acceptor is the fake behind every endpoint: it records what reached it.
type acceptor struct {
	mu    sync.Mutex
	calls []Partner
	body  [][]byte
}

func (f *acceptor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, _ := PartnerFrom(r.Context())
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, p)
	f.body = append(f.body, b)
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (f *acceptor) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type fixture struct {
	a       *Authenticator
	counts  *Counts
	mux     *http.ServeMux
	fake    *acceptor
	logs    *bytes.Buffer
	secrets map[string][]byte
	ecKey   *ecdsa.PrivateKey
	rsaKey  *rsa.PrivateKey
	hsKey   []byte
	client  *x509.Certificate
	clock   *time.Time
}

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newFixture(t testing.TB, mutate func(*Config)) *fixture {
	t.Helper()
	f := &fixture{fake: &acceptor{}, counts: &Counts{}, logs: &bytes.Buffer{}, hsKey: secret(9)}
	now := testNow
	f.clock = &now
	var err error
	f.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f.client = selfSigned(t, "nhs-mtls")
	f.secrets = map[string][]byte{"provider": secret(1), "council-cwac": secret(2), "council-ceast": secret(3)}
	fhirEndpoints := []string{"POST /fhir", "POST /fhir/$process-message", "GET /fhir/metadata"}
	cfg := Config{
		Counter:      f.counts,
		Now:          func() time.Time { return *f.clock },
		MaxBodyBytes: 4096,
		Partners: []PartnerConfig{
			{ID: "provider", Kind: "provider", Mode: ModeHMAC, HMACSecret: f.secrets["provider"], Endpoints: []string{"POST /provider/events"}, Messages: []string{"order-status"}},
			{ID: "council-cwac", Kind: "council", Mode: ModeHMAC, HMACSecret: f.secrets["council-cwac"], Endpoints: []string{"POST /crm/{self}/events"}, Messages: []string{"complaint"}},
			{ID: "council-ceast", Kind: "council", Mode: ModeHMAC, HMACSecret: f.secrets["council-ceast"], Endpoints: []string{"POST /crm/{self}/events"}},
			{ID: "nhs-es", Kind: "nhs", Mode: ModeJWT, Endpoints: fhirEndpoints, JWT: JWTConfig{Issuer: "https://idp.example.nhs.uk", Audience: "https://iceshub.example.org", Algorithm: AlgES256, Keys: []any{&f.ecKey.PublicKey}}},
			{ID: "nhs-rs", Kind: "nhs", Mode: ModeJWT, Endpoints: fhirEndpoints, JWT: JWTConfig{Issuer: "https://rs.example.nhs.uk", Audience: "https://iceshub.example.org", Algorithm: AlgRS256, Keys: []any{&f.rsaKey.PublicKey}}},
			{ID: "nhs-hs", Kind: "nhs", Mode: ModeJWT, Endpoints: fhirEndpoints, JWT: JWTConfig{Issuer: "https://hs.example.nhs.uk", Audience: "https://iceshub.example.org", Algorithm: AlgHS256, Keys: []any{f.hsKey}}},
			{ID: "nhs-mtls", Kind: "nhs", Mode: ModeMTLS, Endpoints: fhirEndpoints, MTLS: MTLSConfig{SPKISHA256: [][32]byte{SPKIFingerprint(f.client)}}},
			{ID: "nhs-quiet", Kind: "nhs"}, // no inbound credentials: may never call
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(f.logs, nil))
	f.a, err = New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	json := Harden(Limits{MaxBodyBytes: 2048}, f.fake, JSONError)
	f.mux = http.NewServeMux()
	f.mux.Handle("POST /provider/events", f.a.Wrap(OfKind("provider"), json, JSONError))
	f.mux.Handle("POST /crm/{council}/events", f.a.Wrap(All(OfKind("council"), PathPartner("council")), json, JSONError))
	f.mux.Handle("/fhir/", f.a.Wrap(OfKind("nhs"), f.fake, JSONError))
	f.mux.Handle("/fhir", f.a.Wrap(OfKind("nhs"), f.fake, JSONError))
	return f
}

func selfSigned(t testing.TB, cn string) *x509.Certificate {
	t.Helper()
	c, _ := selfSignedPair(t, cn)
	return c
}

func selfSignedPair(t testing.TB, cn string) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: testNow.Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: c}
}

const event = `{"event":"order-status","timestamp":"2025-06-02T09:29:00Z","data":{"orderReference":"ORD-1","status":"delivered"}}`

func (f *fixture) signed(t *testing.T, partner, path, body string, at time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	ts, sig := Sign(f.secrets[partner], at, []byte(body))
	r.Header.Set(HeaderTimestamp, ts)
	r.Header.Set(HeaderSignature, sig)
	return r
}

func (f *fixture) token(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodClaims(iss string) jwt.MapClaims {
	return jwt.MapClaims{"iss": iss, "aud": "https://iceshub.example.org", "sub": "ods:RBT", "iat": testNow.Unix(), "nbf": testNow.Unix(), "exp": testNow.Add(5 * time.Minute).Unix()}
}

func (f *fixture) bearer(path, tok string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/fhir+json")
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

type answer struct {
	status int
	code   string
	header http.Header
}

func (f *fixture) do(r *http.Request) answer {
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	var body struct{ Code string }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return answer{w.Code, body.Code, w.Header()}
}

func TestAcceptsEachModeAndPutsThePartnerInContext(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name string
		req  *http.Request
		want string
	}{
		{"hmac provider", f.signed(t, "provider", "/provider/events", event, testNow), "provider"},
		{"hmac council own path", f.signed(t, "council-cwac", "/crm/council-cwac/events", event, testNow), "council-cwac"},
		{"jwt ES256", f.bearer("/fhir/$process-message", f.token(t, jwt.SigningMethodES256, f.ecKey, goodClaims("https://idp.example.nhs.uk"))), "nhs-es"},
		{"jwt RS256", f.bearer("/fhir", f.token(t, jwt.SigningMethodRS256, f.rsaKey, goodClaims("https://rs.example.nhs.uk"))), "nhs-rs"},
		{"jwt HS256", f.bearer("/fhir", f.token(t, jwt.SigningMethodHS256, f.hsKey, goodClaims("https://hs.example.nhs.uk"))), "nhs-hs"},
		{"jwt within skew after exp", func() *http.Request {
			c := goodClaims("https://idp.example.nhs.uk")
			c["exp"] = testNow.Add(-10 * time.Second).Unix()
			return f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, c))
		}(), "nhs-es"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := f.fake.count()
			if got := f.do(c.req); got.status != http.StatusAccepted {
				t.Fatalf("status %d (%s), want 202", got.status, got.code)
			}
			if f.fake.count() != before+1 || f.fake.calls[before].ID != c.want {
				t.Fatalf("handler saw %+v, want partner %s", f.fake.calls[before:], c.want)
			}
		})
	}
	if string(f.fake.body[0]) != event {
		t.Fatalf("the handler got body %q, want the signed body unchanged", f.fake.body[0])
	}
	if f.counts.Get("provider", OutcomeAccepted) != 1 {
		t.Fatalf("counts %s", f.counts)
	}
	if !f.fake.calls[0].MaySend("order-status") || f.fake.calls[0].MaySend("complaint") {
		t.Fatal("MaySend does not follow the partner's messages")
	}
}

// TestRefusals is every way in that must fail: each refused with its status
// and nothing reaching the handler.
//
// Longer than 100 lines: a table of every refusal, one line each: splitting the table would hide
// which cases exist.
func TestRefusals(t *testing.T) {
	f := newFixture(t, nil)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&f.rsaKey.PublicKey))})
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := goodClaims("https://idp.example.nhs.uk")
		edit(c)
		return c
	}
	replayed := f.signed(t, "provider", "/provider/events", event, testNow)
	if got := f.do(replayed); got.status != http.StatusAccepted {
		t.Fatalf("first send of the webhook: %d", got.status)
	}
	accepted := f.fake.count()

	tooBig := `{"data":"` + strings.Repeat("x", 3000) + `"}`
	bomb := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	cases := []struct {
		name   string
		req    *http.Request
		status int
		reason string
	}{
		{"no credentials", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/provider/events", strings.NewReader(event))
			r.Header.Set("Content-Type", "application/json")
			return r
		}(), 401, "no_credentials"},
		{"no credentials at fhir", httptest.NewRequest(http.MethodPost, "/fhir", strings.NewReader(`{}`)), 401, "no_credentials"},
		{"wrong webhook secret", func() *http.Request {
			r := f.signed(t, "provider", "/provider/events", event, testNow)
			_, sig := Sign(secret(7), testNow, []byte(event))
			r.Header.Set(HeaderSignature, sig)
			return r
		}(), 401, "signature_mismatch"},
		{"bad signature: body changed after signing", func() *http.Request {
			r := f.signed(t, "provider", "/provider/events", event, testNow.Add(time.Second))
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(event, "delivered", "collected", 1)))
			return r
		}(), 401, "signature_mismatch"},
		{"malformed signature header", func() *http.Request {
			r := f.signed(t, "provider", "/provider/events", event, testNow)
			r.Header.Set(HeaderSignature, "sha256=abc")
			return r
		}(), 401, "signature_header"},
		{"stale timestamp", f.signed(t, "provider", "/provider/events", event, testNow.Add(-6*time.Minute)), 401, "timestamp_stale"},
		{"timestamp from the future", f.signed(t, "provider", "/provider/events", event, testNow.Add(6*time.Minute)), 401, "timestamp_stale"},
		{"replayed webhook", f.signed(t, "provider", "/provider/events", event, testNow), 401, "replay"},
		{"wrong bearer key", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, otherEC, goodClaims("https://idp.example.nhs.uk"))), 401, "token_signature"},
		{"expired token", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, claims(func(c jwt.MapClaims) { c["exp"] = testNow.Add(-time.Minute).Unix() }))), 401, "token_expired"},
		{"token without iat", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, claims(func(c jwt.MapClaims) { delete(c, "iat") }))), 401, "token_claim_missing"},
		{"a 10-year token", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, claims(func(c jwt.MapClaims) { c["exp"] = testNow.AddDate(10, 0, 0).Unix() }))), 401, "token_lifetime"},
		{"a 10-year token issued in the future", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, claims(func(c jwt.MapClaims) {
			c["exp"] = testNow.AddDate(10, 0, 0).Unix()
			c["iat"] = testNow.AddDate(10, 0, 0).Add(-time.Minute).Unix()
		}))), 401, "token_not_yet_valid"},
		{"token without expiry", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, claims(func(c jwt.MapClaims) { delete(c, "exp") }))), 401, "token_claim_missing"},
		{"token not yet valid", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, claims(func(c jwt.MapClaims) { c["nbf"] = testNow.Add(time.Hour).Unix() }))), 401, "token_not_yet_valid"},
		{"wrong audience", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, claims(func(c jwt.MapClaims) { c["aud"] = "https://elsewhere.example.org" }))), 401, "token_audience"},
		{"wrong issuer", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example.org" }))), 401, "token_issuer"},
		{"alg none", f.bearer("/fhir", f.token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims("https://idp.example.nhs.uk"))), 401, "authorization_header"},
		{"alg none with a made-up signature", f.bearer("/fhir", f.token(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, goodClaims("https://idp.example.nhs.uk"))+"AAAA"), 401, "token_signature"},
		{"algorithm confusion: HS256 keyed with the RSA public key", f.bearer("/fhir", f.token(t, jwt.SigningMethodHS256, rsaPEM, goodClaims("https://rs.example.nhs.uk"))), 401, "token_signature"},
		{"ES256 token for the RS256 partner", f.bearer("/fhir", f.token(t, jwt.SigningMethodES256, f.ecKey, goodClaims("https://rs.example.nhs.uk"))), 401, "token_signature"},
		{"not a bearer header", func() *http.Request {
			r := f.bearer("/fhir", "x")
			r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
			return r
		}(), 401, "authorization_header"},
		{"unknown client certificate", func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/fhir", strings.NewReader(`{}`))
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{selfSigned(t, "stranger")}}
			return r
		}(), 401, "certificate_unknown"},
		{"provider calling the FHIR edge", func() *http.Request {
			r := f.signed(t, "provider", "/fhir/$process-message", event, testNow.Add(2*time.Second))
			return r
		}(), 403, "endpoint"},
		{"NHS partner calling the provider's webhook", f.bearer("/provider/events", f.token(t, jwt.SigningMethodES256, f.ecKey, goodClaims("https://idp.example.nhs.uk"))), 403, "endpoint"},
		{"council posting for another council", f.signed(t, "council-ceast", "/crm/council-cwac/events", event, testNow), 403, "endpoint"},
		{"body over the limit of the signature check", f.signed(t, "provider", "/provider/events", strings.Repeat(" ", 5000), testNow), 413, "body_too_large"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.logs.Reset()
			got := f.do(c.req)
			if got.status != c.status {
				t.Fatalf("status %d (%s), want %d", got.status, got.code, c.status)
			}
			if f.fake.count() != accepted {
				t.Fatal("the handler was called for a refused request")
			}
			if !strings.Contains(f.logs.String(), "reason="+c.reason) {
				t.Fatalf("log %q lacks reason=%s", f.logs.String(), c.reason)
			}
			if c.status == 401 && got.header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	// Hardened input, behind a valid signature.
	for _, c := range []struct {
		name   string
		body   string
		ct     string
		status int
	}{
		{"body over the endpoint's limit", tooBig, "application/json", 413},
		{"deeply nested JSON bomb", bomb, "application/json", 400},
		{"wrong content type", event, "text/plain", 415},
		{"no content type", event, "", 415},
	} {
		t.Run(c.name, func(t *testing.T) {
			*f.clock = f.clock.Add(time.Second) // a fresh signature each time
			r := f.signed(t, "provider", "/provider/events", c.body, *f.clock)
			r.Header.Set("Content-Type", c.ct)
			if got := f.do(r); got.status != c.status {
				t.Fatalf("status %d (%s), want %d", got.status, got.code, c.status)
			}
			if f.fake.count() != accepted {
				t.Fatal("the handler was called for a refused request")
			}
		})
	}
	if n := f.counts.Get(UnknownPartner, OutcomeUnauthenticated); n < 10 {
		t.Fatalf("unauthenticated count %d", n)
	}
	if f.counts.Get("council-ceast", OutcomeForbidden) != 1 {
		t.Fatalf("forbidden not counted per partner: %s", f.counts)
	}
	// Nothing secret in the logs.
	for _, s := range []string{string(f.secrets["provider"]), "Bearer ", "v1="} {
		if strings.Contains(f.logs.String(), s) {
			t.Fatalf("log holds %q", s)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestPartnerWithoutCredentialsAndInsecureDevMode(t *testing.T) {
	f := newFixture(t, nil)
	if _, ok := f.a.Partner("nhs-quiet"); !ok {
		t.Fatal("nhs-quiet not configured")
	}
	r := httptest.NewRequest(http.MethodPost, "/fhir", strings.NewReader(`{}`))
	if got := f.do(r); got.status != 401 {
		t.Fatalf("secure by default: %d", got.status)
	}

	dev := newFixture(t, func(c *Config) { c.InsecureDev = true })
	if !strings.Contains(dev.logs.String(), "INSECURE DEVELOPMENT MODE") {
		t.Fatal("no warning at start in insecure dev mode")
	}
	dev.logs.Reset()
	if got := dev.do(httptest.NewRequest(http.MethodPost, "/fhir", strings.NewReader(`{}`))); got.status != http.StatusAccepted {
		t.Fatalf("insecure dev without credentials: %d", got.status)
	}
	if p := dev.fake.calls[0]; p.ID != InsecureDevID || !p.Insecure || !p.MaySend("referral") {
		t.Fatalf("insecure dev identity %+v", p)
	}
	if !strings.Contains(dev.logs.String(), "INSECURE DEVELOPMENT MODE: request accepted") {
		t.Fatal("no warning on the request in insecure dev mode")
	}
	// Credentials that are sent are still checked.
	bad := dev.signed(t, "provider", "/provider/events", event, testNow.Add(-time.Hour))
	if got := dev.do(bad); got.status != 401 {
		t.Fatalf("insecure dev with a stale signature: %d", got.status)
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Partners[0].RatePerSecond = 0.5
		c.Partners[0].Burst = 2
	})
	for i := range 2 {
		if got := f.do(f.signed(t, "provider", "/provider/events", fmt.Sprintf(`{"n":%d}`, i), *f.clock)); got.status != 202 {
			t.Fatalf("request %d: %d", i, got.status)
		}
		*f.clock = f.clock.Add(time.Millisecond)
	}
	got := f.do(f.signed(t, "provider", "/provider/events", `{"n":3}`, *f.clock))
	if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") == "" || got.code != CodeRateLimited {
		t.Fatalf("third request: %d %q %s", got.status, got.header.Get("Retry-After"), got.code)
	}
	if f.counts.Get("provider", OutcomeRateLimited) != 1 {
		t.Fatalf("rate limit not counted: %s", f.counts)
	}
	// Another partner is not slowed down by the provider.
	if got := f.do(f.signed(t, "council-cwac", "/crm/council-cwac/events", event, *f.clock)); got.status != 202 {
		t.Fatalf("council after provider's limit: %d", got.status)
	}
}

// TestMutualTLSOverARealHandshake pins a client certificate by its public
// key and serves over TLS asking for client certificates.
func TestMutualTLSOverARealHandshake(t *testing.T) {
	cert, pair := selfSignedPair(t, "nhs-mtls")
	_, stranger := selfSignedPair(t, "stranger")
	f := newFixture(t, func(c *Config) {
		c.Now = time.Now
		for i := range c.Partners {
			if c.Partners[i].ID == "nhs-mtls" {
				c.Partners[i].MTLS = MTLSConfig{CertSHA256: [][32]byte{CertFingerprint(cert)}}
			}
		}
	})
	srv := httptest.NewUnstartedServer(f.mux)
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()
	post := func(c *tls.Certificate) int {
		cl := srv.Client()
		tr := cl.Transport.(*http.Transport).Clone()
		if c != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*c}
		}
		cl.Transport = tr
		resp, err := cl.Post(srv.URL+"/fhir", "application/fhir+json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(&pair); got != 202 {
		t.Fatalf("pinned certificate: %d", got)
	}
	if got := post(&stranger); got != 401 {
		t.Fatalf("unknown certificate: %d", got)
	}
	if got := post(nil); got != 401 {
		t.Fatalf("no certificate: %d", got)
	}
	if f.fake.count() != 1 || f.fake.calls[0].ID != "nhs-mtls" || f.fake.calls[0].Mode != ModeMTLS {
		t.Fatalf("handler saw %+v", f.fake.calls)
	}
}

func TestNewRefusesUnenforceableConfiguration(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, pc := range map[string]PartnerConfig{
		"hmac without secret":   {ID: "p", Mode: ModeHMAC},
		"short hmac secret":     {ID: "p", Mode: ModeHMAC, HMACSecret: []byte("short")},
		"jwt without key":       {ID: "p", Mode: ModeJWT, JWT: JWTConfig{Issuer: "i", Audience: "a", Algorithm: AlgES256}},
		"jwt alg none":          {ID: "p", Mode: ModeJWT, JWT: JWTConfig{Issuer: "i", Audience: "a", Algorithm: "none", Keys: []any{secret(1)}}},
		"rsa key too small":     {ID: "p", Mode: ModeJWT, JWT: JWTConfig{Issuer: "i", Audience: "a", Algorithm: AlgRS256, Keys: []any{&rsaSmall.PublicKey}}},
		"HS256 with an RSA key": {ID: "p", Mode: ModeJWT, JWT: JWTConfig{Issuer: "i", Audience: "a", Algorithm: AlgHS256, Keys: []any{&rsaSmall.PublicKey}}},
		"mtls without pins":     {ID: "p", Mode: ModeMTLS},
		"unknown mode":          {ID: "p", Mode: "basic"},
		"bad endpoint":          {ID: "p", Endpoints: []string{"/fhir"}},
	} {
		if _, err := New(Config{Partners: []PartnerConfig{pc}}, logger); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	shared := []PartnerConfig{{ID: "a", Mode: ModeHMAC, HMACSecret: secret(1)}, {ID: "b", Mode: ModeHMAC, HMACSecret: secret(1)}}
	if _, err := New(Config{Partners: shared}, logger); err == nil {
		t.Error("a shared webhook secret was accepted")
	}
}

func TestReplayCacheIsBounded(t *testing.T) {
	c := newReplayCache(3)
	for i := range 5 {
		if !c.add([32]byte{byte(i)}, testNow.Add(time.Minute), testNow) {
			t.Fatalf("entry %d not new", i)
		}
	}
	if c.len() != 3 {
		t.Fatalf("cache holds %d, want 3", c.len())
	}
	if c.add([32]byte{4}, testNow.Add(time.Minute), testNow) {
		t.Fatal("a recent entry was forgotten")
	}
	// Expired entries go first.
	if !c.add([32]byte{9}, testNow.Add(3*time.Minute), testNow.Add(2*time.Minute)) || c.len() != 1 {
		t.Fatalf("expired entries kept: %d", c.len())
	}
}

// A token verified once is remembered for its next uses, but never past its
// expiry: the clock moving beyond exp and the skew refuses it again.
func TestRememberedTokenIsRefusedOnceExpired(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t, jwt.SigningMethodES256, f.ecKey, goodClaims("https://idp.example.nhs.uk"))
	for i := range 3 {
		if got := f.do(f.bearer("/fhir", tok)); got.status != http.StatusAccepted {
			t.Fatalf("use %d of a valid token: %d (%s)", i+1, got.status, got.code)
		}
	}
	*f.clock = testNow.Add(5*time.Minute + DefaultSkew + time.Second)
	if got := f.do(f.bearer("/fhir", tok)); got.status != http.StatusUnauthorized || f.fake.count() != 3 {
		t.Fatalf("the remembered token after its expiry: %d, handler calls %d; want 401 and still 3", got.status, f.fake.count())
	}
	// A token that differs in its signature is not the one remembered.
	last := "A"
	if tok[len(tok)-3:len(tok)-2] == "A" {
		last = "B"
	}
	forged := tok[:len(tok)-3] + last + tok[len(tok)-2:]
	*f.clock = testNow
	if got := f.do(f.bearer("/fhir", forged)); got.status != http.StatusUnauthorized || f.fake.count() != 3 {
		t.Fatalf("a token altered after the remembered one was accepted: %d", got.status)
	}
}

// TestForbidCountsTheRequestOnceAsForbidden: a handler behind Wrap that
// refuses an authenticated partner (a kind it may not send, a referral not
// its own) has the request counted once, as forbidden for that partner,
// not as accepted, and the reason logged.
func TestForbidCountsTheRequestOnceAsForbidden(t *testing.T) {
	f := newFixture(t, nil)
	refusing := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Forbid(r.Context(), "message_kind")
		JSONError(w, r, refuse(http.StatusForbidden, CodeForbidden, "message_kind", "no"))
	})
	mux := http.NewServeMux()
	mux.Handle("POST /provider/events", f.a.Wrap(OfKind("provider"), refusing, JSONError))
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, f.signed(t, "provider", "/provider/events", event, testNow))
	if w.Code != http.StatusForbidden {
		t.Fatalf("status %d", w.Code)
	}
	if got := f.counts.Snapshot(); got["provider/forbidden"] != 1 || got["provider/accepted"] != 0 {
		t.Errorf("counts %v, want provider/forbidden 1 and no accepted", got)
	}
	if !strings.Contains(f.logs.String(), "reason=message_kind") || !strings.Contains(f.logs.String(), "partner=provider") {
		t.Errorf("refusal not logged with its partner and reason:\n%s", f.logs)
	}
	// Outside Wrap, Forbid does nothing (and does not panic).
	Forbid(httptest.NewRequest(http.MethodGet, "/", nil).Context(), "x")
}

// A token may live at most the partner's max lifetime (exp minus iat), one
// hour unless configured; exactly that long is accepted, a second more is
// not, and a shorter max lifetime is enforced as configured.
func TestTokenLifetimeIsBounded(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		for i := range c.Partners {
			if c.Partners[i].ID == "nhs-rs" {
				c.Partners[i].JWT.MaxLifetime = 10 * time.Minute
			}
		}
	})
	lived := func(iss string, key any, method jwt.SigningMethod, d time.Duration) answer {
		c := goodClaims(iss)
		c["exp"] = testNow.Add(d).Unix()
		return f.do(f.bearer("/fhir", f.token(t, method, key, c)))
	}
	for _, c := range []struct {
		name   string
		iss    string
		key    any
		method jwt.SigningMethod
		life   time.Duration
		status int
	}{
		{"default: one hour", "https://idp.example.nhs.uk", f.ecKey, jwt.SigningMethodES256, time.Hour, 202},
		{"default: one hour and a second", "https://idp.example.nhs.uk", f.ecKey, jwt.SigningMethodES256, time.Hour + time.Second, 401},
		{"default: ten years", "https://idp.example.nhs.uk", f.ecKey, jwt.SigningMethodES256, 10 * 365 * 24 * time.Hour, 401},
		{"configured 10m: 10m", "https://rs.example.nhs.uk", f.rsaKey, jwt.SigningMethodRS256, 10 * time.Minute, 202},
		{"configured 10m: 11m", "https://rs.example.nhs.uk", f.rsaKey, jwt.SigningMethodRS256, 11 * time.Minute, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := lived(c.iss, c.key, c.method, c.life); got.status != c.status {
				t.Fatalf("status %d (%s), want %d", got.status, got.code, c.status)
			}
		})
	}
}

// memoryStore is a ReplayStore kept apart from any Authenticator, as the
// hub's store is: it outlives a restart.
type memoryStore struct {
	mu   sync.Mutex
	seen map[[32]byte]time.Time
	fail error
}

func (m *memoryStore) SeenBefore(_ context.Context, key [32]byte, now, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	if m.seen == nil {
		m.seen = map[[32]byte]time.Time{}
	}
	if u, ok := m.seen[key]; ok && u.After(now) {
		return true, nil
	}
	m.seen[key] = until
	return false, nil
}

// A replay store kept outside the Authenticator refuses a replay after a
// restart; when the store fails, the request is refused with 503, never
// accepted unchecked.
func TestReplayStoreOutlivesARestartAndFailsClosed(t *testing.T) {
	st := &memoryStore{}
	first := newFixture(t, func(c *Config) { c.Replays = st })
	req := func(f *fixture) *http.Request { return f.signed(t, "provider", "/provider/events", event, testNow) }
	if got := first.do(req(first)); got.status != http.StatusAccepted {
		t.Fatalf("first send: %d", got.status)
	}
	restarted := newFixture(t, func(c *Config) {
		c.Replays = st
		c.Partners[0].HMACSecret = first.secrets["provider"]
	})
	if got := restarted.do(req(first)); got.status != http.StatusUnauthorized || restarted.fake.count() != 0 {
		t.Fatalf("replay after a restart: %d, handler calls %d", got.status, restarted.fake.count())
	}
	if !strings.Contains(restarted.logs.String(), "reason=replay") {
		t.Fatalf("log %q lacks reason=replay", restarted.logs.String())
	}

	st.fail = errors.New("disk full")
	fresh := restarted.signed(t, "provider", "/provider/events", event, testNow.Add(time.Second))
	got := restarted.do(fresh)
	if got.status != http.StatusServiceUnavailable || got.code != CodeUnavailable || got.header.Get("Retry-After") == "" || restarted.fake.count() != 0 {
		t.Fatalf("store failing: %d %s Retry-After %q, handler calls %d; want 503 unavailable", got.status, got.code, got.header.Get("Retry-After"), restarted.fake.count())
	}
	if restarted.counts.Get(UnknownPartner, OutcomeUnavailable) != 1 {
		t.Fatalf("counts %s", restarted.counts)
	}
}

// A single-use partner's token needs a jti and is accepted once, even after
// a restart; a partner that is not single-use reuses its token.
func TestSingleUseTokens(t *testing.T) {
	st := &memoryStore{}
	singleUse := func(c *Config) {
		c.Replays = st
		for i := range c.Partners {
			if c.Partners[i].ID == "nhs-hs" {
				c.Partners[i].JWT.SingleUse = true
			}
		}
	}
	f := newFixture(t, singleUse)
	withJTI := func(jti string) string {
		c := goodClaims("https://hs.example.nhs.uk")
		if jti != "" {
			c["jti"] = jti
		}
		return f.token(t, jwt.SigningMethodHS256, f.hsKey, c)
	}
	tok := withJTI("a1")
	if got := f.do(f.bearer("/fhir", tok)); got.status != http.StatusAccepted {
		t.Fatalf("first use: %d (%s)", got.status, got.code)
	}
	for name, tk := range map[string]string{"same token again": tok, "another token, same jti": withJTI("a1"), "no jti": withJTI("")} {
		f.logs.Reset()
		if got := f.do(f.bearer("/fhir", tk)); got.status != http.StatusUnauthorized {
			t.Fatalf("%s: %d, want 401", name, got.status)
		}
		if want := map[bool]string{true: "reason=token_claim_missing", false: "reason=token_replay"}[name == "no jti"]; !strings.Contains(f.logs.String(), want) {
			t.Fatalf("%s: log %q lacks %s", name, f.logs.String(), want)
		}
	}
	if got := f.do(f.bearer("/fhir", withJTI("a2"))); got.status != http.StatusAccepted {
		t.Fatalf("a new jti: %d", got.status)
	}
	restarted := newFixture(t, singleUse)
	restarted.hsKey = f.hsKey
	if got := restarted.do(restarted.bearer("/fhir", tok)); got.status != http.StatusUnauthorized {
		t.Fatalf("single-use token after a restart: %d", got.status)
	}
	// Not single-use: the same token serves many requests.
	es := f.token(t, jwt.SigningMethodES256, f.ecKey, goodClaims("https://idp.example.nhs.uk"))
	for i := range 2 {
		if got := f.do(f.bearer("/fhir", es)); got.status != http.StatusAccepted {
			t.Fatalf("reusable token, use %d: %d", i+1, got.status)
		}
	}
}

// The Bearer scheme is matched in any case (RFC 7235); other schemes and
// empty credentials are not bearer credentials.
func TestBearerCredentials(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer abc": "abc", "BEARER  abc ": "abc", "Bearer": "", "Bearer   ": "", "Basic abc": "", "Bearerabc": ""} {
		got, ok := BearerCredentials(h)
		if got != want || ok != (want != "") {
			t.Errorf("BearerCredentials(%q) = %q, %v; want %q", h, got, ok, want)
		}
	}
}

// Counts is an in-memory Counter for the tests, by "partner/outcome".
type Counts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *Counts) Inc(partner, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[partner+"/"+outcome]++
}

func (c *Counts) Get(partner, outcome string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[partner+"/"+outcome]
}

func (c *Counts) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

func (c *Counts) String() string { return fmt.Sprint(c.Snapshot()) }
