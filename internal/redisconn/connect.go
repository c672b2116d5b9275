package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientName is what the tool calls itself in CLIENT LIST.
const ClientName = "resque-expire"

// defaultConnectTimeout bounds Open when Options.ConnectTimeout is zero.
const defaultConnectTimeout = 10 * time.Second

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// checkScheme refuses a --redis value without a scheme, such as
// 127.0.0.1:6379 or redis.internal:6379 (which url.Parse reads as the
// scheme "redis.internal"), with a message saying what to write.
func checkScheme(raw string) error {
	scheme, _, found := strings.Cut(raw, "://")
	if found {
		switch strings.ToLower(scheme) {
		case "redis", "rediss", "unix":
			return nil
		}
		return fmt.Errorf("bad --redis URL %s: unknown scheme %q: want redis://, rediss:// (TLS) or unix://", Redact(raw), scheme)
	}
	hint := "redis://HOST:PORT/DB"
	if r := Redact(raw); !strings.ContainsAny(r, "@/") && r == raw {
		hint = "redis://" + raw + "/0"
	}
	return fmt.Errorf("bad --redis URL %s: no scheme: write %s (rediss:// for TLS, unix:///path/to.sock for a socket)", Redact(raw), hint)
}

// checkSentinelFlags refuses Sentinel settings that would otherwise be
// ignored.
func checkSentinelFlags(o Options) error {
	switch {
	case o.SentinelMaster != "" && len(o.SentinelAddrs) == 0:
		return errors.New("--sentinel-master needs --sentinel-addrs")
	case o.SentinelMaster == "" && len(o.SentinelAddrs) > 0:
		return errors.New("--sentinel-addrs needs --sentinel-master (the name of the master the Sentinels monitor)")
	case o.SentinelMaster == "" && (o.SentinelPassword != "" || o.SentinelUsername != ""):
		return errors.New("--sentinel-password and --sentinel-username need --sentinel-master and --sentinel-addrs")
	}
	return nil
}

// setClientName names the connection in CLIENT LIST. It is best-effort: an
// ACL user without +client|setname still gets to work (the name is a
// convenience for whoever reads CLIENT LIST, not something the tool needs).
// Other errors (the connection broke) fail the connection as usual.
func setClientName(ctx context.Context, cn *redis.Conn) error {
	err := cn.ClientSetName(ctx, ClientName).Err()
	if err != nil && isNoPerm(err) {
		return nil
	}
	return err
}

func isNoPerm(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "NOPERM")
}

// noPermCommand finds the command in Redis's NOPERM message, "NOPERM this
// user has no permissions to run the 'client|setname' command" (Redis 7;
// Redis 6 says "User x has no permissions ...").
var noPermCommand = regexp.MustCompile(`permissions to run the '([^']+)' command`)

// explainNoPerm turns a NOPERM reply into which permission is missing.
func explainNoPerm(err error) error {
	m := noPermCommand.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("the Redis user lacks a permission the tool needs: %w", err)
	}
	cmd := strings.ToLower(m[1])
	return fmt.Errorf("the Redis user may not run %s (grant +%s): %w", strings.ToUpper(strings.ReplaceAll(cmd, "|", " ")), cmd, err)
}

// explain turns a failed PING into a message naming the cause. target is
// the TCP address of the Redis server ("" for a unix socket).
func explain(o Options, target string, err error, budget time.Duration) error {
	if isNoPerm(err) {
		return explainNoPerm(err)
	}
	tlsOn := usesTLS(o)
	msg := err.Error()
	if tlsOn && strings.Contains(msg, "first record does not look like a TLS handshake") {
		return fmt.Errorf("%s answered in plain text, not TLS: use a redis:// URL without --tls-* flags, or turn TLS on in the server", target)
	}
	timedOut := errors.Is(err, context.DeadlineExceeded) || isTimeout(err)
	if target != "" {
		probe := min(time.Second, budget)
		if tlsOn && (timedOut || isConnBroken(err)) && speaksPlainRedis(target, probe) {
			return fmt.Errorf("%s speaks plain-text Redis, not TLS: use a redis:// URL without --tls-* flags, or turn TLS on in the server", target)
		}
		if !tlsOn && (timedOut || isConnBroken(err) || strings.Contains(msg, "invalid reply")) && speaksTLS(target, probe) {
			return fmt.Errorf("%s expects TLS: use a rediss:// URL (and --tls-ca with the CA of its certificate)", target)
		}
	}
	if timedOut {
		where := target
		if where == "" {
			where = "Redis"
		}
		if tlsOn {
			return fmt.Errorf("no TLS handshake and PING with %s within %v (--timeout)", where, budget)
		}
		return fmt.Errorf("no answer from %s within %v (--timeout)", where, budget)
	}
	if o.SentinelMaster != "" && target != "" {
		return fmt.Errorf("the master Sentinel named, %s, said: %w", target, err)
	}
	return err
}

