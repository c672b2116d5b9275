package commands

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/metrics"
	"github.com/resque-expire/resque-expire/internal/redisconn"
	"github.com/resque-expire/resque-expire/internal/serve"
	"github.com/resque-expire/resque-expire/sweep"
)

var _ = register(serveCommand)

// serveSkipsSweepFlags are sweep's flags that make no sense in serve.
var serveSkipsSweepFlags = map[string]bool{"yes": true, "metrics-file": true}

// serveSweepFlags are sweep's flags serve takes: those serveSweepOptions
// reads. A sweep flag in neither set is a test failure
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
		&cli.Int64Flag{Name: "scan-count", Value: inspect.DefaultScanCount, Usage: "audit: COUNT hint of each SCAN"},
		&cli.StringSliceFlag{Name: "skip", Usage: "audit: leave out a part: families, jobs, deadlines, loners (repeatable)"},
		&cli.Int64Flag{Name: "max-keys", Usage: "audit: stop each key scan after this many keys (0 = no limit)"},
		durationFlag(cli.DurationFlag{Name: "fix-ttl", Usage: "audit: give keys of the families that have no TTL this TTL (with --apply)"}),
		&cli.BoolFlag{Name: "fix-stuck", Usage: "audit: delete stuck keys (with --apply)"},
		&cli.BoolFlag{Name: "fix-orphans", Usage: "audit: delete orphaned loner markers, expire orphaned deadline keys (with --apply)"},
		&cli.BoolFlag{Name: "apply", Usage: "audit: make the --fix-* changes; without it they are only reported"},
	}
	for _, f := range sweepCommand().Flags {
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
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	e, err := setup(c)
	if err != nil {
		return err
	}
	interval := c.Duration("interval")
	if interval <= 0 {
		return usageErrorf("--interval must be positive")
	}
	jitter, err := parseJitter(c.String("jitter"))
	if err != nil {
		return err
	}
	if c.Duration("audit-interval") < 0 {
		return usageErrorf("--audit-interval must not be negative")
	}
	opts, err := serveSweepOptions(c)
	if err != nil {
		return err
	}
	var audit func(ctx context.Context, s *inspect.Scanner) (*inspect.AuditReport, error)
	if c.Duration("audit-interval") > 0 {
		aopts, fix, err := auditOptions(c)
		if err != nil {
			return err
		}
		audit = func(ctx context.Context, s *inspect.Scanner) (*inspect.AuditReport, error) {
			if fix == nil {
				return s.Audit(ctx, aopts)
			}
			f := *fix
			f.Audit, f.OnAction = aopts, func(a sweep.FixAction) { logFix(e, a) }
			res, err := sweep.Fix(ctx, s, f)
			if res == nil {
				return nil, err
			}
			return res.Audit, err
		}
	} else if c.Bool("apply") || c.IsSet("fix-ttl") || c.Bool("fix-stuck") || c.Bool("fix-orphans") {
		return usageErrorf("--fix-* and --apply act in the audit: give --audit-interval too")
	}
	// No PING here: Redis may be down when the service starts; the first
	// cycle says so, and the service waits for it.
	rdb, err := redisconn.New(e.conn)
	if err != nil {
		return usage(err)
	}
	defer rdb.Close()
	if path := c.String("archive"); path != "" && !opts.DryRun {
		a, err := sweep.OpenArchive(path)
		if err != nil {
			return err
		}
		defer a.Close()
		opts.Archive = a
	}
	svc, err := serve.Start(serve.Options{
		Client: rdb, Layout: e.layout, Sweep: opts, Interval: interval, Jitter: jitter,
		Audit: audit, AuditInterval: c.Duration("audit-interval"), Listen: c.String("listen"),
		Metrics: metrics.New(metrics.Options{Version: Version, Runs: true}), Log: e.log, PingTimeout: e.conn.ConnectTimeout,
		Scrub: func(s string) string { return redisconn.Scrub(s, e.secrets...) },
		Scanner: func(context.Context) (*inspect.Scanner, time.Duration, error) {
			s, err := e.scanner(rdb, c.StringSlice("queue"), c.StringSlice("class"))
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
	return svc.Run(c.Context)
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

// serveSweepOptions reads the sweep flags as sweep does.
func serveSweepOptions(c *cli.Context) (sweep.Options, error) {
	for _, name := range []string{"grace", "max-duration", "max-age", "orphan-grace", "lock-ttl", "max-script-time"} {
		if c.Duration(name) < 0 {
			return sweep.Options{}, usageErrorf("--%s must not be negative", name)
		}
	}
	if c.Int64("limit") < 0 {
		return sweep.Options{}, usageErrorf("--limit must not be negative")
	}
	if ttl := c.Duration("lock-ttl"); ttl < minLockTTL {
		return sweep.Options{}, usageErrorf("--lock-ttl must be at least %s (it is renewed every third of it), got %s", minLockTTL, ttl)
	}
	if c.Bool("orphans") && (len(c.StringSlice("queue")) > 0 || !wantDelayed(c)) {
		return sweep.Options{}, usageErrorf("--orphans needs every queue in view: it cannot be combined with --queue or --no-delayed")
	}
	opts := sweep.Options{
		DryRun: c.Bool("dry-run"), Grace: c.Duration("grace"), Limit: c.Int64("limit"),
		MaxDuration: c.Duration("max-duration"), MaxAge: c.Duration("max-age"), Delayed: wantDelayed(c),
		ToFailed: c.Bool("to-failed"), LockTTL: c.Duration("lock-ttl"), MaxScriptTime: c.Duration("max-script-time"),
		Orphans: c.Bool("orphans"), OrphanGrace: c.Duration("orphan-grace"),
	}
	if err := failedSweepOptions(c, &opts); err != nil {
		return sweep.Options{}, err
	}
	return opts, nil
}
