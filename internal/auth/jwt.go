package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Bearer tokens (NHS partners). Only RS256 and ES256 with public keys from
// PEM files, or HS256 with a secret, are accepted, and each partner has
// exactly one algorithm: a token whose header names another (none, HS256
// against an RSA key: "algorithm confusion") is refused before any key is
// used. The token must name the configured issuer and audience and carry an
// expiry and an issue time (iat); exp, nbf and iat are checked with the
// configured clock skew. A token may live at most the partner's
// MaxLifetime (exp minus iat); since iat may not be later than now (plus the
// skew), its exp is never further ahead than that either. A partner may
// also be single-use: each token carries a jti, accepted once until the
// token expires (in the Authenticator's ReplayStore, so after a restart
// too).

// JWT algorithms a partner may be configured with.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgHS256 = "HS256"
)

// DefaultSkew is the clock skew allowed on exp, nbf and iat.
const DefaultSkew = 30 * time.Second

// DefaultMaxLifetime is how long a token may live (exp minus iat) when the
// partner's MaxLifetime is zero.
const DefaultMaxLifetime = time.Hour

// maxTokenBytes bounds a bearer token; a real one is well under 4 KiB.
const maxTokenBytes = 8 << 10

// ErrBadAuthorization is returned by ParseBearer for an Authorization header
// that is not "Bearer <JWT>".
var ErrBadAuthorization = errors.New(`the Authorization header must be "Bearer <JWT>"`)

// BearerCredentials returns the credentials of an Authorization header
// "Bearer <credentials>": the scheme is matched in any case (RFC 7235,
// section 2.1: auth-scheme is case-insensitive), and spaces around the
// credentials are dropped. It reports false for any other scheme and for
// empty credentials. The admin API uses it as well as ParseBearer.
func BearerCredentials(h string) (string, bool) {
	scheme, cred, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	cred = strings.TrimSpace(cred)
	return cred, cred != ""
}

// ParseBearer returns the token of an Authorization header "Bearer <JWT>"
// (the scheme in any case): three dot-separated base64url parts of at most
// 8 KiB in all.
func ParseBearer(h string) (string, error) {
	tok, ok := BearerCredentials(h)
	if !ok || len(tok) > maxTokenBytes || strings.Count(tok, ".") != 2 {
		return "", ErrBadAuthorization
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", ErrBadAuthorization
		}
	}
	for _, part := range strings.Split(tok, ".") {
		if part == "" {
			return "", ErrBadAuthorization
		}
	}
	return tok, nil
}

// JWTConfig is how one partner's tokens are checked.
type JWTConfig struct {
	Issuer   string
	Audience string
	// Subject, when not empty, must be the token's sub; it tells apart
	// partners whose tokens come from one issuer.
	Subject string
	// Algorithm is AlgRS256, AlgES256 or AlgHS256.
	Algorithm string
	// Keys are the public keys (*rsa.PublicKey for RS256, *ecdsa.PublicKey
	// on P-256 for ES256; several while the partner changes keys) or, for
	// HS256, one []byte secret of at least 32 bytes.
	Keys []any
	// Skew is the clock skew allowed; zero means DefaultSkew.
	Skew time.Duration
	// MaxLifetime is the longest a token may live, exp minus iat; zero
	// means DefaultMaxLifetime.
	MaxLifetime time.Duration
	// SingleUse requires a jti in every token and accepts each jti once
	// until the token's expiry (plus the skew): a replayed token is
	// refused, and the partner gets a new token for each request.
	SingleUse bool
}

func (c JWTConfig) check() error {
	if c.Issuer == "" || c.Audience == "" {
		return errors.New("jwt needs an issuer and an audience")
	}
	if len(c.Keys) == 0 {
		return errors.New("jwt needs a key")
	}
	for _, k := range c.Keys {
		switch c.Algorithm {
		case AlgRS256:
			rk, ok := k.(*rsa.PublicKey)
			if !ok {
				return fmt.Errorf("RS256 needs RSA public keys, got %T", k)
			}
			if rk.N.BitLen() < 2048 {
				return errors.New("RS256 keys must be at least 2048 bits")
			}
		case AlgES256:
			ek, ok := k.(*ecdsa.PublicKey)
			if !ok || ek.Curve != elliptic.P256() {
				return errors.New("ES256 needs ECDSA P-256 public keys")
			}
		case AlgHS256:
			b, ok := k.([]byte)
			if !ok || len(b) < 32 {
				return errors.New("HS256 needs a secret of at least 32 bytes")
			}
		default:
			return fmt.Errorf("jwt algorithm %q is not one of RS256, ES256, HS256", c.Algorithm)
		}
	}
	if c.Skew < 0 {
		return errors.New("jwt skew must not be negative")
	}
	if c.MaxLifetime < 0 {
		return errors.New("jwt max lifetime must not be negative")
	}
	return nil
}

// jwtPartner is a partner that sends bearer tokens.
type jwtPartner struct {
	id     string
	cfg    JWTConfig
	parser *jwt.Parser
	keys   jwt.VerificationKeySet
	now    func() time.Time

	// verified remembers tokens that passed every check, by their SHA-256,
	// until they expire: a sender reuses its token for many requests, and
	// an ES256 or RS256 signature check costs more than the rest of
	// authentication together. Only the expiry can change a verified
	// token's outcome (issuer, audience, subject and signature are fixed
	// by its bytes, and nbf and iat had passed), so a remembered token is
	// refused again from its exp on, without the skew allowance.
	mu       sync.Mutex
	verified map[[sha256.Size]byte]time.Time
}

