// Package redisconn owns connecting to the operator's Redis: it turns the
// --redis URL, TLS files and Sentinel settings into a go-redis client, and it
// keeps credentials out of everything the tool prints (Redact, RedactError).
package redisconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is used when no --redis is given.
const DefaultURL = "redis://127.0.0.1:6379/0"

// Options describe how to reach Redis.
type Options struct {
	// URL is redis://[user:password@]host:port/db, rediss:// for TLS, or
	// unix://[user:password@]/path/to.sock?db=N.
	URL string
	// TLS files and switches (rediss:// or any of them turns TLS on).
	TLSCA, TLSCert, TLSKey string
	TLSSkipVerify          bool
	// Sentinel: when SentinelMaster is set, SentinelAddrs are asked for the
	// master's address; the master's user, password and db still come from
	// URL. The Sentinels get their own credentials, SentinelUsername and
	// SentinelPassword; when both are empty they are sent the URL's
	// password without its user name (see sentinelAuth).
	SentinelMaster                     string
	SentinelAddrs                      []string
	SentinelUsername, SentinelPassword string
	// ConnectTimeout bounds Open as a whole: Sentinel lookup, dial, TLS
	// handshake, AUTH and PING (zero means 10s). The dial timeout defaults
	// to the smaller of 5s and ConnectTimeout.
	ConnectTimeout time.Duration
	// Timeouts (zero means the defaults below).
	DialTimeout, ReadTimeout, WriteTimeout time.Duration
	// MaxRetries for commands on network errors (go-redis retries with
	// backoff); 0 means 3, negative disables.
	MaxRetries int
}

