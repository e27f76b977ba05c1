package hub

import (
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/iceshub/iceshub/internal/auth"
	"github.com/iceshub/iceshub/internal/config"
	"github.com/iceshub/iceshub/internal/delivery"
)

// newAuthenticator builds the guard of the partner endpoints from the
// configuration: each partner's inbound block, its secret read from its
// environment variable or file, its public keys from their PEM files.
// replays (the hub's store) remembers accepted webhook signatures and
// single-use tokens' ids, so that a replay is refused after a restart too.
func newAuthenticator(cfg *config.Config, counter auth.Counter, replays auth.ReplayStore, logger *slog.Logger) (*auth.Authenticator, error) {
	ac := auth.Config{
		InsecureDev:  cfg.Server.InsecureDev,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		Counter:      counter,
		Replays:      replays,
	}
	for _, p := range cfg.Partners {
		in := p.Inbound
		pc := auth.PartnerConfig{
			ID: p.ID, Kind: p.Kind, Mode: in.Mode,
			RatePerSecond: in.Rate.PerSecond, Burst: in.Rate.Burst,
			Endpoints: in.Endpoints, Messages: in.Messages, ODSCodes: p.ODSCodes,
		}
		secret, err := p.InboundSecret()
		if err != nil {
			return nil, err
		}
		switch in.Mode {
		case config.ModeMTLS:
			for _, s := range in.MTLS.CertSHA256 {
				fp, err := auth.ParseFingerprint(s)
				if err != nil {
					return nil, fmt.Errorf("partner %q: %w", p.ID, err)
				}
				pc.MTLS.CertSHA256 = append(pc.MTLS.CertSHA256, fp)
			}
			for _, s := range in.MTLS.SPKISHA256 {
				fp, err := auth.ParseFingerprint(s)
				if err != nil {
					return nil, fmt.Errorf("partner %q: %w", p.ID, err)
				}
				pc.MTLS.SPKISHA256 = append(pc.MTLS.SPKISHA256, fp)
			}
		case config.ModeJWT:
			j := in.JWT
			pc.JWT = auth.JWTConfig{Issuer: j.Issuer, Audience: j.Audience, Subject: j.Subject, Algorithm: j.Algorithm, Skew: j.Skew,
				MaxLifetime: j.MaxLifetime, SingleUse: j.SingleUse}
			if j.Algorithm == auth.AlgHS256 {
				pc.JWT.Keys = []any{secret}
			} else {
				keys, err := auth.LoadPublicKeys(j.KeyFile)
				if err != nil {
					return nil, fmt.Errorf("partner %q: %w", p.ID, err)
				}
				pc.JWT.Keys = keys
			}
		case config.ModeHMAC:
			pc.HMACSecret, pc.HMACWindow = secret, in.HMAC.ReplayWindow
		}
		ac.Partners = append(ac.Partners, pc)
	}
	return auth.New(ac, logger)
}

// serverTLS returns the server's TLS configuration, or nil for plain HTTP.
func serverTLS(cfg *config.Config) (*tls.Config, error) {
	t := cfg.Server.TLS
	if !t.Enabled() {
		return nil, nil
	}
	mtls := false
	for _, p := range cfg.Partners {
		mtls = mtls || p.Inbound.Mode == config.ModeMTLS
	}
	return auth.ServerTLS(t.CertFile, t.KeyFile, t.ClientCAFile, mtls)
}

// outboundTLS returns the TLS options of a partner with tls settings,
// or nil (the delivery default) without.
func outboundTLS(p config.Partner) (*delivery.TLSOptions, error) {
	t := p.TLS
	if t == (config.OutboundTLS{Line: t.Line}) {
		return nil, nil
	}
	return &delivery.TLSOptions{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}, nil
}
