package main

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

// The demo brings its own credentials, made at start and kept in its
// temporary directory: an NHS partner (demoNHSPartner) whose bearer tokens
// it signs with a fresh ES256 key, and a webhook secret for the provider and
// each council. The hub checks them exactly as it checks real partners'.
const (
	demoNHSPartner = "nhs-demo"
	demoIssuer     = "https://idp.demo.iceshub.invalid"
	demoAudience   = "https://iceshub.demo.invalid"
)

// demoCredentials sign the demo's requests.
type demoCredentials struct {
	// nhsID is the NHS partner the demo sends referrals as: the
	// configuration's own nhs partner when it has one (it both sends
	// referrals and receives their Tasks), else demoNHSPartner.
	nhsID   string
	nhsKey  *ecdsa.PrivateKey
	secrets map[string][]byte // webhook secret by partner id
	// partnerEnv sets every token_env of the configuration to a fresh
	// token ("NAME=token"), for a hub run as a child process (the bench):
	// serve refuses a token_env that is unset.
	partnerEnv []string
}

// addDemoCredentials generates the credentials in dir (files mode 0600),
// configures them in cfg (an nhs partner, hmac for the provider and the
// councils) and checks cfg again.
func addDemoCredentials(cfg *config.Config, dir string) (*demoCredentials, error) {
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
	d := &demoCredentials{nhsKey: key, secrets: map[string][]byte{}}
	for _, p := range cfg.Partners {
		if p.TokenEnv == "" {
			continue
		}
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("demo credentials: %w", err)
		}
		d.partnerEnv = append(d.partnerEnv, p.TokenEnv+"="+hex.EncodeToString(raw))
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
		JWT:  config.InboundJWT{Issuer: demoIssuer, Audience: demoAudience, Algorithm: auth.AlgES256, KeyFile: keyFile, Skew: auth.DefaultSkew, MaxLifetime: config.DefaultTokenLifetime},
		// The demo and the tests send in bursts.
		Rate:      config.Rate{PerSecond: 1000, Burst: 1000},
		Endpoints: config.DefaultEndpoints(config.KindNHS),
		Messages:  config.DefaultMessages(config.KindNHS),
	}
	for i := range cfg.Partners {
		if p := &cfg.Partners[i]; p.Kind == config.KindNHS && d.nhsID == "" {
			d.nhsID = p.ID
			p.Inbound = inbound
		}
	}
	if d.nhsID == "" {
		d.nhsID = demoNHSPartner
		cfg.Partners = append(cfg.Partners, config.Partner{
			ID: demoNHSPartner, Kind: config.KindNHS, Name: "Demo NHS trust (simulated prescriber system)",
			BaseURL: "https://fhir.demo.iceshub.invalid", ODSCodes: []string{"X99DEMO"},
			Timeout: 10 * time.Second, RetryMax: 4, Inbound: inbound,
		})
	}
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("demo credentials: %w", err)
	}
	return d, nil
}

// bearer returns a fresh token of the demo NHS partner, valid 5 minutes.
func (d *demoCredentials) bearer() (string, error) {
	now := time.Now()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.RegisteredClaims{
		Issuer: demoIssuer, Audience: jwt.ClaimStrings{demoAudience}, Subject: d.nhsID,
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}).SignedString(d.nhsKey)
	if err != nil {
		return "", fmt.Errorf("demo token: %w", err)
	}
	return tok, nil
}

// authorise puts the demo NHS partner's bearer token on req.
func (d *demoCredentials) authorise(req *http.Request) error {
	tok, err := d.bearer()
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// signWebhook signs req's body as partner (the provider or a council) would:
// X-ICES-Timestamp and X-ICES-Signature.
func (d *demoCredentials) signWebhook(req *http.Request, partner string, body []byte) error {
	secret, ok := d.secrets[partner]
	if !ok {
		return fmt.Errorf("demo has no webhook secret for %q", partner)
	}
	ts, sig := auth.Sign(secret, time.Now(), body)
	req.Header.Set(auth.HeaderTimestamp, ts)
	req.Header.Set(auth.HeaderSignature, sig)
	return nil
}
