package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
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
	catFleet  = "Many targets"
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
		durationFlag(cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, EnvVars: []string{"RESQUE_EXPIRE_TIMEOUT"}, Category: catConn, Usage: "read/write timeout of one Redis call, and the time allowed to connect"}),

		&cli.StringFlag{Name: "namespace", Value: "resque", EnvVars: []string{"RESQUE_NAMESPACE"}, Category: catLayout, Usage: "Resque key namespace; every key is <ns>:..."},
		&cli.StringSliceFlag{Name: "id-path", EnvVars: []string{"RESQUE_EXPIRE_ID_PATH"}, Category: catLayout,
			Usage: "where a job's id is in its payload, first match wins; dotted, numbers index arrays (default: id, jid, args.0.job_id)"},
		&cli.StringFlag{Name: "expiration-key", Value: resque.DefaultExpirationTemplate, EnvVars: []string{"RESQUE_EXPIRATION_KEY"}, Category: catLayout, Usage: "template of a job's deadline key"},
		&cli.IntFlag{Name: "batch", Value: inspect.DefaultBatch, EnvVars: []string{"RESQUE_EXPIRE_BATCH"}, Category: catLayout, Usage: fmt.Sprintf("jobs read per LRANGE page (at most %d)", inspect.MaxBatch)},

		&cli.StringFlag{Name: "targets", EnvVars: []string{"RESQUE_EXPIRE_TARGETS"}, Category: catFleet, Usage: "YAML file of Redis targets: run the command against each (docs/targets.md)"},
		&cli.StringSliceFlag{Name: "target", Category: catFleet, Usage: "with --targets: only the targets whose name matches this glob (repeatable)"},
		&cli.IntFlag{Name: "parallel", Value: 4, Category: catFleet, Usage: "with --targets: how many targets run at once"},
		&cli.StringFlag{Name: "format", Aliases: []string{"o"}, Value: "table", EnvVars: []string{"RESQUE_EXPIRE_FORMAT"}, Category: catOutput, Usage: "result format: table, json, jsonl, csv"},
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"RESQUE_EXPIRE_LOG_LEVEL"}, Category: catOutput, Usage: "debug, info, warn, error"},
		&cli.StringFlag{Name: "log-format", Value: "auto", EnvVars: []string{"RESQUE_EXPIRE_LOG_FORMAT"}, Category: catOutput, Usage: "auto (console on a terminal, JSON otherwise), console, json"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, EnvVars: []string{"RESQUE_EXPIRE_QUIET"}, Category: catOutput, Usage: "only warnings and errors on stderr, no progress"},
		&cli.BoolFlag{Name: "no-progress", EnvVars: []string{"RESQUE_EXPIRE_NO_PROGRESS"}, Category: catOutput, Usage: "never show a progress bar"},
	}
}

// env is what every command gets from the global flags; it holds nothing
// of urfave/cli's.
type env struct {
	// ctx is the run's context (cancelled by the first interrupt).
	ctx    context.Context
	log    zerolog.Logger
	format report.Format
	stdout io.Writer
	// stderr scrubs credentials from what it is given; rawStderr is the
	// stream behind it (for asking whether it is a terminal), stdin the
	// operator's answers.
	stderr, rawStderr io.Writer
	stdin             io.Reader
	// metricsPath is --metrics-file, for the commands that take it.
	metricsPath string
	conn        redisconn.Options
	layout      resque.Layout
	// scan is the scanner configuration; commands add their filters.
	scan       inspect.Config
	progressOK bool
	secrets    []string
	// skew is how far Redis's clock runs ahead of the host's, measured by
	// scanner; jobs are judged by Redis's clock.
	skew *time.Duration
	// logFormat turns a sink into the log format chosen (JSON or console).
	logFormat func(io.Writer) io.Writer
}

// bufferedLogger returns a logger like e.log that writes through a buffer,
// for lines logged in bulk (one per removed job), and the function that
// flushes it (call it when done; calling it again is harmless). The buffer
// is also written out every second, so a log being tailed does not fall
// behind.
func (e *env) bufferedLogger() (zerolog.Logger, func()) {
	b := &logBuffer{w: e.stderr, last: time.Now()}
	stop := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.flush()
			case <-stop:
				return
			}
		}
	}()
	done := func() {
		once.Do(func() { close(stop) })
		b.flush()
	}
	return zerolog.New(e.logFormat(b)).Level(e.log.GetLevel()).With().Timestamp().Logger(), done
}

// logBufferSize is how much logBuffer holds before it writes.
const logBufferSize = 64 << 10

