package commands

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/metrics"
	"github.com/resque-expire/resque-expire/report"
	"github.com/resque-expire/resque-expire/sweep"
)

// familyFlags choose the key families audit and check read.
func familyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "pattern", Usage: "audit the keys matching this SCAN glob, passed to Redis as it is (repeatable)"},
		&cli.StringFlag{Name: "config", Usage: "YAML file of key families: pattern, ttl, values, stuck_value, stuck_after (see docs/audit.md)"},
		&cli.Int64Flag{Name: "scan-count", Value: audit.DefaultScanCount, Usage: "COUNT hint of each SCAN"},
		durationFlag(cli.DurationFlag{Name: "max-duration", Usage: "stop after this long and report the numbers as partial (0 = no limit)"}),
	}
}

// familyOptions are the options of familyFlags.
type familyOptions struct {
	config      string
	patterns    []string
	given       bool // --pattern or --config was given
	scanCount   int64
	maxDuration time.Duration
}

func (f *familyOptions) bind(c *cli.Context) {
	f.config, f.patterns, f.given = c.String("config"), c.StringSlice("pattern"), c.IsSet("pattern") || c.IsSet("config")
	f.scanCount, f.maxDuration = c.Int64("scan-count"), c.Duration("max-duration")
}

func (f *familyOptions) validate() error {
	if f.scanCount < 1 {
		return usageErrorf("--scan-count must be at least 1")
	}
	if f.maxDuration < 0 {
		return usageErrorf("--max-duration must not be negative")
	}
	return nil
}

// load returns the families of --config and --pattern, or the design
// note's idempotency families when neither is given.
func (f *familyOptions) load() ([]audit.Family, error) {
	var out []audit.Family
	if f.config != "" {
		fs, err := audit.LoadFamilies(f.config)
		if err != nil {
			return nil, usageErrorf("--config: %v", err)
		}
		out = append(out, fs...)
	}
	for _, p := range f.patterns {
		if p == "" {
			return nil, usageErrorf("--pattern must not be empty")
		}
		out = append(out, audit.Family{Pattern: p})
	}
	if len(out) == 0 {
		out = audit.DefaultFamilies()
	}
	return out, nil
}

var _ = register(auditCommand)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "report rotten idempotency keys, deadline keys, loner markers and duplicate jobs (writes only with --apply)",
		Description: `Reads, with SCAN and pipelined TYPE/PTTL/GET, each family of keys and reports: keys found,
keys without TTL, the remaining TTLs (min/median/p90/max and a histogram), the most frequent
values, keys of an unexpected type, values not among the expected ones, and stuck keys (the
family's stuck_value held longer than stuck_after, or with no TTL at all). Families come
from --pattern or --config; with neither, the design note's email_sent:* and payment:*.

It also reads every queue and delayed bucket for duplicate jobs (the same id, or the same
payload, more than once), the deadline keys for orphans (no job with their id anywhere),
and resque-loner's markers (<ns>:loners:queue:<q>:job:<md5>) for orphaned locks whose job
is not in their queue, which block every later enqueue of that job.

Memory stays bounded: families are counted and sampled, jobs remembered as 64-bit hashes
(about 1M jobs for some tens of MB). --max-keys and --max-duration stop early; the report
then says its numbers are partial.

Fixes are dry runs unless --apply is given; each key is re-checked by a script at write
time and kept if it changed since it was judged:
  --fix-ttl D    give keys of the families that have no TTL a TTL of D
  --fix-stuck    delete stuck keys (each one is logged)
  --fix-orphans  delete orphaned loner markers without TTL; give orphaned deadline keys
                 whose deadline has passed a TTL of 1h (never deleted: their job may
                 have been between a delayed bucket and a queue while it was read)

Examples:
  resque-expire audit
  resque-expire audit --pattern 'lock:*' --pattern 'idem:*' --skip jobs
  resque-expire audit --config families.yml --format json | jq '.families[] | {name, no_ttl, stuck}'
  resque-expire audit --fix-stuck --fix-orphans            # dry run: what would change
  resque-expire audit --fix-ttl 168h --fix-stuck --apply`,
		Flags: append(familyFlags(),
			&cli.StringSliceFlag{Name: "skip", Usage: "leave out a part: families, jobs, deadlines, loners (repeatable)"},
			&cli.Int64Flag{Name: "max-keys", Usage: "stop each key scan after this many keys and report it as partial (0 = no limit)"},
			&cli.IntFlag{Name: "examples", Value: audit.DefaultExamples, Usage: "example keys and jobs shown per finding"},
			durationFlag(cli.DurationFlag{Name: "fix-ttl", Usage: "give keys of the families that have no TTL this TTL (dry run without --apply)"}),
			&cli.BoolFlag{Name: "fix-stuck", Usage: "delete stuck keys (dry run without --apply)"},
			&cli.BoolFlag{Name: "fix-orphans", Usage: "delete orphaned loner markers; give expired orphaned deadline keys a TTL of 1h (dry run without --apply)"},
			&cli.BoolFlag{Name: "apply", Usage: "make the --fix-* changes; without it they are only reported"},
			metricsFileFlag(),
		),
		Action: action(newAuditOptions, auditAction),
	}
}