// Open builds a client and checks it with PING, so that a wrong address,
// password or permission fails here with one line naming the cause. It
// returns within Options.ConnectTimeout (plus at most a second to find out
// why, when the time ran out): a TLS handshake with a plain-text port, a
// Sentinel that accepts connections but never answers and a server that
// stalls all end as an error, not a hang.
//
// With Sentinel, every Sentinel is first asked for the master itself
// (SENTINEL GET-MASTER-ADDR-BY-NAME), so that an unknown master name, a
// Sentinel that wants a password and a Sentinel that cannot be reached are
// told apart (go-redis reports all three as "all sentinels are
// unreachable").
func Open(ctx context.Context, o Options) (redis.UniversalClient, error) {
	rdb, err := New(o)
	if err != nil {
		return nil, err
	}
	budget := defaultConnectTimeout
	if o.ConnectTimeout > 0 {
		budget = o.ConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	fail := func(err error) (redis.UniversalClient, error) {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to %s: %w", Describe(o), RedactError(err, o.URL))
	}

	target := ""
	if o.SentinelMaster != "" {
		addr, err := askSentinels(ctx, o, budget)
		if err != nil {
			return fail(err)
		}
		target = addr
	} else if opt, err := redis.ParseURL(orString(o.URL, DefaultURL)); err == nil && opt.Network == "tcp" {
		target = opt.Addr
	}

	// go-redis does not bound a TLS handshake by the context, and retries
	// the dial: wait for the context, not for go-redis.
	done := make(chan error, 1)
	go func() { done <- rdb.Ping(ctx).Err() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		return rdb, nil
	}
	return fail(explain(o, target, err, budget))
}

// New builds a client without contacting Redis.
func New(o Options) (redis.UniversalClient, error) {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if err := checkScheme(o.URL); err != nil {
		return nil, err
	}
	if err := checkSentinelFlags(o); err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("bad --redis URL %s: %w", Redact(o.URL), RedactError(err, o.URL))
	}
	if o.TLSCA != "" || o.TLSCert != "" || o.TLSKey != "" || o.TLSSkipVerify {
		cfg, err := tlsConfig(o, opt.TLSConfig)
		if err != nil {
			return nil, err
		}
		opt.TLSConfig = cfg
	}
	dial := 5 * time.Second
	if o.ConnectTimeout > 0 {
		dial = min(dial, o.ConnectTimeout)
	}
	opt.DialTimeout = orDefault(o.DialTimeout, dial)
	opt.ReadTimeout = orDefault(o.ReadTimeout, 10*time.Second)
	opt.WriteTimeout = orDefault(o.WriteTimeout, 10*time.Second)
	switch {
	case o.MaxRetries == 0:
		opt.MaxRetries = 3
	default:
		opt.MaxRetries = o.MaxRetries
	}
	opt.MinRetryBackoff = 50 * time.Millisecond
	opt.MaxRetryBackoff = 2 * time.Second
	// The tool works one command at a time; a small pool is plenty.
	opt.PoolSize = 4
	// The client name (CLIENT LIST shows resque-expire) is set best-effort
	// by setClientName, not by go-redis, which fails the connection when
	// the ACL user may not run CLIENT SETNAME.
	opt.OnConnect = setClientName
	opt.DisableIdentity = true

	busy := busyRetry{within: opt.ReadTimeout}
	if o.SentinelMaster == "" {
		c := redis.NewClient(opt)
		c.AddHook(busy)
		return c, nil
	}
	sentinelUser, sentinelPass, _ := sentinelAuth(o, opt)
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:       o.SentinelMaster,
		SentinelAddrs:    o.SentinelAddrs,
		Username:         opt.Username,
		Password:         opt.Password,
		SentinelUsername: sentinelUser,
		SentinelPassword: sentinelPass,
		DB:               opt.DB,
		TLSConfig:        opt.TLSConfig,
		DialTimeout:      opt.DialTimeout,
		ReadTimeout:      opt.ReadTimeout,
		WriteTimeout:     opt.WriteTimeout,
		MaxRetries:       opt.MaxRetries,
		MinRetryBackoff:  opt.MinRetryBackoff,
		MaxRetryBackoff:  opt.MaxRetryBackoff,
		PoolSize:         opt.PoolSize,
		OnConnect:        opt.OnConnect,
		DisableIdentity:  true,
	})
	c.AddHook(busy)
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func tlsConfig(o Options, base *tls.Config) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	if cfg.ServerName == "" {
		if u, err := url.Parse(o.URL); err == nil && u.Hostname() != "" {
			cfg.ServerName = u.Hostname()
		}
	}
	if o.TLSCA != "" {
		pem, err := os.ReadFile(o.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificates found", o.TLSCA)
		}
		cfg.RootCAs = pool
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if o.TLSCert != "" {
		pair, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	cfg.InsecureSkipVerify = o.TLSSkipVerify //nolint:gosec // the operator asked for it
	return cfg, nil
}

// Describe names the Redis the options point at, without credentials.
func Describe(o Options) string {
	u := o.URL
	if u == "" {
		u = DefaultURL
	}
	if o.SentinelMaster != "" {
		return fmt.Sprintf("sentinel master %q via %s (%s)", o.SentinelMaster, strings.Join(o.SentinelAddrs, ","), Redact(u))
	}
	return Redact(u)
}

// Redact returns raw with any password replaced by "xxxxx". raw may be a URL
// or any other string; unparseable URLs have their userinfo cut out by hand.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			return u.String()
		}
		if u.User.Username() != "" && u.Scheme != "" {
			// redis://secret@host puts the password where the user goes.
			u.User = url.User("xxxxx")
			return u.String()
		}
		return u.String()
	}
	// Fall back: cut anything between "://" (the start, without a scheme)
	// and the last "@" before the host.
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 {
		start = i + 3
	}
	if j := strings.LastIndex(raw[start:], "@"); j >= 0 {
		return raw[:start] + "xxxxx@" + raw[start+j+1:]
	}
	return raw
}

// Secrets returns the credentials contained in a Redis URL, so that they can
// be scrubbed from any text.
func Secrets(raw string) []string {
	var out []string
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		p, has := u.User.Password()
		if !has || p == "" {
			p = u.User.Username() // redis://secret@host
		}
		if p != "" {
			out = append(out, p, url.QueryEscape(p), url.PathEscape(p))
		}
	} else {
		start := 0
		if i := strings.Index(raw, "://"); i >= 0 {
			start = i + 3
		}
		if j := strings.LastIndex(raw[start:], "@"); j >= 0 {
			cred := raw[start : start+j]
			if k := strings.IndexByte(cred, ':'); k >= 0 {
				cred = cred[k+1:]
			}
			if cred != "" {
				out = append(out, cred)
			}
		}
	}
	return out
}

