package lifecycle

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n.Add(n, big.NewInt(1))
}

func newCA(cn string) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key}, nil
}

func (ca *keyPair) issue(cn string, orgs []string, dns []string, ips []net.IP, usage x509.ExtKeyUsage) (*keyPair, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(2 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, key: key}, nil
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func (kp *keyPair) write(dir, base string) error {
	kb, err := keyPEM(kp.key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, base+".crt"), certPEM(kp.cert), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, base+".key"), kb, 0o600)
}

// pki holds everything generated for one instance.
type pki struct {
	ca, admin, kcm, scheduler *keyPair
}

// generatePKI writes CA, serving cert, client certs and the service-account
// key pair into dir (the instance's pki directory).
func generatePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := newCA("sluice-testenv-ca")
	if err != nil {
		return nil, err
	}
	if err := ca.write(dir, "ca"); err != nil {
		return nil, err
	}
	serving, err := ca.issue("kube-apiserver", nil,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.96.0.1")},
		x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	if err := serving.write(dir, "apiserver"); err != nil {
		return nil, err
	}
	p := &pki{ca: ca}
	clients := []struct {
		base, cn string
		orgs     []string
		dst      **keyPair
	}{
		{"admin", "sluice-testenv-admin", []string{"system:masters"}, &p.admin},
		{"controller-manager", "system:kube-controller-manager", nil, &p.kcm},
		{"scheduler", "system:kube-scheduler", nil, &p.scheduler},
	}
	for _, c := range clients {
		kp, err := ca.issue(c.cn, c.orgs, nil, nil, x509.ExtKeyUsageClientAuth)
		if err != nil {
			return nil, err
		}
		if err := kp.write(dir, c.base); err != nil {
			return nil, err
		}
		*c.dst = kp
	}
	// Front proxy (aggregation layer / request-header authentication).
	fpCA, err := newCA("sluice-testenv-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	if err := fpCA.write(dir, "front-proxy-ca"); err != nil {
		return nil, err
	}
	fpClient, err := fpCA.issue("front-proxy-client", nil, nil, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	if err := fpClient.write(dir, "front-proxy-client"); err != nil {
		return nil, err
	}
	// Service-account token signing key.
	sa, err := newKey()
	if err != nil {
		return nil, err
	}
	kb, err := keyPEM(sa)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.key"), kb, 0o600); err != nil {
		return nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(sa.Public())
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

// kubeconfig renders a kubeconfig with embedded client-certificate credentials.
func kubeconfig(server string, ca *keyPair, client *keyPair, user string) ([]byte, error) {
	kb, err := keyPEM(client.key)
	if err != nil {
		return nil, err
	}
	b64 := func(b []byte) string { return encodeB64(b) }
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: sluice-testenv
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: sluice-testenv
  context:
    cluster: sluice-testenv
    user: %s
    namespace: default
current-context: sluice-testenv
`, server, b64(certPEM(ca.cert)), user, b64(certPEM(client.cert)), b64(kb), user)), nil
}