// auditOptions are audit's options (serve's audit takes them too).
type auditOptions struct {
	families                    familyOptions
	skip                        []string
	maxKeys                     int64
	examples                    int
	fixTTL                      time.Duration
	fixStuck, fixOrphans, apply bool
}

func newAuditOptions() *auditOptions { return &auditOptions{} }

func (o *auditOptions) bind(c *cli.Context) {
	o.families.bind(c)
	o.skip, o.maxKeys, o.examples = c.StringSlice("skip"), c.Int64("max-keys"), c.Int("examples")
	o.fixTTL, o.fixStuck, o.fixOrphans, o.apply = c.Duration("fix-ttl"), c.Bool("fix-stuck"), c.Bool("fix-orphans"), c.Bool("apply")
}

func (o *auditOptions) validate() error {
	if err := o.families.validate(); err != nil {
		return err
	}
	switch {
	case o.maxKeys < 0:
		return usageErrorf("--max-keys must not be negative")
	case o.examples < 0:
		return usageErrorf("--examples must not be negative")
	case o.fixTTL < 0:
		return usageErrorf("--fix-ttl must not be negative")
	}
	skip, err := o.skipped()
	if err != nil {
		return err
	}
	switch {
	case skip["families"] && o.families.given:
		return usageErrorf("--skip families leaves nothing for --pattern or --config to do")
	case o.fixTTL == 0 && !o.fixStuck && !o.fixOrphans:
		if o.apply {
			return usageErrorf("--apply needs something to fix: --fix-ttl, --fix-stuck or --fix-orphans")
		}
	case (o.fixTTL > 0 || o.fixStuck) && skip["families"]:
		return usageErrorf("--fix-ttl and --fix-stuck act on the key families: drop --skip families")
	case o.fixOrphans && (skip["jobs"] || (skip["deadlines"] && skip["loners"])):
		return usageErrorf("--fix-orphans needs the jobs and the deadline keys or loner markers read: drop --skip jobs")
	}
	return nil
}

// skipped reads --skip: the parts left out.
func (o *auditOptions) skipped() (map[string]bool, error) {
	skip := map[string]bool{}
	for _, s := range o.skip {
		for _, part := range strings.Split(s, ",") {
			switch part = strings.TrimSpace(part); part {
			case "families", "jobs", "deadlines", "loners":
				skip[part] = true
			default:
				return nil, usageErrorf("--skip: unknown part %q (want families, jobs, deadlines or loners)", part)
			}
		}
	}
	return skip, nil
}