// Scrub redacts credentials in s by where they stand, never by replacing
// every occurrence of a secret: a short password such as "re" also occurs
// in "redis", and turning that into "xxxxxdis" hides nothing and tells the
// reader the password. An occurrence of one of secrets (the forms Secrets
// returns) is replaced by "xxxxx" when it is
//
//   - a URL's userinfo: right before "@", after "//", ":", a quote, "=",
//     whitespace or the start of s (scheme://user:SECRET@host, SECRET@host);
//   - an AUTH argument: right after "auth " or "auth USER " (any case),
//     as go-redis and Redis spell the command;
//   - a whole word: between whitespace (or the start or end of s),
//     optionally in parentheses or before ",", ";" or ":".
//
// Then every URL in s that still carries a user:password pair has the
// password replaced, whatever it is.
func Scrub(s string, secrets ...string) string {
	secrets = append([]string(nil), secrets...)
	// Longest first, so that a secret inside another one cannot leave the
	// rest of the longer one behind.
	sort.SliceStable(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	for _, sec := range secrets {
		if sec == "" || sec == redacted {
			continue
		}
		var b strings.Builder
		rest, done := s, 0
		for {
			k := strings.Index(s[done:], sec)
			if k < 0 {
				break
			}
			i, j := done+k, done+k+len(sec)
			if credentialAt(s, i, j) {
				b.WriteString(s[len(s)-len(rest) : i])
				b.WriteString(redacted)
				rest = s[j:]
				done = j
			} else {
				done = i + 1
			}
		}
		if b.Len() > 0 {
			b.WriteString(rest)
			s = b.String()
		}
	}
	return urlUserinfo.ReplaceAllString(s, "${1}"+redacted+"@")
}

const redacted = "xxxxx"

// urlUserinfo matches scheme://user:password@ in running text.
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@"'<>:]*:)[^\s/?#@"'<>]+@`)

// credentialAt reports whether s[i:j] stands where a credential stands.
func credentialAt(s string, i, j int) bool {
	before := byte(' ') // the start of s counts as whitespace
	if i > 0 {
		before = s[i-1]
	}
	after := byte(' ')
	if j < len(s) {
		after = s[j]
	}
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	switch {
	case after == '@' && (isSpace(before) || strings.IndexByte(":/\"'=", before) >= 0):
		return true // userinfo
	case isAuthArgument(s[:i]) && (isSpace(after) || strings.IndexByte(")\"',;:", after) >= 0):
		return true
	case (isSpace(before) || before == '(') && (isSpace(after) || strings.IndexByte("),;:", after) >= 0):
		return true // a word of its own
	}
	return false
}

// isAuthArgument reports whether prefix ends with "auth " or "auth USER ".
func isAuthArgument(prefix string) bool {
	p := strings.ToLower(prefix)
	endsWithAuth := func(p string) bool {
		if !strings.HasSuffix(p, "auth ") {
			return false
		}
		k := len(p) - len("auth ")
		return k == 0 || !(p[k-1] >= 'a' && p[k-1] <= 'z') // not "oauth "
	}
	if endsWithAuth(p) {
		return true
	}
	// "auth USER ": drop the space and the user name before it.
	if !strings.HasSuffix(p, " ") {
		return false
	}
	p = strings.TrimSuffix(p, " ")
	k := strings.LastIndexAny(p, " \t\n")
	if k < 0 || k == len(p)-1 {
		return false
	}
	return endsWithAuth(p[:k+1])
}

// RedactError returns err with the URL's credentials scrubbed from its text.
// It keeps the original for errors.Is/As.
func RedactError(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	secrets := Secrets(rawURL)
	if len(secrets) == 0 {
		return err
	}
	msg := Scrub(err.Error(), secrets...)
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
