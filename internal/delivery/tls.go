package delivery

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// TLSOptions configure TLS to one partner. The zero value verifies the
// partner's certificate against the system's roots, as http.DefaultTransport
// does.
type TLSOptions struct {
	// CAFile is a PEM bundle that the partner's server certificate must
	// chain to, instead of the system's roots.
	CAFile string
	// CertFile and KeyFile are the hub's client certificate and key, for a
	// partner that requires mutual TLS.
	CertFile, KeyFile string
	// ServerName overrides the name the certificate is checked against.
	ServerName string
	// InsecureSkipVerify turns verification off. Development only; the
	// configuration allows it only in insecure development mode.
	InsecureSkipVerify bool
}

// NewTransport returns a clone of http.DefaultTransport with TLS configured
// by o (TLS 1.2 at least), for Config.Transport.
func NewTransport(o TLSOptions) (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName, InsecureSkipVerify: o.InsecureSkipVerify}
	if o.CAFile != "" {
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("delivery: tls ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("delivery: tls ca_file %s holds no PEM certificate", o.CAFile)
		}
		c.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("delivery: tls needs both a client certificate and its key")
	}
	if o.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("delivery: tls client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	tr.TLSClientConfig = c
	return tr, nil
}
