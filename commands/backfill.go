package commands

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/report"
	"github.com/resque-expire/resque-expire/sweep"
)

var _ = register(backfillCommand)

func backfillCommand() *cli.Command {
	return &cli.Command{
		Name:  "backfill",
		Usage: "give jobs that have no deadline one (never replacing an existing deadline)",
		Description: `Gives every job that has an id but no expiration key (state missing) the deadline
base + TTL, where base is the job's own enqueue time (--from enqueued, the default: ActiveJob
args.0.enqueued_at, top-level enqueued_at or created_at; now when the job records none) or
now (--from now). The TTL is --ttl, or per queue and class from a --policy file (first
matching rule wins; --ttl then is the default for jobs no rule matches). Deadlines are
written with SET NX, so a deadline someone else sets meanwhile always wins; every key
written expires by itself --retention after its deadline (and never sooner than
--retention from now). Jobs in any other state are left alone.

Examples:
  resque-expire backfill --ttl 24h --dry-run
  resque-expire backfill --policy ttl-policy.yaml --fix-key-ttl
  resque-expire backfill --queue mailers --ttl 6h --from now --limit 10000

Policy file (YAML):
  - {queue: "mailers", ttl: "6h"}
  - {class: "Reports::*", ttl: "3d"}
  - {ttl: "24h"}          # default; without one, unmatched jobs are left alone`,
		Flags: append(filterFlags(),
			&cli.StringFlag{Name: "ttl", Usage: "deadline = base + TTL (Go duration or days: 90m, 6h, 3d, 1d12h); required without --policy"},
			&cli.StringFlag{Name: "policy", Usage: "YAML file of per-queue / per-class TTLs, first match wins"},
			&cli.StringFlag{Name: "from", Value: string(sweep.FromEnqueued), Usage: "deadline base: enqueued (the job's own enqueue time, else now) or now"},
			&cli.StringFlag{Name: "retention", Value: "7d", Usage: "every deadline key written expires this long after its deadline"},
			&cli.BoolFlag{Name: "fix-key-ttl", Usage: "also give existing deadline keys without a Redis TTL one (deadline + retention; EXPIRE NX)"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "report per queue and rule what would be set, with sample deadlines; write nothing"},
			&cli.Int64Flag{Name: "limit", Usage: "stop after setting this many deadlines (0 = no limit)"},
		),
		Action: runBackfill,
	}
}

func runBackfill(c *cli.Context) error {
	e, err := setup(c)
	if err != nil {
		return err
	}
	opts := sweep.BackfillOptions{DryRun: c.Bool("dry-run"), Limit: c.Int64("limit"), Delayed: wantDelayed(c),
		FixKeyTTL: c.Bool("fix-key-ttl")}
	if opts.Limit < 0 {
		return usageErrorf("--limit must not be negative")
	}
	if s := c.String("ttl"); s != "" {
		if opts.TTL, err = resque.ParseDuration(s); err != nil {
			return usageErrorf("--ttl %q: %v", s, err)
		}
		if opts.TTL <= 0 {
			return usageErrorf("--ttl must be positive, got %q", s)
		}
	}
	if path := c.String("policy"); path != "" {
		if opts.Policy, err = sweep.LoadPolicy(path); err != nil {
			return usage(err)
		}
	}
	if opts.TTL == 0 && opts.Policy == nil {
		return usageErrorf("backfill needs --ttl or --policy")
	}
	if opts.From, err = sweep.ParseFrom(c.String("from")); err != nil {
		return usageErrorf("--from: %v", err)
	}
	if opts.Retention, err = resque.ParseDuration(c.String("retention")); err != nil {
		return usageErrorf("--retention %q: %v", c.String("retention"), err)
	}
	if opts.Retention <= 0 {
		return usageErrorf("--retention must be positive, got %q", c.String("retention"))
	}
	if opts.Policy != nil && opts.TTL > 0 {
		for _, r := range opts.Policy.Rules {
			if r.MatchesEverything() {
				e.log.Warn().Int("line", r.Line).Msg("the policy has a default rule; --ttl is never used")
				break
			}
		}
	}

	rdb, err := e.connect()
	if err != nil {
		return err
	}
	defer rdb.Close()
	s, err := e.scanner(rdb, c.StringSlice("queue"), c.StringSlice("class"))
	if err != nil {
		return err
	}
	verb := "set deadline"
	if opts.DryRun {
		verb = "would set deadline"
	}
	opts.OnSet = func(d sweep.DeadlineSample) {
		e.log.Debug().Str("id", d.ID).Str("queue", d.Queue).Str("class", d.Class).Str("rule", d.Rule).
			Str("from", string(d.From)).Time("deadline", d.Deadline).Time("key_expires_at", d.KeyExpiresAt).Msg(verb)
	}
	p := e.progress("backfill")
	opts.Progress = p
	res, runErr := sweep.Backfill(c.Context, s, opts)
	finishProgress(p)
	if res == nil {
		return runErr
	}
	if errors.Is(runErr, sweep.ErrNoTTL) {
		return usage(runErr)
	}
	if runErr == nil && res.Stopped == "" {
		res.Problems = append(res.Problems, s.Unmatched()...)
	}
	for _, pr := range res.Problems {
		e.log.Warn().Str("key", pr.Key).Str("kind", pr.Kind).Msg(pr.Detail)
	}
	if res.Stopped != "" && res.Stopped != "error" {
		e.log.Warn().Str("reason", res.Stopped).Msg("backfill stopped before the end; the summary is partial")
	}
	if err := e.render(backfillResult{res, e.clockSkew()}); err != nil {
		return err
	}
	if runErr != nil {
		if errors.Is(runErr, sweep.ErrReadOnly) {
			return runErr
		}
		return fmt.Errorf("backfill failed (partial summary above): %w", runErr)
	}
	return nil
}

