package commands

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/report"
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
		Action: runCheck,
	}
}

func runCheck(c *cli.Context) error {
	e, err := setup(c)
	if err != nil {
		return err
	}
	var th inspect.Thresholds
	ptrs := map[string]**int64{
		"max-expired": &th.MaxExpired, "max-missing": &th.MaxMissing, "max-invalid": &th.MaxInvalid,
		"max-orphans": &th.MaxOrphans, "max-no-ttl": &th.MaxNoTTL, "max-stuck": &th.MaxStuck,
		"max-duplicates": &th.MaxDuplicates, "max-queue-length": &th.MaxQueueLength,
	}
	for _, f := range checkCounts {
		if !c.IsSet(f.name) {
			continue
		}
		v := c.Int64(f.name)
		if v < 0 {
			return usageErrorf("--%s must not be negative", f.name)
		}
		*ptrs[f.name] = &v
	}
	if c.Int64("max-expired-failures") < 0 {
		return usageErrorf("--max-expired-failures must not be negative")
	}
	if c.IsSet("max-overdue") {
		d := c.Duration("max-overdue")
		if d < 0 {
			return usageErrorf("--max-overdue must not be negative")
		}
		th.MaxOverdue = &d
	}
	if !th.Any() && !c.IsSet("max-expired-failures") {
		return usageErrorf("give at least one threshold: --max-expired, --max-expired-failures, --max-missing, --max-invalid, --max-orphans, --max-no-ttl, --max-stuck, --max-duplicates, --max-queue-length or --max-overdue")
	}
	if err := checkScanFlags(c); err != nil {
		return err
	}
	fams, err := families(c)
	if err != nil {
		return err
	}
	opts := th.AuditOptions(fams)
	opts.ScanCount, opts.MaxDuration, opts.Examples = c.Int64("scan-count"), c.Duration("max-duration"), -1

	mf := e.metricsFile("check")
	defer mf.write()
	rdb, err := e.connect()
	if err != nil {
		return err
	}
	defer rdb.Close()
	mf.rdb = rdb
	s, err := e.scanner(rdb, nil, nil)
	if err != nil {
		return err
	}
	p := e.progress("check")
	opts.Progress = p
	rep := &inspect.AuditReport{At: s.Now().UTC()}
	if th.Any() {
		rep, err = s.Audit(c.Context, opts)
	}
	finishProgress(p)
	mf.observe(err, nil)
	if err != nil {
		return fmt.Errorf("check could not run: %w", err)
	}
	fres, fprob, err := expiredFailuresThreshold(c.Context, c, s)
	if err != nil {
		return fmt.Errorf("check could not run: %w", err)
	}
	rep.Problems = append(rep.Problems, fprob...)
	for _, pr := range rep.Problems {
		e.log.Warn().Str("key", pr.Key).Str("kind", pr.Kind).Msg(pr.Detail)
	}
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

// checkResult is check's report: JSON is an object with one entry per
// threshold, keyed by its name without "max-".
type checkResult struct {
	Pass       bool                               `json:"pass"`
	Partial    bool                               `json:"partial"`
	Stopped    string                             `json:"stopped,omitempty"`
	Failed     []string                           `json:"failed"`
	Thresholds map[string]inspect.ThresholdResult `json:"thresholds"`
	At         time.Time                          `json:"at"`
	ClockSkew  *float64                           `json:"clock_skew_seconds,omitempty"`
	ordered    []inspect.ThresholdResult
}

func newCheckResult(rs []inspect.ThresholdResult, rep *inspect.AuditReport) checkResult {
	res := checkResult{Pass: true, Partial: rep.Partial, Stopped: rep.Stopped, Failed: []string{},
		Thresholds: map[string]inspect.ThresholdResult{}, At: rep.At, ordered: rs}
	for _, r := range rs {
		res.Thresholds[r.Name] = r
		if !r.Pass {
			res.Pass = false
			res.Failed = append(res.Failed, r.Name)
		}
	}
	return res
}

func (r checkResult) Tables() []report.Table {
	t := report.Table{Header: []string{"threshold", "value", "limit", "result", "detail"}}
	for _, th := range r.ordered {
		value, lim := report.Int(th.Value), report.Int(th.Limit)
		if th.Unit == "seconds" {
			value, lim = report.Duration(time.Duration(th.Value)*time.Second), report.Duration(time.Duration(th.Limit)*time.Second)
		}
		result := "pass"
		if !th.Pass {
			result = "FAIL"
		}
		t.Rows = append(t.Rows, []string{"--max-" + th.Name, value, lim, result, th.Detail})
	}
	switch {
	case !r.Pass:
		t.Notes = append(t.Notes, fmt.Sprintf("%d of %d thresholds exceeded", len(r.Failed), len(r.ordered)))
	case r.Partial:
		t.Notes = append(t.Notes, "stopped early ("+r.Stopped+"): the numbers are partial")
	default:
		t.Notes = append(t.Notes, "all thresholds hold")
	}
	return []report.Table{t}
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
