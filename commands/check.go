package commands

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/inspect"
)

var _ = register(checkCommand)

// checkCounts are check's count thresholds, in the order they are shown.
var checkCounts = []struct{ name, usage string }{
	{"max-expired", "at most N expired jobs (queues and delayed)"},
	{"max-missing", "at most N jobs with an id but no deadline key"},
	{"max-invalid", "at most N jobs with an unreadable payload or deadline"},
	{"max-orphans", "at most N orphans: loner markers without TTL whose job is not queued, and deadline keys of no job whose deadline passed"},
	{"max-no-ttl", "at most N idempotency keys (of the families) without TTL"},
	{"max-stuck", "at most N stuck idempotency keys"},
	{"max-duplicates", "at most N duplicate jobs (an id or a byte-identical payload seen before)"},
	{"max-queue-length", "at most N jobs in the longest queue"},
}

func checkCommand() *cli.Command {
	flags := []cli.Flag{}
	for _, f := range checkCounts {
		flags = append(flags, &cli.Int64Flag{Name: f.name, Usage: f.usage, DefaultText: "not checked"})
	}
	flags = append(flags, durationFlag(cli.DurationFlag{Name: "max-overdue", Usage: "the most overdue job expired at most this long ago", DefaultText: "not checked"}))
	flags = append(flags, maxExpiredFailuresFlag)
	flags = append(flags, familyFlags()...)
	flags = append(flags, metricsFileFlag())
	return &cli.Command{
		Name:  "check",
		Usage: "hold Redis to thresholds, for CI and deploy gates: exit 3 when one is exceeded (read-only)",
		Description: `Reads what the thresholds given need, and nothing more, then prints one line per
threshold (value, limit, pass or FAIL). Only the thresholds given are checked; give at least one.

Read-only: check never writes (no lock, no scripts), so it is safe to point at a replica.

Exit codes: 0 every threshold holds; 3 at least one is exceeded; 1 it could not run (Redis
unreachable, an error, or --max-duration cut the reading short with no threshold exceeded yet);
2 usage error.

--max-no-ttl and --max-stuck read the key families of --pattern / --config (default: the
design note's email_sent:* and payment:*); see "resque-expire audit --help".

Examples:
  resque-expire check --max-expired 0 --max-overdue 10m
  resque-expire check --max-orphans 0 --max-duplicates 0 --max-queue-length 50000
  resque-expire check --config families.yml --max-no-ttl 0 --max-stuck 5 --format json
  REDIS_URL=redis://replica.internal:6379/0 resque-expire check --max-stuck 0 || exit 1`,
		Flags:  flags,
		Action: action(newCheckOptions, checkAction),
	}
}

// checkOptions are check's options: the thresholds given, and the
// families --max-no-ttl and --max-stuck read.
type checkOptions struct {
	// counts are the count thresholds given (checkCounts), by name.
	counts             map[string]int64
	maxOverdue         *time.Duration
	maxExpiredFailures *int64
	families           familyOptions
}

func newCheckOptions() *checkOptions { return &checkOptions{counts: map[string]int64{}} }

func (o *checkOptions) bind(c *cli.Context) {
	for _, f := range checkCounts {
		if c.IsSet(f.name) {
			o.counts[f.name] = c.Int64(f.name)
		}
	}
	if c.IsSet("max-overdue") {
		d := c.Duration("max-overdue")
		o.maxOverdue = &d
	}
	if c.IsSet("max-expired-failures") {
		n := c.Int64("max-expired-failures")
		o.maxExpiredFailures = &n
	}
	o.families.bind(c)
}

func (o *checkOptions) validate() error {
	for _, f := range checkCounts {
		if v, ok := o.counts[f.name]; ok && v < 0 {
			return usageErrorf("--%s must not be negative", f.name)
		}
	}
	if o.maxExpiredFailures != nil && *o.maxExpiredFailures < 0 {
		return usageErrorf("--max-expired-failures must not be negative")
	}
	if o.maxOverdue != nil && *o.maxOverdue < 0 {
		return usageErrorf("--max-overdue must not be negative")
	}
	if len(o.counts) == 0 && o.maxOverdue == nil && o.maxExpiredFailures == nil {
		return usageErrorf("give at least one threshold: --max-expired, --max-expired-failures, --max-missing, --max-invalid, --max-orphans, --max-no-ttl, --max-stuck, --max-duplicates, --max-queue-length or --max-overdue")
	}
	return o.families.validate()
}

// thresholds are the thresholds the audit evaluates (all but
// --max-expired-failures).
func (o *checkOptions) thresholds() audit.Thresholds {
	var th audit.Thresholds
	ptrs := map[string]**int64{
		"max-expired": &th.MaxExpired, "max-missing": &th.MaxMissing, "max-invalid": &th.MaxInvalid,
		"max-orphans": &th.MaxOrphans, "max-no-ttl": &th.MaxNoTTL, "max-stuck": &th.MaxStuck,
		"max-duplicates": &th.MaxDuplicates, "max-queue-length": &th.MaxQueueLength,
	}
	for name, v := range o.counts {
		v := v
		*ptrs[name] = &v
	}
	th.MaxOverdue = o.maxOverdue
	return th
}

func checkAction(ctx context.Context, e *env, o *checkOptions) error {
	fams, err := o.families.load()
	if err != nil {
		return err
	}
	th := o.thresholds()
	opts := th.Options(fams)
	opts.ScanCount, opts.MaxDuration, opts.Examples = o.families.scanCount, o.families.maxDuration, -1

	mf := e.metricsFile("check")
	defer mf.write()
	ss, err := e.open(filters{}, mf)
	if err != nil {
		return err
	}
	defer ss.Close()
	s := ss.scanner
	rep, err := runCheck(ctx, e, s, th, opts)
	mf.observe(err, nil)
	if err != nil {
		return fmt.Errorf("check could not run: %w", err)
	}
	fres, fprob, err := expiredFailuresThreshold(ctx, o.maxExpiredFailures, s)
	if err != nil {
		return fmt.Errorf("check could not run: %w", err)
	}
	rep.Problems = append(rep.Problems, fprob...)
	e.logProblems(rep.Problems)
	res := newCheckResult(append(th.Evaluate(rep), fres...), rep)
	res.ClockSkew = e.clockSkew()
	if err := e.render(res); err != nil {
		return err
	}
	switch {
	case !res.Pass:
		return errThreshold
	case rep.Partial:
		return errors.New("check stopped early (" + rep.Stopped + "): no threshold is exceeded so far, but the numbers are partial")
	}
	return nil
}

// runCheck reads what the thresholds need (nothing when only
// --max-expired-failures is given).
func runCheck(ctx context.Context, e *env, s *inspect.Scanner, th audit.Thresholds, opts audit.Options) (*audit.Report, error) {
	p, done := e.track("check")
	defer done()
	opts.Progress = p
	if !th.Any() {
		return &audit.Report{At: s.Now().UTC()}, nil
	}
	return audit.Run(ctx, s, opts)
}
