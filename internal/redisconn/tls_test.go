package redisconn_test

// TLS verification tests against an in-process TLS listener that speaks just
// enough RESP for go-redis's handshake and PING. Every certificate and key is
// generated at test time into t.TempDir(); none is committed.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redisconn"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate for 127.0.0.1/localhost (server and client
// auth) and returns it as a tls.Certificate and as PEM files in dir.
func (ca *testCA) issue(t *testing.T, dir, name string) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	certFile := writeFile(t, dir, name+".crt", certPEM)
	keyFile := writeFile(t, dir, name+".key", keyPEM)
	return pair, certFile, keyFile
}

func serial(t *testing.T) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeRedis is a TLS listener answering HELLO with an error (so go-redis
// falls back to RESP2), PING with PONG and anything else with OK. It records
// the outcome of every TLS handshake.
type fakeRedis struct {
	ln    net.Listener
	mu    sync.Mutex
	hs    []error
	wg    sync.WaitGroup
	pings int
}

func startFakeRedis(t *testing.T, cfg *tls.Config) *fakeRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRedis{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(tls.Server(c, cfg))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeRedis) addr() string { return f.ln.Addr().String() }

func (f *fakeRedis) handshakes() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]error(nil), f.hs...)
}

func (f *fakeRedis) pingCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pings
}

func (f *fakeRedis) serve(c *tls.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	err := c.Handshake()
	f.mu.Lock()
	f.hs = append(f.hs, err)
	f.mu.Unlock()
	if err != nil {
		return
	}
	r := bufio.NewReader(c)
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		var reply string
		switch strings.ToUpper(args[0]) {
		case "HELLO":
			reply = "-ERR unknown command 'HELLO'\r\n"
		case "PING":
			f.mu.Lock()
			f.pings++
			f.mu.Unlock()
			reply = "+PONG\r\n"
		default:
			reply = "+OK\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad array header %q", line)
	}
	args := make([]string, 0, n)
	for i := 0; i < n; i++ {
		h, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		h = strings.TrimRight(h, "\r\n")
		if !strings.HasPrefix(h, "$") {
			return nil, fmt.Errorf("not a bulk string: %q", h)
		}
		size, err := strconv.Atoi(h[1:])
		if err != nil || size < 0 {
			return nil, fmt.Errorf("bad bulk header %q", h)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args = append(args, string(buf[:size]))
	}
	return args, nil
}

// tlsFixture is a server CA with a server certificate, and an unrelated CA.
type tlsFixture struct {
	dir                       string
	serverCA                  *testCA
	otherCA                   *testCA
	serverCert                tls.Certificate
	serverCAFile, otherCAFile string
}

func newTLSFixture(t *testing.T) *tlsFixture {
	t.Helper()
	dir := t.TempDir()
	fx := &tlsFixture{dir: dir, serverCA: newTestCA(t, "resque-expire test server CA"), otherCA: newTestCA(t, "resque-expire test other CA")}
	fx.serverCert, _, _ = fx.serverCA.issue(t, dir, "server")
	fx.serverCAFile = writeFile(t, dir, "server-ca.pem", fx.serverCA.certPEM)
	fx.otherCAFile = writeFile(t, dir, "other-ca.pem", fx.otherCA.certPEM)
	return fx
}

func (fx *tlsFixture) serverConfig() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{fx.serverCert}, MinVersion: tls.VersionTLS12}
}

func open(t *testing.T, o redisconn.Options) error {
	t.Helper()
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	o.MaxRetries = -1
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb, err := redisconn.Open(ctx, o)
	if err == nil {
		_ = rdb.Close()
	}
	return err
}

func isX509Error(err error) bool {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var hn x509.HostnameError
	var tv *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &hn) || errors.As(err, &tv) ||
		strings.Contains(err.Error(), "x509:")
}

