package commands

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/metrics"
	"github.com/resque-expire/resque-expire/internal/redisconn"
	"github.com/resque-expire/resque-expire/internal/serve"
	"github.com/resque-expire/resque-expire/sweep"
)

var _ = register(serveCommand)

// serveSkipsSweepFlags are sweep's flags that make no sense in serve.
var serveSkipsSweepFlags = map[string]bool{"yes": true, "metrics-file": true}

// serveSweepFlags are sweep's flags serve takes: those serveOptions.bind
// reads (sweepOptions.bind). A sweep flag in neither set is a test failure
// (TestServeTakesEverySweepFlag), not a flag serve would silently ignore.
var serveSweepFlags = map[string]bool{
	"queue": true, "class": true, "delayed": true, "no-delayed": true, "dry-run": true, "grace": true, "limit": true,
	"max-duration": true, "max-age": true, "archive": true, "to-failed": true, "orphans": true, "orphan-grace": true,
	"lock-ttl": true, "max-script-time": true, "failed": true, "only": true, "failed-older-than": true,
}

func serveCommand() *cli.Command {
	flags := []cli.Flag{
		durationFlag(cli.DurationFlag{Name: "interval", Value: 5 * time.Minute, EnvVars: []string{"RESQUE_EXPIRE_INTERVAL"}, Usage: "time between the starts of two sweeps"}),
		&cli.StringFlag{Name: "jitter", Value: "0%", EnvVars: []string{"RESQUE_EXPIRE_JITTER"}, Usage: "spread each interval by up to ± this share of it (e.g. 10%)"},
		&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9187", EnvVars: []string{"RESQUE_EXPIRE_LISTEN"}, Usage: "HTTP address of /metrics, /healthz and /readyz (:9187 to expose it)"},
		durationFlag(cli.DurationFlag{Name: "audit-interval", EnvVars: []string{"RESQUE_EXPIRE_AUDIT_INTERVAL"}, Usage: "also audit this often (0 = never); read-only unless --fix-* and --apply are given"}),
		// The audit's flags (docs/audit.md); --max-duration bounds both.
		&cli.StringSliceFlag{Name: "pattern", Usage: "audit: the keys matching this SCAN glob (repeatable)"},
		&cli.StringFlag{Name: "config", Usage: "audit: YAML file of key families (see docs/audit.md)"},
		&cli.Int64Flag{Name: "scan-count", Value: audit.DefaultScanCount, Usage: "audit: COUNT hint of each SCAN"},
		&cli.StringSliceFlag{Name: "skip", Usage: "audit: leave out a part: families, jobs, deadlines, loners (repeatable)"},
		&cli.Int64Flag{Name: "max-keys", Usage: "audit: stop each key scan after this many keys (0 = no limit)"},
		durationFlag(cli.DurationFlag{Name: "fix-ttl", Usage: "audit: give keys of the families that have no TTL this TTL (with --apply)"}),
		&cli.BoolFlag{Name: "fix-stuck", Usage: "audit: delete stuck keys (with --apply)"},
		&cli.BoolFlag{Name: "fix-orphans", Usage: "audit: delete orphaned loner markers, expire orphaned deadline keys (with --apply)"},
		&cli.BoolFlag{Name: "apply", Usage: "audit: make the --fix-* changes; without it they are only reported"},
	}
	for _, f := range sweepFlags() {
		if serveSweepFlags[f.Names()[0]] {
			flags = append(flags, f)
		}
	}
	return &cli.Command{
		Name:  "serve",
		Usage: "run as a service: sweep every --interval, serve Prometheus /metrics, /healthz and /readyz",
		Description: `Runs a sweep every --interval (with every sweep flag; it never asks), and with
--audit-interval an audit. It shares the sweep lock with cron runs: a cycle that finds it
held is skipped and counted (resque_expire_runs_total{result="lock_held"}), not an error.
A Redis outage is logged and retried with backoff; the process stays up. After each sweep
it counts the jobs left (the resque_expire_jobs gauges), which reads every queue once more.

HTTP on --listen (loopback by default): /metrics (Prometheus text format), /healthz (200
while the process runs), /readyz (200 when Redis answered and the last cycle ended less
than two intervals ago; 503 and the reason otherwise). See docs/metrics.md.

SIGTERM or SIGINT: the sweep stops after its current batch, releases the lock, the archive
is flushed, and the process exits 0.

Examples:
  resque-expire serve --interval 5m --jitter 10%
  resque-expire serve --interval 1m --archive /var/lib/resque-expire/removed.jsonl --listen :9187
  resque-expire serve --interval 5m --audit-interval 1h --config families.yml`,
		Flags:  flags,
		Action: action(newServeOptions, serveAction),
	}
}