// request is the audit the options ask for, with the families read
// (--config); fix is nil unless a --fix-* flag is given.
func (o *auditOptions) request() (audit.Options, *audit.FixOptions, error) {
	var opts audit.Options
	skip, _ := o.skipped() // validated
	if !skip["families"] {
		fs, err := o.families.load()
		if err != nil {
			return opts, nil, err
		}
		opts.Families = fs
	}
	opts.Jobs, opts.Deadlines, opts.Loners = !skip["jobs"], !skip["deadlines"], !skip["loners"]
	opts.ScanCount, opts.MaxKeys, opts.MaxDuration = o.families.scanCount, o.maxKeys, o.families.maxDuration
	opts.Examples = o.examples
	if opts.Examples == 0 {
		opts.Examples = -1 // none
	}
	fix := &audit.FixOptions{TTL: o.fixTTL, Stuck: o.fixStuck, Orphans: o.fixOrphans, Apply: o.apply}
	if fix.TTL == 0 && !fix.Stuck && !fix.Orphans {
		return opts, nil, nil
	}
	return opts, fix, nil
}

func auditAction(ctx context.Context, e *env, o *auditOptions) error {
	opts, fix, err := o.request()
	if err != nil {
		return err
	}
	mf := e.metricsFile("audit")
	defer mf.write()
	ss, err := e.open(filters{}, mf)
	if err != nil {
		return err
	}
	defer ss.Close()
	result, rep, runErr := runAudit(ctx, e, ss.scanner, opts, fix)
	mf.observe(runErr, func(m *metrics.Set) { observeAudit(m, rep) })
	if rep == nil {
		return runErr
	}
	e.logProblems(rep.Problems)
	if rep.Partial && runErr == nil {
		e.log.Warn().Str("reason", rep.Stopped).Msg("audit stopped early; the numbers are partial")
	}
	if err := e.render(result); err != nil {
		return err
	}
	if runErr != nil && !errors.Is(runErr, sweep.ErrReadOnly) {
		return fmt.Errorf("audit failed (partial report above): %w", runErr)
	}
	return runErr
}

// runAudit audits, or with fix, audits and fixes; it returns the result
// to render and the audit's report (nil when there is none).
func runAudit(ctx context.Context, e *env, s *inspect.Scanner, opts audit.Options, fix *audit.FixOptions) (report.Result, *audit.Report, error) {
	p, done := e.track("audit")
	defer done()
	opts.Progress = p
	if fix == nil {
		rep, runErr := audit.Run(ctx, s, opts)
		if rep == nil {
			return nil, nil, runErr
		}
		return auditResult{rep, e.clockSkew()}, rep, runErr
	}
	fix.Audit = opts
	fix.OnAction = func(a audit.FixAction) { logFix(e, a) }
	res, runErr := audit.Fix(ctx, s, *fix)
	if res == nil || res.Audit == nil {
		return nil, nil, runErr
	}
	return fixResult{res}, res.Audit, runErr
}

func logFix(e *env, a audit.FixAction) {
	verbs := map[string][2]string{
		audit.ActionExpire:         {"would give a TTL to key", "gave a TTL to key"},
		audit.ActionDeleteStuck:    {"would delete stuck key", "deleted stuck key"},
		audit.ActionDeleteLoner:    {"would delete orphaned loner marker", "deleted orphaned loner marker"},
		audit.ActionExpireDeadline: {"would give orphaned deadline key a TTL of " + inspect.OrphanHold.String(), "gave orphaned deadline key a TTL of " + inspect.OrphanHold.String()},
	}
	v := verbs[a.Action]
	ev := e.log.Info()
	msg := v[1]
	switch a.Outcome {
	case audit.OutcomeWould:
		msg = v[0]
	case audit.OutcomeChanged:
		ev, msg = e.log.Warn(), "kept key changed since it was judged ("+a.Action+")"
	case audit.OutcomeGone:
		msg = "key already gone (" + a.Action + ")"
	}
	ev.Str("family", a.Family).Str("key", a.Key).Str("value", a.Value).Float64("ttl_seconds", a.TTLSeconds).Msg(msg)
}
