package delivery

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTransportVerifiesByDefaultAndTrustsTheConfiguredCA: a partner whose
// certificate the system does not trust is refused unless its CA is
// configured; a partner requiring a client certificate gets the hub's.
func TestTransportVerifiesByDefaultAndTrustsTheConfiguredCA(t *testing.T) {
	var sawClientCert bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawClientCert = r.TLS != nil && len(r.TLS.PeerCertificates) > 0
		w.WriteHeader(http.StatusCreated)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)

	get := func(o TLSOptions) error {
		tr, err := NewTransport(o)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(TLSOptions{}); err == nil {
		t.Fatal("an untrusted partner certificate was accepted by default")
	}
	if err := get(TLSOptions{CAFile: ca}); err != nil {
		t.Fatalf("with the partner's CA: %v", err)
	}
	if sawClientCert {
		t.Fatal("a client certificate was sent without one configured")
	}
	// The server's own pair stands in for the hub's client certificate.
	certPEM := filepath.Join(dir, "client.pem")
	keyPEM := filepath.Join(dir, "client-key.pem")
	writeTestPair(t, certPEM, keyPEM)
	if err := get(TLSOptions{CAFile: ca, CertFile: certPEM, KeyFile: keyPEM}); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if !sawClientCert {
		t.Fatal("the client certificate was not presented")
	}
	if _, err := NewTransport(TLSOptions{CertFile: certPEM}); err == nil {
		t.Fatal("a client certificate without its key was accepted")
	}
}

// writeTestPair writes a fresh self-signed certificate and its key as PEM.
func writeTestPair(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "iceshub-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
}
