package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const securityBase = `
partners:
  - id: provider
    kind: provider
    base_url: http://127.0.0.1:1
    inbound:
      mode: hmac
      hmac:
        secret_env: TEST_PROVIDER_WEBHOOK_SECRET
  - id: council-a
    kind: council
    base_url: https://crm.example.org
    postcode_prefixes: [CH1]
    tls:
      ca_file: /etc/iceshub/council-a-ca.pem
  - id: trust
    kind: nhs
    base_url: https://fhir.example.nhs.uk
    ods_codes: [RBT]
    inbound:
      mode: jwt
      jwt:
        issuer: https://idp.example.nhs.uk
        audience: https://iceshub.example.org
        algorithm: ES256
        key_file: /etc/iceshub/trust.pem
routes:
  - message: referral
    to: provider
    purpose: delivery
    lawful_basis: Art 6(1)(e)
    fields: [person.name]
`

func TestInboundDefaultsAndValidConfiguration(t *testing.T) {
	c, err := Parse([]byte(securityBase), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.PartnerByID("provider")
	if p.Inbound.HMAC.ReplayWindow.String() != "5m0s" || p.Inbound.Endpoints[0] != "POST /provider/events" || p.Inbound.Rate.PerSecond != 20 {
		t.Fatalf("provider inbound defaults: %+v", p.Inbound)
	}
	co, _ := c.PartnerByID("council-a")
	if co.Inbound.Mode != ModeNone || co.Inbound.Endpoints[0] != "POST /crm/{self}/events" {
		t.Fatalf("council inbound defaults: %+v", co.Inbound)
	}
	tr, _ := c.PartnerByID("trust")
	if tr.Inbound.JWT.Skew.String() != "30s" || tr.Inbound.JWT.MaxLifetime.String() != "1h0m0s" || tr.Inbound.JWT.SingleUse || len(tr.Inbound.Messages) == 0 {
		t.Fatalf("nhs inbound defaults: %+v", tr.Inbound)
	}
	if c.Server.ReadHeaderTimeout.String() != "10s" || c.Server.MaxHeaderBytes != 65536 {
		t.Fatalf("server defaults: %+v", c.Server)
	}
}

func TestInboundMistakesNameTheLine(t *testing.T) {
	cases := []struct {
		name, old, new, want string
	}{
		{"unknown mode", "mode: hmac", "mode: basic", `test.yaml:6: partner "provider": inbound: mode "basic"`},
		{"hmac without secret", "        secret_env: TEST_PROVIDER_WEBHOOK_SECRET\n", "        replay_window: 1m\n", "hmac needs secret_env or secret_file"},
		{"secret in the file", "secret_env: TEST_PROVIDER_WEBHOOK_SECRET", "secret_env: s3cr3t-value", "not an environment variable name"},
		{"alg none", "algorithm: ES256", "algorithm: none", `test.yaml:20: partner "trust": inbound: jwt algorithm "none"`},
		{"HS256 with a key file", "algorithm: ES256", "algorithm: HS256", "jwt needs secret_env or secret_file"},
		{"ten-year tokens", "        key_file: /etc/iceshub/trust.pem\n", "        key_file: /etc/iceshub/trust.pem\n        max_lifetime: 87600h\n", `test.yaml:20: partner "trust": inbound: jwt max_lifetime 87600h0m0s must be between 1m and 24h0m0s`},
		{"tokens of seconds", "        key_file: /etc/iceshub/trust.pem\n", "        key_file: /etc/iceshub/trust.pem\n        max_lifetime: 30s\n", "jwt max_lifetime 30s must be between 1m"},
		{"jwt without audience", "        audience: https://iceshub.example.org\n", "", "jwt needs an issuer and an audience"},
		{"mtls without server tls", "mode: hmac\n      hmac:\n        secret_env: TEST_PROVIDER_WEBHOOK_SECRET", "mode: mtls\n      mtls:\n        spki_sha256: [" + strings.Repeat("ab", 32) + "]", "mtls needs server.tls"},
		{"bad fingerprint", "mode: hmac\n      hmac:\n        secret_env: TEST_PROVIDER_WEBHOOK_SECRET", "mode: mtls\n      mtls:\n        cert_sha256: [abcd]", "is not a SHA-256 fingerprint"},
		{"settings of another mode", "mode: hmac", "mode: none", `hmac settings given but mode is "none"`},
		{"unknown message kind", "        secret_env: TEST_PROVIDER_WEBHOOK_SECRET\n", "        secret_env: TEST_PROVIDER_WEBHOOK_SECRET\n      messages: [gossip]\n", `message "gossip" is not a known kind`},
		{"bad endpoint", "        secret_env: TEST_PROVIDER_WEBHOOK_SECRET\n", "        secret_env: TEST_PROVIDER_WEBHOOK_SECRET\n      endpoints: [/provider/events]\n", `endpoint "/provider/events" must be`},
		{"insecure outbound tls", "      ca_file: /etc/iceshub/council-a-ca.pem", "      insecure_skip_verify: true", `test.yaml:14: partner "council-a": tls.insecure_skip_verify is allowed only with server.insecure_dev`},
		{"tls on http", "base_url: https://crm.example.org", "base_url: http://crm.example.org", "tls settings apply only to an https base_url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(securityBase, c.old) {
				t.Fatalf("base lacks %q", c.old)
			}
			_, err := Parse([]byte(strings.Replace(securityBase, c.old, c.new, 1)), "test.yaml")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}

func TestInboundSecretFromEnvironmentOrFile(t *testing.T) {
	c, err := Parse([]byte(securityBase), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_PROVIDER_WEBHOOK_SECRET", "")
	if err := c.CheckSecrets(); err == nil || !strings.Contains(err.Error(), "TEST_PROVIDER_WEBHOOK_SECRET") {
		t.Fatalf("missing secret: %v", err)
	}
	t.Setenv("TEST_PROVIDER_WEBHOOK_SECRET", strings.Repeat("k", 32))
	if err := c.CheckSecrets(); err != nil {
		t.Fatal(err)
	}
	p, _ := c.PartnerByID("provider")
	file := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(file, []byte(strings.Repeat("f", 32)+"\n"), 0o644)
	p.Inbound.HMAC.SecretEnv, p.Inbound.HMAC.SecretFile = "", file
	if _, err := p.InboundSecret(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable secret file: %v", err)
	}
	os.Chmod(file, 0o600)
	if b, err := p.InboundSecret(); err != nil || string(b) != strings.Repeat("f", 32) {
		t.Fatalf("secret file: %q %v", b, err)
	}
}

// A token_env whose variable is unset, empty or blank is an error naming
// the file, line, partner and variable, never a value; set, the token is
// read; no token_env means no token and no error.
func TestTokenEnvMustBeSet(t *testing.T) {
	y := strings.Replace(securityBase, "    base_url: http://127.0.0.1:1\n", "    base_url: http://127.0.0.1:1\n    token_env: TEST_PROVIDER_TOKEN\n", 1)
	c, err := Parse([]byte(y), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"", "  "} {
		t.Setenv("TEST_PROVIDER_TOKEN", v)
		if err := c.CheckTokens(); err == nil || !strings.Contains(err.Error(), `test.yaml:3: partner "provider": token_env names TEST_PROVIDER_TOKEN, which is unset or empty`) {
			t.Fatalf("token %q: %v", v, err)
		}
	}
	t.Setenv("TEST_PROVIDER_TOKEN", " tok\n")
	if err := c.CheckTokens(); err == nil || !strings.Contains(err.Error(), "the token in TEST_PROVIDER_TOKEN has spaces or line breaks") || strings.Contains(err.Error(), " tok\n") {
		t.Fatalf("token with spaces: %v", err)
	}
	t.Setenv("TEST_PROVIDER_TOKEN", "a-token")
	p, _ := c.PartnerByID("provider")
	if tok, err := p.Token(); err != nil || tok != "a-token" || c.CheckTokens() != nil {
		t.Fatalf("set token: %q %v", tok, err)
	}
	tr, _ := c.PartnerByID("trust")
	if tok, err := tr.Token(); err != nil || tok != "" {
		t.Fatalf("no token_env: %q %v", tok, err)
	}
}
