package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/redisconn"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/report"
)

const (
	catConn   = "Redis connection"
	catLayout = "Key layout"
	catOutput = "Output"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "redis", Value: redisconn.DefaultURL, EnvVars: []string{"REDIS_URL"}, Category: catConn,
			Usage: "Redis URL: redis://[user:password@]host:port/db, rediss:// for TLS, unix:///path.sock?db=N"},
		&cli.StringFlag{Name: "tls-ca", EnvVars: []string{"REDIS_TLS_CA"}, Category: catConn, Usage: "PEM file of CAs to verify the server with"},
		&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"REDIS_TLS_CERT"}, Category: catConn, Usage: "PEM client certificate"},
		&cli.StringFlag{Name: "tls-key", EnvVars: []string{"REDIS_TLS_KEY"}, Category: catConn, Usage: "PEM client key"},
		&cli.BoolFlag{Name: "tls-skip-verify", EnvVars: []string{"REDIS_TLS_SKIP_VERIFY"}, Category: catConn, Usage: "do not verify the server certificate (testing only)"},
		&cli.StringFlag{Name: "sentinel-master", EnvVars: []string{"REDIS_SENTINEL_MASTER"}, Category: catConn, Usage: "ask Sentinel for this master (the master's user/password/db come from --redis)"},
		&cli.StringFlag{Name: "sentinel-addrs", EnvVars: []string{"REDIS_SENTINEL_ADDRS"}, Category: catConn, Usage: "comma-separated Sentinel addresses, host:port"},
		&cli.StringFlag{Name: "sentinel-username", EnvVars: []string{"REDIS_SENTINEL_USERNAME"}, Category: catConn, Usage: "ACL user for the Sentinels (not the master's; see docs/connections.md)"},
		&cli.StringFlag{Name: "sentinel-password", EnvVars: []string{"REDIS_SENTINEL_PASSWORD"}, Category: catConn,
			Usage: "the Sentinels' own password (the master's comes from --redis); prefer the environment variable"},
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, EnvVars: []string{"RESQUE_EXPIRE_TIMEOUT"}, Category: catConn, Usage: "read/write timeout of one Redis call, and the time allowed to connect"},

		&cli.StringFlag{Name: "namespace", Value: "resque", EnvVars: []string{"RESQUE_NAMESPACE"}, Category: catLayout, Usage: "Resque key namespace; every key is <ns>:..."},
		&cli.StringSliceFlag{Name: "id-path", EnvVars: []string{"RESQUE_EXPIRE_ID_PATH"}, Category: catLayout,
			Usage: "where a job's id is in its payload, first match wins; dotted, numbers index arrays (default: id, jid, args.0.job_id)"},
		&cli.StringFlag{Name: "expiration-key", Value: resque.DefaultExpirationTemplate, EnvVars: []string{"RESQUE_EXPIRATION_KEY"}, Category: catLayout, Usage: "template of a job's deadline key"},
		&cli.IntFlag{Name: "batch", Value: inspect.DefaultBatch, EnvVars: []string{"RESQUE_EXPIRE_BATCH"}, Category: catLayout, Usage: fmt.Sprintf("jobs read per LRANGE page (at most %d)", inspect.MaxBatch)},

		&cli.StringFlag{Name: "format", Aliases: []string{"o"}, Value: "table", EnvVars: []string{"RESQUE_EXPIRE_FORMAT"}, Category: catOutput, Usage: "result format: table, json, jsonl, csv"},
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"RESQUE_EXPIRE_LOG_LEVEL"}, Category: catOutput, Usage: "debug, info, warn, error"},
		&cli.StringFlag{Name: "log-format", Value: "auto", EnvVars: []string{"RESQUE_EXPIRE_LOG_FORMAT"}, Category: catOutput, Usage: "auto (console on a terminal, JSON otherwise), console, json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, EnvVars: []string{"RESQUE_EXPIRE_QUIET"}, Category: catOutput, Usage: "only warnings and errors on stderr, no progress"},
		&cli.BoolFlag{Name: "no-progress", EnvVars: []string{"RESQUE_EXPIRE_NO_PROGRESS"}, Category: catOutput, Usage: "never show a progress bar"},
	}
}

// env is what every command gets from the global flags.
type env struct {
	c      *cli.Context
	log    zerolog.Logger
	format report.Format
	stdout io.Writer
	stderr io.Writer
	conn   redisconn.Options
	layout resque.Layout
	// scan is the scanner configuration; commands add their filters.
	scan       inspect.Config
	progressOK bool
	secrets    []string
}

