package config

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// checkServer reports problems of the server's limits, timeouts and TLS.
func (c *Config) checkServer() []error {
	var errs []error
	s := c.Server
	for name, d := range map[string]time.Duration{
		"read_header_timeout": s.ReadHeaderTimeout, "read_timeout": s.ReadTimeout,
		"write_timeout": s.WriteTimeout, "idle_timeout": s.IdleTimeout,
	} {
		if d < 100*time.Millisecond {
			errs = append(errs, fmt.Errorf("%s: server.%s %s is below 100ms", c.Source, name, d))
		}
	}
	if s.MaxHeaderBytes < 4096 {
		errs = append(errs, fmt.Errorf("%s: server.max_header_bytes %d is below 4096", c.Source, s.MaxHeaderBytes))
	}
	if (s.TLS.CertFile == "") != (s.TLS.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s: server.tls needs both cert_file and key_file", c.Source))
	}
	if s.TLS.ClientCAFile != "" && s.TLS.CertFile == "" {
		errs = append(errs, fmt.Errorf("%s: server.tls.client_ca_file needs cert_file and key_file: client certificates come only over TLS", c.Source))
	}
	return errs
}

// checkInbound reports problems of a partner's inbound block.
func (c *Config) checkInbound(p Partner, at func(int) string) []error {
	var errs []error
	in := p.Inbound
	where := at(max(in.Line, p.Line))
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: partner %q: inbound: "+format, append([]any{where, p.ID}, args...)...))
	}
	if in.Mode != ModeMTLS && len(in.MTLS.CertSHA256)+len(in.MTLS.SPKISHA256) > 0 {
		bad("mtls fingerprints given but mode is %q", in.Mode)
	}
	if in.Mode != ModeJWT && in.JWT != (InboundJWT{}) {
		bad("jwt settings given but mode is %q", in.Mode)
	}
	if in.Mode != ModeHMAC && (in.HMAC.SecretEnv != "" || in.HMAC.SecretFile != "") {
		bad("hmac settings given but mode is %q", in.Mode)
	}
	switch in.Mode {
	case ModeNone:
	case ModeMTLS:
		if len(in.MTLS.CertSHA256)+len(in.MTLS.SPKISHA256) == 0 {
			bad("mtls needs cert_sha256 or spki_sha256 fingerprints pinning the partner's client certificate")
		}
		for _, fp := range append(slices.Clone(in.MTLS.CertSHA256), in.MTLS.SPKISHA256...) {
			if !isFingerprint(fp) {
				bad("%q is not a SHA-256 fingerprint (64 hex digits, colons allowed)", fp)
			}
		}
		if !c.Server.TLS.Enabled() {
			bad("mtls needs server.tls (cert_file, key_file): client certificates come only over TLS")
		}
	case ModeJWT:
		j := in.JWT
		if strings.TrimSpace(j.Issuer) == "" || strings.TrimSpace(j.Audience) == "" {
			bad("jwt needs an issuer and an audience")
		}
		switch j.Algorithm {
		case "RS256", "ES256":
			if j.KeyFile == "" {
				bad("jwt %s needs key_file (PEM public keys)", j.Algorithm)
			}
			if j.SecretEnv != "" || j.SecretFile != "" {
				bad("jwt %s verifies with a public key: secret_env and secret_file are for HS256", j.Algorithm)
			}
		case "HS256":
			errs = append(errs, c.checkSecretSource(p, where, "jwt", j.SecretEnv, j.SecretFile)...)
			if j.KeyFile != "" {
				bad("jwt HS256 takes a secret (secret_env or secret_file), not key_file")
			}
		default:
			bad("jwt algorithm %q is not one of RS256, ES256, HS256", j.Algorithm)
		}
		if j.Skew < 0 || j.Skew > 5*time.Minute {
			bad("jwt skew %s must be between 0 and 5m", j.Skew)
		}
		if j.MaxLifetime < time.Minute || j.MaxLifetime > MaxTokenLifetime {
			bad("jwt max_lifetime %s must be between 1m and %s", j.MaxLifetime, MaxTokenLifetime)
		}
	case ModeHMAC:
		errs = append(errs, c.checkSecretSource(p, where, "hmac", in.HMAC.SecretEnv, in.HMAC.SecretFile)...)
		if in.HMAC.ReplayWindow < time.Second || in.HMAC.ReplayWindow > time.Hour {
			bad("hmac replay_window %s must be between 1s and 1h", in.HMAC.ReplayWindow)
		}
	default:
		bad("mode %q is not one of mtls, jwt, hmac, none", in.Mode)
	}
	if in.Rate.PerSecond < 0 || in.Rate.Burst < 0 {
		bad("rate per_second and burst must not be negative")
	}
	for _, e := range in.Endpoints {
		method, path, ok := strings.Cut(strings.TrimSpace(e), " ")
		if !ok || !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, method) || !strings.HasPrefix(strings.TrimSpace(path), "/") {
			bad("endpoint %q must be \"METHOD /path\" (GET, POST, PUT, PATCH, DELETE)", e)
		}
	}
	for _, m := range in.Messages {
		if !knownKinds[m] {
			bad("message %q is not a known kind (known: %s)", m, strings.Join(sortedKeys(knownKinds), ", "))
		}
	}
	return errs
}

// checkSecretSource checks that exactly one of env and file names a secret.
func (c *Config) checkSecretSource(p Partner, where, what, env, file string) []error {
	switch {
	case env != "" && file != "":
		return []error{fmt.Errorf("%s: partner %q: inbound: %s: give secret_env or secret_file, not both", where, p.ID, what)}
	case env == "" && file == "":
		return []error{fmt.Errorf("%s: partner %q: inbound: %s needs secret_env or secret_file (never the secret itself in this file)", where, p.ID, what)}
	case env != "" && !envPattern.MatchString(env):
		return []error{fmt.Errorf("%s: partner %q: inbound: %s secret_env %q is not an environment variable name", where, p.ID, what, env)}
	}
	return nil
}

// checkOutboundTLS reports problems of a partner's outbound tls block.
func (c *Config) checkOutboundTLS(p Partner, at func(int) string) []error {
	var errs []error
	t := p.TLS
	if t == (OutboundTLS{Line: t.Line}) {
		return nil
	}
	where := at(max(t.Line, p.Line))
	if u, err := url.Parse(p.BaseURL); err == nil && u.Scheme != "https" {
		errs = append(errs, fmt.Errorf("%s: partner %q: tls settings apply only to an https base_url", where, p.ID))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s: partner %q: tls needs both cert_file and key_file for a client certificate", where, p.ID))
	}
	if t.InsecureSkipVerify && !c.Server.InsecureDev {
		errs = append(errs, fmt.Errorf("%s: partner %q: tls.insecure_skip_verify is allowed only with server.insecure_dev (development); give ca_file instead", where, p.ID))
	}
	return errs
}

func isFingerprint(s string) bool {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	return err == nil && len(b) == 32
}