type backfillResult struct {
	*sweep.BackfillResult
	ClockSkew *float64 `json:"clock_skew_seconds,omitempty"`
}

func (r backfillResult) Tables() []report.Table {
	set := "set"
	if r.DryRun {
		set = "would set"
	}
	queues := report.Table{Header: []string{"queue", "scanned", "missing", set, "already set", "unmatched", "ttl fixed", "skipped"}}
	row := func(name string, c sweep.BackfillCounts) []string {
		return []string{name, report.Int(c.Scanned), report.Int(c.Missing), report.Int(c.Set), report.Int(c.AlreadySet),
			report.Int(c.Unmatched), report.Int(c.TTLFixed), report.Int(c.Skipped)}
	}
	for _, q := range r.Queues {
		queues.Rows = append(queues.Rows, row(q.Queue, q.BackfillCounts))
	}
	if r.Delayed != nil {
		queues.Rows = append(queues.Rows, row(r.Delayed.Queue, r.Delayed.BackfillCounts))
	}
	queues.Footer = row("total", r.BackfillCounts)
	queues.Notes = append(queues.Notes, fmt.Sprintf("deadlines count from %s; keys expire %s after their deadline",
		r.From, sweep.FormatTTL(r.Retention)))
	if r.FromNow > 0 {
		queues.Notes = append(queues.Notes, fmt.Sprintf("%d jobs record no enqueue time; their deadline counts from now", r.FromNow))
	}
	if r.AlreadySet > 0 {
		queues.Notes = append(queues.Notes, fmt.Sprintf("%d deadlines were set by someone else meanwhile and kept", r.AlreadySet))
	}
	if r.Unmatched > 0 {
		queues.Notes = append(queues.Notes, fmt.Sprintf("%d jobs matched no rule and were left without a deadline", r.Unmatched))
	}
	if r.Skipped > 0 {
		queues.Notes = append(queues.Notes, fmt.Sprintf("%d jobs did not match --class and were left alone", r.Skipped))
	}
	if r.Stopped != "" {
		queues.Notes = append(queues.Notes, "stopped early: "+r.Stopped+" (partial)")
	}
	queues.Notes = append(queues.Notes, problemNotes(r.Problems)...)

	rules := report.Table{Title: "By rule", Header: []string{"rule", "line", "ttl", "missing", set, "already set"}}
	for _, ru := range r.Rules {
		line := "-"
		if ru.Line > 0 {
			line = report.Int(int64(ru.Line))
		}
		rules.Rows = append(rules.Rows, []string{ru.Rule, line, ru.TTL, report.Int(ru.Matched), report.Int(ru.Set), report.Int(ru.AlreadySet)})
	}
	if r.Unmatched > 0 {
		rules.Rows = append(rules.Rows, []string{"(no rule)", "-", "-", report.Int(r.Unmatched), "-", "-"})
	}
	tables := []report.Table{queues, rules}
	if r.DryRun {
		sample := report.Table{Title: "Sample deadlines (first 3 per rule)",
			Header: []string{"rule", "queue", "id", "class", "from", "base", "deadline", "key expires"}}
		for _, ru := range r.Rules {
			for _, s := range ru.Sample {
				sample.Rows = append(sample.Rows, []string{s.Rule, s.Queue, s.ID, s.Class, string(s.From),
					report.Time(s.Base), report.Time(s.Deadline), report.Time(s.KeyExpiresAt)})
			}
		}
		tables = append(tables, sample)
	}
	return tables
}