// logBuffer collects whole log lines and writes them in bulk: when it holds
// logBufferSize bytes, when a line comes a second or more after the last
// write, and on flush. It never splits a line across two writes, so the
// credential scrubbing behind it sees every line whole. It is safe for
// concurrent use.
type logBuffer struct {
	mu   sync.Mutex
	w    io.Writer
	buf  []byte
	last time.Time
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf)+len(p) > logBufferSize {
		if err := b.writeOut(); err != nil {
			return 0, err
		}
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= logBufferSize || time.Since(b.last) >= time.Second {
		if err := b.writeOut(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (b *logBuffer) writeOut() error {
	b.last = time.Now()
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

func (b *logBuffer) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	_ = b.writeOut()
}

func setup(c *cli.Context) (*env, error) {
	format, err := report.ParseFormat(c.String("format"))
	if err != nil {
		return nil, usageErrorf("--format: %v", err)
	}
	e := &env{ctx: c.Context, format: format, stdout: c.App.Writer, rawStderr: c.App.ErrWriter, stdin: c.App.Reader,
		metricsPath: c.String("metrics-file"), conn: connOptions(c)}
	e.secrets = redisconn.Secrets(e.conn.URL)
	e.stderr = &scrubWriter{w: c.App.ErrWriter, secrets: e.secrets}
	if err := e.setupLog(c); err != nil {
		return nil, err
	}
	if err := e.setupLayout(c); err != nil {
		return nil, err
	}
	if _, err := redisconn.New(e.conn); err != nil { // validate the URL before any work
		return nil, usage(err)
	}
	return e, nil
}

// connOptions are the connection's global flags.
func connOptions(c *cli.Context) redisconn.Options {
	o := redisconn.Options{
		URL: c.String("redis"), TLSCA: c.String("tls-ca"), TLSCert: c.String("tls-cert"), TLSKey: c.String("tls-key"),
		TLSSkipVerify: c.Bool("tls-skip-verify"), SentinelMaster: c.String("sentinel-master"),
		SentinelUsername: c.String("sentinel-username"), SentinelPassword: c.String("sentinel-password"),
		ReadTimeout: c.Duration("timeout"), WriteTimeout: c.Duration("timeout"), ConnectTimeout: c.Duration("timeout"),
	}
	if a := c.String("sentinel-addrs"); a != "" {
		for _, s := range strings.Split(a, ",") {
			if s = strings.TrimSpace(s); s != "" {
				o.SentinelAddrs = append(o.SentinelAddrs, s)
			}
		}
	}
	return o
}

// setupLog reads --log-level, --log-format, --quiet and --no-progress.
func (e *env) setupLog(c *cli.Context) error {
	level, err := zerolog.ParseLevel(c.String("log-level"))
	if err != nil || c.String("log-level") == "" {
		return usageErrorf("--log-level: want debug, info, warn or error, got %q", c.String("log-level"))
	}
	if c.Bool("quiet") && level < zerolog.WarnLevel {
		level = zerolog.WarnLevel
	}
	switch lf := c.String("log-format"); lf {
	case "json":
		e.logFormat = func(w io.Writer) io.Writer { return w }
	case "console":
		noColor := !isTerminal(c.App.ErrWriter)
		e.logFormat = func(w io.Writer) io.Writer {
			return zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: noColor}
		}
	case "auto":
		if isTerminal(c.App.ErrWriter) {
			e.logFormat = func(w io.Writer) io.Writer { return zerolog.ConsoleWriter{Out: w, TimeFormat: time.Kitchen} }
		} else {
			e.logFormat = func(w io.Writer) io.Writer { return w }
		}
	default:
		return usageErrorf("--log-format: want auto, console or json, got %q", lf)
	}
	if c.App.Metadata != nil {
		c.App.Metadata[logFormatKey] = c.String("log-format")
	}
	e.log = zerolog.New(e.logFormat(e.stderr)).Level(level).With().Timestamp().Logger()
	redis.SetLogger(redisLogger{e.log})
	e.progressOK = !c.Bool("quiet") && !c.Bool("no-progress") && isTerminal(c.App.ErrWriter)
	return nil
}

// setupLayout reads the key layout's flags: --namespace, --expiration-key,
// --id-path, --batch, and refuses an empty --queue or --class.
func (e *env) setupLayout(c *cli.Context) error {
	if ns := strings.TrimSpace(c.String("namespace")); ns == "" || ns == ":" {
		return usageErrorf("--namespace must not be empty (Resque's default is resque)")
	}
	for _, name := range []string{"queue", "class"} {
		for _, p := range c.StringSlice(name) {
			if strings.TrimSpace(p) == "" {
				return usageErrorf("--%s must not be empty; leave it out to match every %s", name, name)
			}
		}
	}
	var err error
	e.layout, err = resque.NewLayout(c.String("namespace"), c.String("expiration-key"))
	if err != nil {
		return usageErrorf("--expiration-key: %v", err)
	}
	if b := c.Int("batch"); b < 1 || b > inspect.MaxBatch {
		return usageErrorf("--batch must be between 1 and %d, got %d", inspect.MaxBatch, b)
	}
	e.scan = inspect.Config{Layout: e.layout, IDPaths: c.StringSlice("id-path"), Batch: c.Int("batch")}
	if _, err := resque.ParsePaths(e.scan.IDPaths); err != nil {
		return usageErrorf("--id-path: %v", err)
	}
	return nil
}

// connect opens the Redis connection (PING included), within --timeout.
func (e *env) connect() (redis.UniversalClient, error) {
	rdb, err := redisconn.Open(e.ctx, e.conn)
	if err != nil {
		return nil, err
	}
	e.log.Debug().Str("redis", redisconn.Describe(e.conn)).Msg("connected")
	return rdb, nil
}

// scanner builds a scanner with the given filters, judging by Redis's
// clock: it measures the host's skew from it first, and warns when it is
// over a second.
func (e *env) scanner(rdb redis.UniversalClient, queues, classes []string) (*inspect.Scanner, error) {
	cfg := e.scan
	cfg.Queues, cfg.Classes = queues, classes
	host := hostClock()
	skew, err := redisconn.ClockSkew(e.ctx, rdb, host)
	if err != nil {
		return nil, err
	}
	e.skew = &skew
	if skew > time.Second || skew < -time.Second {
		e.log.Warn().Float64("clock_skew_seconds", skew.Seconds()).
			Msgf("this host's clock is %s off Redis's; jobs are judged by Redis's clock", skew.Abs().Round(time.Millisecond))
	}
	cfg.Now = func() time.Time { return host().Add(skew) }
	s, err := inspect.NewScanner(rdb, cfg)
	if err != nil {
		return nil, usage(err)
	}
	return s, nil
}

// clockSkew is the skew scanner measured, in seconds, for JSON summaries
// (nil when no scanner was built).
func (e *env) clockSkew() *float64 {
	if e.skew == nil {
		return nil
	}
	s := e.skew.Round(time.Millisecond).Seconds()
	return &s
}

// hostClock is the host's clock. RESQUE_EXPIRE_TEST_HOST_CLOCK_OFFSET (a Go
// duration) moves it, so that tests can play a host whose clock is wrong;
// it is a test hook, not a setting.
func hostClock() func() time.Time {
	off, err := time.ParseDuration(os.Getenv("RESQUE_EXPIRE_TEST_HOST_CLOCK_OFFSET"))
	if err != nil || off == 0 {
		return time.Now
	}
	return func() time.Time { return time.Now().Add(off) }
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
// Its methods may be called from several goroutines.
type lazyBar struct {
	label string
	w     io.Writer
	mu    sync.Mutex
	total int64
	bar   *progressbar.ProgressBar
	// since is when the bar appeared; rate says whether it shows jobs/s.
	since time.Time
	rate  bool
}

// progressMinJobs is the amount of work below which no bar is shown.
const progressMinJobs = 20000

// progressRateAfter is how long the bar runs before it shows a rate: the
// first pages arrive within microseconds of its start, and a rate over
// that span reads millions of jobs/s.
const progressRateAfter = 2 * time.Second

func (b *lazyBar) SetTotal(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = n
	if n >= progressMinJobs && b.bar == nil {
		b.bar = progressbar.NewOptions64(n, progressbar.OptionSetWriter(b.w), progressbar.OptionSetDescription(b.label),
			progressbar.OptionShowCount(), progressbar.OptionSetItsString("jobs"),
			progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish(),
			progressbar.OptionOnCompletion(func() { fmt.Fprint(b.w, "\r") }))
		// Start its clock now, not at the first page.
		_ = b.bar.RenderBlank()
		b.since = time.Now()
	} else if b.bar != nil {
		b.bar.ChangeMax64(n)
	}
}

func (b *lazyBar) Add(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil {
		return
	}
	if !b.rate && time.Since(b.since) >= progressRateAfter {
		// The bar is only used under b.mu, so changing its options here
		// races with nothing.
		progressbar.OptionShowIts()(b.bar)
		b.rate = true
	}
	_ = b.bar.Add(n)
}

// Finish clears the bar.
func (b *lazyBar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
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
