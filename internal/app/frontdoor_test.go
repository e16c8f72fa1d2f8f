package app

import (
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	certutil "k8s.io/client-go/util/cert"
)

func TestBackendTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	// Another self-signed certificate (httptest's servers all share one).
	certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("127.0.0.1", []net.IP{net.IPv4(127, 0, 0, 1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	other.StartTLS()
	defer other.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	// httptest's certificate is its own CA and names 127.0.0.1 and
	// example.com; the request goes to "localhost", which it does not
	// name, as a pod IP is not named by a kubemon's certificate.
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	get := func(caFile, url string) error {
		cfg, err := backendTLS(caFile)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(ca, "https://localhost:"+u.Port()); err != nil {
		t.Errorf("signed by the CA, by another name: %v", err)
	}
	if err := get(ca, other.URL); err == nil {
		t.Error("a certificate the CA did not sign was accepted")
	}
	if err := get("", other.URL); err != nil {
		t.Errorf("no CA (not verified): %v", err)
	}
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := backendTLS(ca); err == nil {
		t.Error("a CA file without a certificate gave no error")
	}
	if _, err := backendTLS(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing CA file gave no error")
	}
}