func usesTLS(o Options) bool {
	return strings.HasPrefix(strings.ToLower(o.URL), "rediss://") || o.TLSCA != "" || o.TLSCert != "" || o.TLSKey != "" || o.TLSSkipVerify
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isConnBroken: the other side closed or reset the connection.
func isConnBroken(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "EOF") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "broken pipe")
}

// speaksPlainRedis reports whether addr answers a plain-text PING like a
// Redis server (PONG, or an error such as NOAUTH).
func speaksPlainRedis(addr string, timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil {
		return false
	}
	return buf[0] == '+' || buf[0] == '-'
}

// speaksTLS reports whether addr completes a TLS handshake (without
// verifying the certificate: this only tells what protocol it speaks).
func speaksTLS(addr string, timeout time.Duration) bool {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // a protocol probe, nothing is sent
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// sentinelAnswer is one Sentinel's reply to GET-MASTER-ADDR-BY-NAME.
type sentinelAnswer struct {
	index  int
	addr   string
	master string // "host:port" on success
	err    error
}

// askSentinels asks every Sentinel for the master's address at once and
// returns the first answer. When none gives one it says why: no Sentinel
// knows the master name, a Sentinel refused the credentials, or none could
// be reached (each with its reason).
func askSentinels(ctx context.Context, o Options, budget time.Duration) (string, error) {
	opt, err := redis.ParseURL(orString(o.URL, DefaultURL))
	if err != nil {
		return "", err
	}
	var tlsCfg *tls.Config
	if usesTLS(o) {
		if tlsCfg, err = tlsConfig(o, opt.TLSConfig); err != nil {
			return "", err
		}
	}
	// Ask all at once; the first master address wins. Failures are
	// reported in the order the Sentinels were given.
	answers := make(chan sentinelAnswer, len(o.SentinelAddrs))
	got := make([]sentinelAnswer, len(o.SentinelAddrs))
	for i, addr := range o.SentinelAddrs {
		go func() {
			a := askSentinel(ctx, o, opt, addr, tlsCfg, budget)
			a.index = i
			answers <- a
		}()
	}
	for range o.SentinelAddrs {
		a := <-answers
		if a.err == nil {
			return a.master, nil
		}
		got[a.index] = a
	}
	var unknown []string
	var auth, other reasons
	for _, a := range got {
		switch {
		case errors.Is(a.err, redis.Nil):
			unknown = append(unknown, a.addr)
		case isAuthError(a.err):
			auth.add(a.addr, explainSentinelAuth(o, opt, a.err))
		case isNoPerm(a.err):
			auth.add(a.addr, strings.Replace(explainNoPerm(a.err).Error(), "the Redis user", "the Sentinel user", 1))
		default:
			other.add(a.addr, a.err.Error())
		}
	}
	switch {
	case len(unknown) > 0:
		msg := fmt.Sprintf("no Sentinel knows a master named %q (asked %s): check --sentinel-master", o.SentinelMaster, strings.Join(unknown, ", "))
		if rest := append(auth.list(), other.list()...); len(rest) > 0 {
			msg += "; the other Sentinels failed: " + strings.Join(rest, "; ")
		}
		return "", errors.New(msg)
	case len(auth.order) > 0:
		return "", errors.New("Sentinel refused the connection: " + strings.Join(append(auth.list(), other.list()...), "; "))
	default:
		return "", fmt.Errorf("no Sentinel answered: %s", strings.Join(other.list(), "; "))
	}
}

// reasons groups Sentinel addresses by the reason they failed, so that
// three Sentinels refusing a password make one clause, not three.
type reasons struct {
	order []string
	addrs map[string][]string
}

func (r *reasons) add(addr, reason string) {
	if r.addrs == nil {
		r.addrs = map[string][]string{}
	}
	if _, ok := r.addrs[reason]; !ok {
		r.order = append(r.order, reason)
	}
	r.addrs[reason] = append(r.addrs[reason], addr)
}

func (r *reasons) list() []string {
	out := make([]string, 0, len(r.order))
	for _, reason := range r.order {
		out = append(out, strings.Join(r.addrs[reason], ", ")+": "+reason)
	}
	return out
}

// askSentinel asks one Sentinel, giving up when ctx ends (a TLS handshake
// with a silent peer would otherwise wait for the dial timeout).
func askSentinel(ctx context.Context, o Options, opt *redis.Options, addr string, tlsCfg *tls.Config, budget time.Duration) sentinelAnswer {
	user, pass, _ := sentinelAuth(o, opt)
	c := redis.NewSentinelClient(&redis.Options{
		Addr:            addr,
		Username:        user,
		Password:        pass,
		TLSConfig:       tlsCfg,
		DialTimeout:     min(orDefault(o.DialTimeout, 5*time.Second), budget),
		ReadTimeout:     budget,
		WriteTimeout:    budget,
		MaxRetries:      -1,
		DialerRetries:   1,
		PoolSize:        1,
		DisableIdentity: true,
	})
	done := make(chan sentinelAnswer, 1)
	go func() {
		defer c.Close()
		hp, err := c.GetMasterAddrByName(ctx, o.SentinelMaster).Result()
		if err == nil && len(hp) != 2 {
			err = fmt.Errorf("unexpected reply %q", hp)
		}
		if err != nil {
			done <- sentinelAnswer{addr: addr, err: err}
			return
		}
		done <- sentinelAnswer{addr: addr, master: net.JoinHostPort(hp[0], hp[1])}
	}()
	select {
	case a := <-done:
		if a.err != nil && (errors.Is(a.err, context.DeadlineExceeded) || isTimeout(a.err)) {
			a.err = fmt.Errorf("no answer within %v (--timeout)", budget)
		}
		return a
	case <-ctx.Done():
		return sentinelAnswer{addr: addr, err: fmt.Errorf("no answer within %v (--timeout)", budget)}
	}
}

func isAuthError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "NOAUTH") || strings.HasPrefix(msg, "WRONGPASS") ||
		strings.Contains(msg, "without any password configured") || strings.Contains(msg, "invalid password") ||
		strings.Contains(msg, "invalid username-password pair")
}

