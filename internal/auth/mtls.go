package auth

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Mutual TLS. A partner is pinned by the SHA-256 fingerprint of its client
// certificate (the DER encoding) or of the certificate's public key (its
// SubjectPublicKeyInfo, which survives re-issuing the certificate for the
// same key). The server's TLS configuration (ServerTLS) asks clients for a
// certificate; with a client CA it also verifies the chain.

// ParseFingerprint reads a SHA-256 fingerprint: 64 hex digits, in any case,
// optionally separated by colons ("AB:CD:...") as openssl prints them.
func ParseFingerprint(s string) ([32]byte, error) {
	var fp [32]byte
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return fp, errors.New("a SHA-256 fingerprint is 64 hex digits, optionally separated by colons")
	}
	copy(fp[:], b)
	return fp, nil
}

// CertFingerprint returns the SHA-256 fingerprint of a certificate.
func CertFingerprint(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }

// SPKIFingerprint returns the SHA-256 fingerprint of a certificate's public
// key.
func SPKIFingerprint(c *x509.Certificate) [32]byte { return sha256.Sum256(c.RawSubjectPublicKeyInfo) }

// MTLSConfig pins one partner's client certificates.
type MTLSConfig struct {
	// CertSHA256 are fingerprints of whole certificates.
	CertSHA256 [][32]byte
	// SPKISHA256 are fingerprints of public keys.
	SPKISHA256 [][32]byte
}

// ServerTLS returns the TLS configuration of the hub's server: its
// certificate and key, TLS 1.2 at least, and, when clientCAFile is given or
// requestClientCerts is true (some partner uses mutual TLS), a request for
// a client certificate. With clientCAFile a presented certificate must chain
// to it (VerifyClientCertIfGiven); without, any certificate is taken and
// then must be pinned (the handshake still proves the client holds its
// private key). Clients without a certificate may still connect and use a
// bearer token or a signature.
func ServerTLS(certFile, keyFile, clientCAFile string, requestClientCerts bool) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server tls: %w", err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	switch {
	case clientCAFile != "":
		pool, err := LoadCertPool(clientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server tls: client CA: %w", err)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.VerifyClientCertIfGiven
	case requestClientCerts:
		c.ClientAuth = tls.RequestClientCert
	}
	return c, nil
}

// LoadCertPool reads a PEM bundle of CA certificates.
func LoadCertPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}