// maxVerified bounds the tokens a partner's cache remembers; when full it
// is emptied (a partner normally has one or two live tokens).
const maxVerified = 1024

func newJWTPartner(id string, c JWTConfig, now func() time.Time) (*jwtPartner, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.Skew == 0 {
		c.Skew = DefaultSkew
	}
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if now == nil {
		now = time.Now
	}
	opts := []jwt.ParserOption{
		// One algorithm per partner: refuses "none" and algorithm confusion.
		jwt.WithValidMethods([]string{c.Algorithm}),
		jwt.WithIssuer(c.Issuer),
		jwt.WithAudience(c.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(c.Skew),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	}
	if c.Subject != "" {
		opts = append(opts, jwt.WithSubject(c.Subject))
	}
	p := &jwtPartner{id: id, cfg: c, parser: jwt.NewParser(opts...), now: now, verified: map[[sha256.Size]byte]time.Time{}}
	for _, k := range c.Keys {
		p.keys.Keys = append(p.keys.Keys, k)
	}
	return p, nil
}

// verified is a token that passed every check of its partner.
type verified struct {
	// jti is the token's id (empty when it has none); until is when a
	// single-use partner's jti may be forgotten: the token's expiry plus
	// the skew, after which the token is refused anyway.
	jti   string
	until time.Time
}

// verify checks tok and returns a reason code when it is refused. It does
// not consult the replay store: a single-use partner's caller does, with
// the jti returned.
func (p *jwtPartner) verify(tok string) (v verified, reason string, ok bool) {
	sum := sha256.Sum256([]byte(tok))
	if !p.cfg.SingleUse {
		// A single-use token is used once: remembering it saves nothing.
		p.mu.Lock()
		exp, seen := p.verified[sum]
		p.mu.Unlock()
		if seen && p.now().Before(exp) {
			return verified{}, "", true
		}
	}
	claims := &jwt.RegisteredClaims{}
	_, err := p.parser.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods has checked the algorithm already; check the
		// key family again so that a key can never serve another algorithm.
		if t.Method.Alg() != p.cfg.Algorithm {
			return nil, errors.New("unexpected algorithm")
		}
		return p.keys, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return verified{}, "token_expired", false
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return verified{}, "token_not_yet_valid", false
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return verified{}, "token_audience", false
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return verified{}, "token_issuer", false
	case errors.Is(err, jwt.ErrTokenInvalidSubject):
		return verified{}, "token_subject", false
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return verified{}, "token_claim_missing", false
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return verified{}, "token_signature", false
	default:
		return verified{}, "token_invalid", false
	}
	// The parser requires exp and checks iat when there is one; iat is
	// required here, and bounds the token's life. With iat at most now plus
	// the skew (checked above), exp is at most MaxLifetime (plus the skew)
	// ahead of now as well.
	if claims.IssuedAt == nil || (p.cfg.SingleUse && claims.ID == "") {
		return verified{}, "token_claim_missing", false
	}
	if claims.ExpiresAt.Sub(claims.IssuedAt.Time) > p.cfg.MaxLifetime {
		return verified{}, "token_lifetime", false
	}
	if !p.cfg.SingleUse {
		p.mu.Lock()
		if len(p.verified) >= maxVerified {
			clear(p.verified)
		}
		p.verified[sum] = claims.ExpiresAt.Time
		p.mu.Unlock()
	}
	return verified{jti: claims.ID, until: claims.ExpiresAt.Add(p.cfg.Skew)}, "", true
}

// tokenMessages are what the caller is told, by reason.
var tokenMessages = map[string]string{
	"token_expired":       "the bearer token has expired",
	"token_not_yet_valid": "the bearer token is not valid yet (nbf or iat in the future)",
	"token_audience":      "the bearer token is not for this hub (audience)",
	"token_issuer":        "the bearer token's issuer is not one this hub trusts",
	"token_subject":       "the bearer token's subject is not the partner's",
	"token_claim_missing": "the bearer token lacks a required claim (exp, iat; jti where each token is single-use)",
	"token_lifetime":      "the bearer token lives longer than this hub accepts (exp minus iat over the partner's max_lifetime): ask for a shorter-lived token",
	"token_replay":        "this bearer token (its jti) was used before: use a new token for each request",
	"token_signature":     "the bearer token's signature or algorithm is not the partner's",
	"token_invalid":       "the bearer token is malformed",
}

// unverifiedIssuer reads the iss claim of tok without verifying anything, to
// choose whose key to verify it with.
func unverifiedIssuer(tok string) (string, bool) {
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil {
		return "", false
	}
	return claims.Issuer, claims.Issuer != ""
}

// LoadPublicKeys reads every public key in a PEM file (PUBLIC KEY, RSA
// PUBLIC KEY or CERTIFICATE blocks): RSA for RS256, ECDSA P-256 for ES256.
func LoadPublicKeys(path string) ([]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read jwt key file: %w", err)
	}
	var keys []any
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		var k any
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			c, err = x509.ParseCertificate(block.Bytes)
			if err == nil {
				k = c.PublicKey
			}
		default:
			return nil, fmt.Errorf("%s: PEM block %q is not a public key (private keys never belong here)", path, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no PEM public key", path)
	}
	return keys, nil
}