// serveOptions are serve's options: its own, and the sweep's.
type serveOptions struct {
	sweep                   sweepOptions
	audit                   auditOptions
	interval, auditInterval time.Duration
	jitter, listen          string
	// fix says a --fix-* flag or --apply was given.
	fix bool
}

func newServeOptions() *serveOptions { return &serveOptions{} }

func (o *serveOptions) bind(c *cli.Context) {
	o.sweep.bind(c)
	o.audit.bind(c)
	o.interval, o.auditInterval = c.Duration("interval"), c.Duration("audit-interval")
	o.jitter, o.listen = c.String("jitter"), c.String("listen")
	o.fix = c.Bool("apply") || c.IsSet("fix-ttl") || c.Bool("fix-stuck") || c.Bool("fix-orphans")
}

func (o *serveOptions) validate() error {
	if o.interval <= 0 {
		return usageErrorf("--interval must be positive")
	}
	if _, err := parseJitter(o.jitter); err != nil {
		return err
	}
	if o.auditInterval < 0 {
		return usageErrorf("--audit-interval must not be negative")
	}
	if err := o.sweep.validate(); err != nil {
		return err
	}
	if o.auditInterval > 0 {
		return o.audit.validate()
	}
	if o.fix {
		return usageErrorf("--fix-* and --apply act in the audit: give --audit-interval too")
	}
	return nil
}

func serveAction(ctx context.Context, e *env, o *serveOptions) error {
	audit, err := serveAudit(e, o)
	if err != nil {
		return err
	}
	// No PING here: Redis may be down when the service starts; the first
	// cycle says so, and the service waits for it.
	rdb, err := redisconn.New(e.conn)
	if err != nil {
		return usage(err)
	}
	defer rdb.Close()
	opts := o.sweep.library()
	if o.sweep.archive != "" && !opts.DryRun {
		a, err := sweep.OpenArchive(o.sweep.archive)
		if err != nil {
			return err
		}
		defer a.Close()
		opts.Archive = a
	}
	jitter, _ := parseJitter(o.jitter) // validated
	svc, err := serve.Start(serve.Options{
		Client: rdb, Layout: e.layout, Sweep: opts, Interval: o.interval, Jitter: jitter,
		Audit: audit, AuditInterval: o.auditInterval, Listen: o.listen,
		Metrics: metrics.New(metrics.Options{Version: Version, Runs: true}), Log: e.log, PingTimeout: e.conn.ConnectTimeout,
		Scrub: func(s string) string { return redisconn.Scrub(s, e.secrets...) },
		Scanner: func(context.Context) (*inspect.Scanner, time.Duration, error) {
			s, err := e.scanner(rdb, o.sweep.queues, o.sweep.classes)
			if err != nil {
				return nil, 0, err
			}
			return s, *e.skew, nil
		},
	})
	if err != nil {
		return err
	}
	e.log.Info().Str("redis", redisconn.Describe(e.conn)).Msg("resque-expire serve starting")
	return svc.Run(ctx)
}

// serveAudit is the audit serve runs every --audit-interval (nil: none).
func serveAudit(e *env, o *serveOptions) (func(ctx context.Context, s *inspect.Scanner) (*audit.Report, error), error) {
	if o.auditInterval == 0 {
		return nil, nil
	}
	aopts, fix, err := o.audit.request()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, s *inspect.Scanner) (*audit.Report, error) {
		if fix == nil {
			return audit.Run(ctx, s, aopts)
		}
		f := *fix
		f.Audit, f.OnAction = aopts, func(a audit.FixAction) { logFix(e, a) }
		res, err := audit.Fix(ctx, s, f)
		if res == nil {
			return nil, err
		}
		return res.Audit, err
	}, nil
}

// parseJitter reads --jitter: "10%" or a fraction such as 0.1, below 1.
func parseJitter(s string) (float64, error) {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if pct {
		v /= 100
	}
	if err != nil || v < 0 || v >= 1 {
		return 0, usageErrorf("--jitter: want a share of the interval below 100%%, such as 10%%, got %q", s)
	}
	return v, nil
}
