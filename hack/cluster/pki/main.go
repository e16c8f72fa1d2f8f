// Command pki writes the certificates, keys and kubeconfigs of the test
// cluster that hack/cluster/up.sh starts: EC P-256 throughout (fast to
// generate on a loaded machine).
//
//	go run ./hack/cluster/pki -dir DIR -apiserver https://10.77.0.1:6443 -node kmnode1=10.77.0.2
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type pair struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// spec is one certificate to issue: its file name, signer, subject and
// alternative names, and whether it serves TLS.
type spec struct {
	name   string
	signer pair
	cn     string
	orgs   []string
	dns    []string
	ips    []string
	server bool
}

type nodes []string

func (n *nodes) String() string     { return strings.Join(*n, ",") }
func (n *nodes) Set(v string) error { *n = append(*n, v); return nil }

func main() {
	dir := flag.String("dir", "", "output directory")
	server := flag.String("apiserver", "", "apiserver URL for the kubeconfigs")
	var ns nodes
	flag.Var(&ns, "node", "name=IP of a node (repeatable)")
	var extra nodes
	flag.Var(&extra, "serving", "name=DNS1,DNS2 of an extra serving certificate signed by the CA (repeatable)")
	flag.Parse()
	if *dir == "" || *server == "" {
		fmt.Fprintln(os.Stderr, "pki: -dir and -apiserver are required")
		os.Exit(2)
	}
	if err := run(*dir, *server, ns, extra); err != nil {
		fmt.Fprintln(os.Stderr, "pki:", err)
		os.Exit(1)
	}
}

func run(dir, server string, ns, extra []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := newCA("kubemon-test-ca")
	if err != nil {
		return err
	}
	fp, err := newCA("kubemon-test-front-proxy-ca")
	if err != nil {
		return err
	}
	host := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	apiIP, _, _ := net.SplitHostPort(host)
	certs := []spec{
		{"apiserver", ca, "kube-apiserver", nil, []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}, []string{"127.0.0.1", apiIP, "10.96.0.1"}, true},
		{"admin", ca, "kubernetes-admin", []string{"system:masters"}, nil, nil, false},
		{"controller-manager", ca, "system:kube-controller-manager", nil, nil, nil, false},
		{"scheduler", ca, "system:kube-scheduler", nil, nil, nil, false},
		// kube-proxy's user, bound to system:node-proxier by the default policy.
		{"kube-proxy", ca, "system:kube-proxy", nil, nil, nil, false},
		{"apiserver-kubelet-client", ca, "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil, false},
		{"front-proxy-client", fp, "front-proxy-client", nil, nil, nil, false},
	}
	for _, n := range ns {
		name, ip, ok := strings.Cut(n, "=")
		if !ok {
			return fmt.Errorf("-node %q: want name=IP", n)
		}
		certs = append(certs,
			spec{"kubelet-" + name, ca, "system:node:" + name, []string{"system:nodes"}, nil, nil, false},
			spec{"kubelet-" + name + "-serving", ca, "system:node:" + name, []string{"system:nodes"}, []string{name}, []string{ip}, true})
	}
	for _, e := range extra {
		name, dns, _ := strings.Cut(e, "=")
		certs = append(certs, spec{name, ca, name, nil, strings.Split(dns, ","), []string{"127.0.0.1"}, true})
	}
	if err := write(dir, "ca", ca); err != nil {
		return err
	}
	if err := write(dir, "front-proxy-ca", fp); err != nil {
		return err
	}
	issued := map[string]pair{}
	for _, c := range certs {
		p, err := issue(c.signer, c.cn, c.orgs, c.dns, c.ips, c.server)
		if err != nil {
			return err
		}
		issued[c.name] = p
		if err := write(dir, c.name, p); err != nil {
			return err
		}
	}
	// Service-account signing key (ES256).
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), sa); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return err
	}
	// Kubeconfigs.
	users := map[string]string{"admin": "admin", "controller-manager": "controller-manager", "scheduler": "scheduler", "kube-proxy": "kube-proxy"}
	for _, n := range ns {
		name, _, _ := strings.Cut(n, "=")
		users["kubelet-"+name] = "kubelet-" + name
	}
	for file, cert := range users {
		if err := kubeconfig(filepath.Join(dir, file+".kubeconfig"), server, ca, issued[cert]); err != nil {
			return err
		}
	}
	return nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func newCA(cn string) (pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return pair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	return pair{cert, key}, err
}

func issue(ca pair, cn string, orgs, dns, ips []string, server bool) (pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return pair{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, DNSNames: dns,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	for _, ip := range ips {
		if p := net.ParseIP(ip); p != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, p)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return pair{}, err
	}
	cert, err := x509.ParseCertificate(der)
	return pair{cert, key}, err
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func writeKey(path string, k *ecdsa.PrivateKey) error {
	b, err := keyPEM(k)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func write(dir, name string, p pair) error {
	if err := os.WriteFile(filepath.Join(dir, name+".crt"), certPEM(p.cert), 0o644); err != nil {
		return err
	}
	return writeKey(filepath.Join(dir, name+".key"), p.key)
}

func kubeconfig(path, server string, ca, user pair) error {
	key, err := keyPEM(user.key)
	if err != nil {
		return err
	}
	b64 := base64.StdEncoding.EncodeToString
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubemon-test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: user
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: kubemon-test
  context:
    cluster: kubemon-test
    user: user
current-context: kubemon-test
`, server, b64(certPEM(ca.cert)), b64(certPEM(user.cert)), b64(key))
	return os.WriteFile(path, []byte(cfg), 0o600)
}