// sentinelAuth returns the credentials the Sentinels are sent:
// --sentinel-username/--sentinel-password when either is given; otherwise
// the --redis URL's password as the default user's (fromURL), which keeps
// working the two common setups without a flag: Sentinels without a
// password (the default user then accepts any) and Sentinels that share
// the master's password. The URL's user name is not sent: a Sentinel
// without a password has no such user and would refuse it.
func sentinelAuth(o Options, opt *redis.Options) (user, pass string, fromURL bool) {
	if o.SentinelUsername != "" || o.SentinelPassword != "" {
		return o.SentinelUsername, o.SentinelPassword, false
	}
	return "", opt.Password, opt.Password != ""
}

// explainSentinelAuth says which credentials a Sentinel refused. The reply
// texts never contain the password itself.
func explainSentinelAuth(o Options, opt *redis.Options, err error) string {
	msg := err.Error()
	_, pass, fromURL := sentinelAuth(o, opt)
	switch {
	case strings.Contains(msg, "without any password configured"):
		return "it has no password, but --sentinel-password was given: " + msg
	case pass == "":
		return "it requires a password: give it with --sentinel-password or REDIS_SENTINEL_PASSWORD (the --redis URL's password is the master's): " + msg
	case fromURL:
		return "it refused the --redis URL's password, which the Sentinels are sent when --sentinel-password is not given: give theirs with --sentinel-password or REDIS_SENTINEL_PASSWORD: " + msg
	default:
		return "it refused --sentinel-username/--sentinel-password: " + msg
	}
}