// A server certificate signed by a CA other than --tls-ca is refused with
// one line naming the x509 failure.
func TestTLSWrongCARefused(t *testing.T) {
	fx := newTLSFixture(t)
	srv := startFakeRedis(t, fx.serverConfig())
	for _, url := range []string{"rediss://" + srv.addr() + "/0", "redis://" + srv.addr() + "/0"} {
		err := open(t, redisconn.Options{URL: url, TLSCA: fx.otherCAFile})
		if err == nil {
			t.Fatalf("%s with the wrong CA: connected", url)
		}
		if !isX509Error(err) || !strings.Contains(err.Error(), "x509") {
			t.Errorf("%s: want an x509 verification error, got %v", url, err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", url, err)
		}
		if srv.pingCount() != 0 {
			t.Errorf("%s: PING reached an unverified server", url)
		}
	}
}

// With no --tls-ca a rediss:// URL verifies against the system roots, which
// do not know the throwaway CA.
func TestTLSSystemRootsRefuseUnknownCA(t *testing.T) {
	fx := newTLSFixture(t)
	srv := startFakeRedis(t, fx.serverConfig())
	err := open(t, redisconn.Options{URL: "rediss://" + srv.addr() + "/0"})
	if err == nil || !isX509Error(err) {
		t.Fatalf("want an x509 error, got %v", err)
	}
}

// The right CA verifies the server and PING goes through.
func TestTLSRightCAAccepted(t *testing.T) {
	fx := newTLSFixture(t)
	srv := startFakeRedis(t, fx.serverConfig())
	if err := open(t, redisconn.Options{URL: "rediss://" + srv.addr() + "/0", TLSCA: fx.serverCAFile}); err != nil {
		t.Fatalf("right CA: %v", err)
	}
	if srv.pingCount() == 0 {
		t.Error("no PING reached the server")
	}
}

// --tls-skip-verify completes the handshake with a certificate from an
// unknown CA (and, with it, even against the wrong --tls-ca).
func TestTLSSkipVerifyHandshakes(t *testing.T) {
	fx := newTLSFixture(t)
	srv := startFakeRedis(t, fx.serverConfig())
	for _, o := range []redisconn.Options{
		{URL: "rediss://" + srv.addr() + "/0", TLSSkipVerify: true},
		{URL: "redis://" + srv.addr() + "/0", TLSSkipVerify: true, TLSCA: fx.otherCAFile},
	} {
		if err := open(t, o); err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
	}
	hs := srv.handshakes()
	if len(hs) == 0 {
		t.Fatal("no handshake reached the server")
	}
	for _, err := range hs {
		if err != nil {
			t.Errorf("server-side handshake failed: %v", err)
		}
	}
}

// The server's name is checked: a certificate for 127.0.0.1 does not
// verify when the URL names another host that resolves to it.
func TestTLSHostnameChecked(t *testing.T) {
	fx := newTLSFixture(t)
	// A certificate for another name only, signed by the right CA.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{CommonName: "elsewhere"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{"redis.elsewhere.invalid"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, fx.serverCA.cert, &key.PublicKey, fx.serverCA.key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	srv := startFakeRedis(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	err = open(t, redisconn.Options{URL: "rediss://" + srv.addr() + "/0", TLSCA: fx.serverCAFile})
	var hn x509.HostnameError
	if err == nil || !errors.As(err, &hn) && !strings.Contains(err.Error(), "x509") {
		t.Fatalf("want a hostname verification error, got %v", err)
	}
}

// A server that requires client certificates accepts --tls-cert/--tls-key
// from its CA and refuses a client without one.
func TestTLSClientCertificate(t *testing.T) {
	fx := newTLSFixture(t)
	_, certFile, keyFile := fx.serverCA.issue(t, fx.dir, "client")
	pool := x509.NewCertPool()
	pool.AddCert(fx.serverCA.cert)
	cfg := fx.serverConfig()
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = pool
	srv := startFakeRedis(t, cfg)
	url := "rediss://" + srv.addr() + "/0"
	if err := open(t, redisconn.Options{URL: url, TLSCA: fx.serverCAFile, TLSCert: certFile, TLSKey: keyFile}); err != nil {
		t.Fatalf("with a client certificate: %v", err)
	}
	if err := open(t, redisconn.Options{URL: url, TLSCA: fx.serverCAFile}); err == nil {
		t.Fatal("without a client certificate: connected")
	} else if strings.Contains(err.Error(), "\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// Bad TLS files are refused before any connection, with one line each.
func TestTLSBadFiles(t *testing.T) {
	fx := newTLSFixture(t)
	notPEM := writeFile(t, fx.dir, "not.pem", []byte("hello, not a certificate\n"))
	_, certFile, keyFile := fx.serverCA.issue(t, fx.dir, "client")
	cases := []struct {
		name string
		o    redisconn.Options
		want string
	}{
		{"missing CA file", redisconn.Options{TLSCA: filepath.Join(fx.dir, "nope.pem")}, "--tls-ca"},
		{"CA file not PEM", redisconn.Options{TLSCA: notPEM}, "no PEM certificates"},
		{"cert without key", redisconn.Options{TLSCert: certFile}, "go together"},
		{"key without cert", redisconn.Options{TLSKey: keyFile}, "go together"},
		{"cert and key mismatch", redisconn.Options{TLSCert: certFile, TLSKey: notPEM}, "--tls-cert/--tls-key"},
	}
	for _, tc := range cases {
		tc.o.URL = "rediss://127.0.0.1:1/0"
		_, err := redisconn.New(tc.o)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: want one line mentioning %q, got %q", tc.name, tc.want, err)
		}
	}
}
