// Package democreds makes the credentials that the demo and the bench send
// with, in their temporary directory: an NHS partner whose bearer tokens
// they sign with a fresh ES256 key, and a webhook secret for the provider
// and each council. The hub checks them exactly as it checks real
// partners'.
package democreds

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/config"
)

// The NHS partner the demo adds when the configuration has none
// (NHSPartner), and the issuer and audience of its tokens.
const (
	NHSPartner = "nhs-demo"
	Issuer     = "https://idp.demo.iceshub.invalid"
	Audience   = "https://iceshub.demo.invalid"
)

// Credentials sign the demo's requests.
type Credentials struct {
	// NHSID is the NHS partner the demo sends referrals as: the
	// configuration's own nhs partner when it has one (it both sends
	// referrals and receives their Tasks), else NHSPartner.
	NHSID string
	// NHSKey signs NHSID's bearer tokens.
	NHSKey  *ecdsa.PrivateKey
	secrets map[string][]byte // webhook secret by partner id
	// PartnerEnv sets every token_env of the configuration to a fresh
	// token ("NAME=token"), for a hub run as a child process (the bench):
	// serve refuses a token_env that is unset.
	PartnerEnv []string
}

// Add generates the credentials in dir (files mode 0600), configures them
// in cfg (an nhs partner, hmac for the provider and the councils) and
// checks cfg again.
func Add(cfg *config.Config, dir string) (*Credentials, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demo credentials: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("demo credentials: %w", err)
	}
	keyFile := filepath.Join(dir, "nhs-demo-jwt.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		return nil, fmt.Errorf("demo credentials: %w", err)
	}
	d := &Credentials{NHSKey: key, secrets: map[string][]byte{}}
	for _, p := range cfg.Partners {
		if p.TokenEnv == "" {
			continue
		}
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("demo credentials: %w", err)
		}
		d.PartnerEnv = append(d.PartnerEnv, p.TokenEnv+"="+hex.EncodeToString(raw))
	}
	for i := range cfg.Partners {
		p := &cfg.Partners[i]
		if p.Kind != config.KindProvider && p.Kind != config.KindCouncil {
			continue
		}
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("demo credentials: %w", err)
		}
		secret := []byte(hex.EncodeToString(raw))
		file := filepath.Join(dir, p.ID+"-webhook.secret")
		if err := os.WriteFile(file, secret, 0o600); err != nil {
			return nil, fmt.Errorf("demo credentials: %w", err)
		}
		d.secrets[p.ID] = secret
		p.Inbound.Mode = config.ModeHMAC
		p.Inbound.HMAC = config.InboundHMAC{SecretFile: file, ReplayWindow: auth.DefaultReplayWindow}
	}
	inbound := config.Inbound{
		Mode: config.ModeJWT,
		JWT:  config.InboundJWT{Issuer: Issuer, Audience: Audience, Algorithm: auth.AlgES256, KeyFile: keyFile, Skew: auth.DefaultSkew, MaxLifetime: config.DefaultTokenLifetime},
		// The demo and the tests send in bursts.
		Rate:      config.Rate{PerSecond: 1000, Burst: 1000},
		Endpoints: config.DefaultEndpoints(config.KindNHS),
		Messages:  config.DefaultMessages(config.KindNHS),
	}
	for i := range cfg.Partners {
		if p := &cfg.Partners[i]; p.Kind == config.KindNHS && d.NHSID == "" {
			d.NHSID = p.ID
			p.Inbound = inbound
		}
	}
	if d.NHSID == "" {
		d.NHSID = NHSPartner
		cfg.Partners = append(cfg.Partners, config.Partner{
			ID: NHSPartner, Kind: config.KindNHS, Name: "Demo NHS trust (simulated prescriber system)",
			BaseURL: "https://fhir.demo.iceshub.invalid", ODSCodes: []string{"X99DEMO"},
			Timeout: 10 * time.Second, RetryMax: 4, Inbound: inbound,
		})
	}
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("demo credentials: %w", err)
	}
	return d, nil
}

// Bearer returns a fresh token of the demo NHS partner, valid 5 minutes.
func (d *Credentials) Bearer() (string, error) {
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Issuer: Issuer, Audience: jwt.ClaimStrings{Audience}, Subject: d.NHSID,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}).SignedString(d.NHSKey)
	if err != nil {
		return "", fmt.Errorf("demo token: %w", err)
	}
	return tok, nil
}

// Authorise puts the demo NHS partner's bearer token on req.
func (d *Credentials) Authorise(req *http.Request) error {
	tok, err := d.Bearer()
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// SignWebhook signs req's body as partner (the provider or a council) would:
// X-ICES-Timestamp and X-ICES-Signature.
func (d *Credentials) SignWebhook(req *http.Request, partner string, body []byte) error {
	secret, ok := d.secrets[partner]
	if !ok {
		return fmt.Errorf("demo has no webhook secret for %q", partner)
	}
	ts, sig := auth.Sign(secret, time.Now(), body)
	req.Header.Set(auth.HeaderTimestamp, ts)
	req.Header.Set(auth.HeaderSignature, sig)
	return nil
}
