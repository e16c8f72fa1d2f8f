package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

// testTLS returns a server configuration with a certificate for 127.0.0.1
// signed by a fresh CA, and a client pool holding that CA.
func testTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sim-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kubelet"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// TestTLSAndBearerToken: with Options.TLS and BearerToken a node's kubelet
// endpoints answer over HTTPS verified by the CA, and only a request with
// the token; the cluster's handler asks for none.
func TestTLSAndBearerToken(t *testing.T) {
	srv, pool := testTLS(t)
	c, _ := startCluster(t, Options{Nodes: 2, PodsPerNode: 3, TLS: srv, BearerToken: "s3cret"})
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(url, auth string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for _, n := range c.Nodes() {
		base := "https://" + n.Address + ":" + strconv.Itoa(n.Port)
		for _, p := range []string{"/healthz", "/stats/summary", "/metrics/resource", "/metrics/cadvisor", "/pods"} {
			if code, b := get(base+p, "Bearer s3cret"); code != http.StatusOK || len(b) == 0 {
				t.Errorf("%s%s with the token: %d (%d bytes)", n.Name, p, code, len(b))
			}
			for _, auth := range []string{"", "Bearer wrong", "Basic s3cret", "Bearer"} {
				if code, _ := get(base+p, auth); code != http.StatusUnauthorized {
					t.Errorf("%s%s with Authorization %q: %d, want 401", n.Name, p, auth, code)
				}
			}
		}
		if code, _, _ := httpGet(t, "http://"+n.Address+":"+strconv.Itoa(n.Port)+"/healthz"); code != http.StatusBadRequest {
			t.Errorf("%s answered plain HTTP on its TLS listener: %d, want 400", n.Name, code)
		}
	}
	if rec := handlerGet(t, c.Handler(), http.MethodGet, "/api/v1/nodes"); rec.Code != http.StatusOK {
		t.Errorf("cluster handler /api/v1/nodes: %d", rec.Code)
	}
}

// TestObjects: NodeObjects and PodObjects are what /api/v1/nodes and
// /api/v1/pods serve at the same time.
func TestObjects(t *testing.T) {
	c, clk := startCluster(t, Options{Nodes: 3, PodsPerNode: 12})
	clk.Advance(3 * time.Hour) // pods have churned
	var nodes v1.NodeList
	decodeStrict(t, handlerGet(t, c.Handler(), http.MethodGet, "/api/v1/nodes").Body.Bytes(), &nodes)
	var pods v1.PodList
	decodeStrict(t, handlerGet(t, c.Handler(), http.MethodGet, "/api/v1/pods").Body.Bytes(), &pods)
	same := func(what string, a, b any) {
		t.Helper()
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("%s differ:\n%s\n%s", what, ja, jb)
		}
	}
	same("nodes", c.NodeObjects(), nodes.Items)
	po := c.PodObjects(clk.Now())
	if len(po) != 36 {
		t.Fatalf("PodObjects: %d pods, want 36", len(po))
	}
	same("pods", po, pods.Items)
	for _, p := range po {
		if p.Spec.NodeName == "" || len(p.OwnerReferences) != 1 || p.Status.Phase != v1.PodRunning ||
			len(p.Spec.Containers) != 2 {
			t.Errorf("pod %s/%s: node %q, owners %v, phase %s, %d containers", p.Namespace, p.Name,
				p.Spec.NodeName, p.OwnerReferences, p.Status.Phase, len(p.Spec.Containers))
		}
	}
	if n := c.NodeObjects()[0]; n.Status.DaemonEndpoints.KubeletEndpoint.Port != int32(c.Nodes()[0].Port) {
		t.Errorf("node %s kubelet port %d, want %d", n.Name, n.Status.DaemonEndpoints.KubeletEndpoint.Port, c.Nodes()[0].Port)
	}
}
