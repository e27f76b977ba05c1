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
// expiry; exp, nbf and iat are checked with the configured clock skew.

// JWT algorithms a partner may be configured with.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgHS256 = "HS256"
)

// DefaultSkew is the clock skew allowed on exp, nbf and iat.
const DefaultSkew = 30 * time.Second

// maxTokenBytes bounds a bearer token; a real one is well under 4 KiB.
const maxTokenBytes = 8 << 10

// ErrBadAuthorization is returned by ParseBearer for an Authorization header
// that is not "Bearer <JWT>".
var ErrBadAuthorization = errors.New(`the Authorization header must be "Bearer <JWT>"`)

// ParseBearer returns the token of an Authorization header "Bearer <JWT>"
// (the scheme in any case): three dot-separated base64url parts of at most
// 8 KiB in all.
func ParseBearer(h string) (string, error) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", ErrBadAuthorization
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || len(tok) > maxTokenBytes || strings.Count(tok, ".") != 2 {
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

// verify checks tok and returns a reason code when it is refused.
func (p *jwtPartner) verify(tok string) (reason string, ok bool) {
	sum := sha256.Sum256([]byte(tok))
	p.mu.Lock()
	exp, seen := p.verified[sum]
	p.mu.Unlock()
	if seen && p.now().Before(exp) {
		return "", true
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
		if claims.ExpiresAt != nil {
			p.mu.Lock()
			if len(p.verified) >= maxVerified {
				clear(p.verified)
			}
			p.verified[sum] = claims.ExpiresAt.Time
			p.mu.Unlock()
		}
		return "", true
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token_expired", false
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token_not_yet_valid", false
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "token_audience", false
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "token_issuer", false
	case errors.Is(err, jwt.ErrTokenInvalidSubject):
		return "token_subject", false
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token_claim_missing", false
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "token_signature", false
	default:
		return "token_invalid", false
	}
}

// tokenMessages are what the caller is told, by reason.
var tokenMessages = map[string]string{
	"token_expired":       "the bearer token has expired",
	"token_not_yet_valid": "the bearer token is not valid yet (nbf or iat in the future)",
	"token_audience":      "the bearer token is not for this hub (audience)",
	"token_issuer":        "the bearer token's issuer is not one this hub trusts",
	"token_subject":       "the bearer token's subject is not the partner's",
	"token_claim_missing": "the bearer token lacks a required claim (exp)",
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