func setup(c *cli.Context) (*env, error) {
	format, err := report.ParseFormat(c.String("format"))
	if err != nil {
		return nil, usageErrorf("--format: %v", err)
	}
	e := &env{c: c, format: format, stdout: c.App.Writer}
	e.conn = redisconn.Options{
		URL: c.String("redis"), TLSCA: c.String("tls-ca"), TLSCert: c.String("tls-cert"), TLSKey: c.String("tls-key"),
		TLSSkipVerify: c.Bool("tls-skip-verify"), SentinelMaster: c.String("sentinel-master"),
		SentinelUsername: c.String("sentinel-username"), SentinelPassword: c.String("sentinel-password"),
		ReadTimeout: c.Duration("timeout"), WriteTimeout: c.Duration("timeout"), ConnectTimeout: c.Duration("timeout"),
	}
	if a := c.String("sentinel-addrs"); a != "" {
		for _, s := range strings.Split(a, ",") {
			if s = strings.TrimSpace(s); s != "" {
				e.conn.SentinelAddrs = append(e.conn.SentinelAddrs, s)
			}
		}
	}
	e.secrets = redisconn.Secrets(e.conn.URL)
	e.stderr = &scrubWriter{w: c.App.ErrWriter, secrets: e.secrets}

	level, err := zerolog.ParseLevel(c.String("log-level"))
	if err != nil || c.String("log-level") == "" {
		return nil, usageErrorf("--log-level: want debug, info, warn or error, got %q", c.String("log-level"))
	}
	if c.Bool("quiet") && level < zerolog.WarnLevel {
		level = zerolog.WarnLevel
	}
	var logOut io.Writer
	switch lf := c.String("log-format"); lf {
	case "json":
		logOut = e.stderr
	case "console":
		logOut = zerolog.ConsoleWriter{Out: e.stderr, TimeFormat: time.RFC3339, NoColor: !isTerminal(c.App.ErrWriter)}
	case "auto":
		if isTerminal(c.App.ErrWriter) {
			logOut = zerolog.ConsoleWriter{Out: e.stderr, TimeFormat: time.Kitchen}
		} else {
			logOut = e.stderr
		}
	default:
		return nil, usageErrorf("--log-format: want auto, console or json, got %q", lf)
	}
	e.log = zerolog.New(logOut).Level(level).With().Timestamp().Logger()
	redis.SetLogger(redisLogger{e.log})
	e.progressOK = !c.Bool("quiet") && !c.Bool("no-progress") && isTerminal(c.App.ErrWriter)

	e.layout, err = resque.NewLayout(c.String("namespace"), c.String("expiration-key"))
	if err != nil {
		return nil, usageErrorf("--expiration-key: %v", err)
	}
	if b := c.Int("batch"); b < 1 || b > inspect.MaxBatch {
		return nil, usageErrorf("--batch must be between 1 and %d, got %d", inspect.MaxBatch, b)
	}
	e.scan = inspect.Config{Layout: e.layout, IDPaths: c.StringSlice("id-path"), Batch: c.Int("batch")}
	if _, err := resque.ParsePaths(e.scan.IDPaths); err != nil {
		return nil, usageErrorf("--id-path: %v", err)
	}
	if _, err := redisconn.New(e.conn); err != nil { // validate the URL before any work
		return nil, withCode(ExitUsage, err)
	}
	return e, nil
}

// connect opens the Redis connection (PING included), within --timeout.
func (e *env) connect() (redis.UniversalClient, error) {
	rdb, err := redisconn.Open(e.c.Context, e.conn)
	if err != nil {
		return nil, err
	}
	e.log.Debug().Str("redis", redisconn.Describe(e.conn)).Msg("connected")
	return rdb, nil
}

// scanner connects and builds a scanner with the given filters.
func (e *env) scanner(rdb redis.UniversalClient, queues, classes []string) (*inspect.Scanner, error) {
	cfg := e.scan
	cfg.Queues, cfg.Classes = queues, classes
	s, err := inspect.NewScanner(rdb, cfg)
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	return s, nil
}

// render writes a result to stdout in the chosen format.
func (e *env) render(r report.Result) error { return report.Render(e.stdout, e.format, r) }

// progress returns a progress reporter for long work, or nil.
func (e *env) progress(label string) inspect.Progress {
	if !e.progressOK {
		return nil
	}
	return &lazyBar{label: label, w: e.stderr}
}

// lazyBar shows a progress bar only when the work is long (many jobs).
type lazyBar struct {
	label string
	w     io.Writer
	total int64
	bar   *progressbar.ProgressBar
}

// progressMinJobs is the amount of work below which no bar is shown.
const progressMinJobs = 20000

func (b *lazyBar) SetTotal(n int64) {
	b.total = n
	if n >= progressMinJobs && b.bar == nil {
		b.bar = progressbar.NewOptions64(n, progressbar.OptionSetWriter(b.w), progressbar.OptionSetDescription(b.label),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("jobs"),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish(),
			progressbar.OptionOnCompletion(func() { fmt.Fprint(b.w, "\r") }))
	} else if b.bar != nil {
		b.bar.ChangeMax64(n)
	}
}

func (b *lazyBar) Add(n int) {
	if b.bar != nil {
		_ = b.bar.Add(n)
	}
}

// Finish clears the bar.
func (b *lazyBar) Finish() {
	if b.bar != nil {
		_ = b.bar.Finish()
	}
}

func finishProgress(p inspect.Progress) {
	if b, ok := p.(*lazyBar); ok && b != nil {
		b.Finish()
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// redisLogger passes go-redis's own log lines (reconnects, dial failures)
// to ours at debug level, through the same credential scrubbing.
type redisLogger struct{ log zerolog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug().Str("component", "go-redis").Msgf(format, v...)
}

// scrubWriter removes credentials from everything written to stderr.
type scrubWriter struct {
	w       io.Writer
	secrets []string
}

func (s *scrubWriter) Write(p []byte) (int, error) {
	if len(s.secrets) == 0 {
		return s.w.Write(p)
	}
	if _, err := s.w.Write([]byte(redisconn.Scrub(string(p), s.secrets...))); err != nil {
		return 0, err
	}
	return len(p), nil
}
