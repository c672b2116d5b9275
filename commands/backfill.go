package commands

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/backfill"
	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/resque"
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
			&cli.StringFlag{Name: "from", Value: string(backfill.FromEnqueued), Usage: "deadline base: enqueued (the job's own enqueue time, else now) or now"},
			&cli.StringFlag{Name: "retention", Value: "7d", Usage: "every deadline key written expires this long after its deadline"},
			&cli.BoolFlag{Name: "fix-key-ttl", Usage: "also give existing deadline keys without a Redis TTL one (deadline + retention; EXPIRE NX)"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "report per queue and rule what would be set, with sample deadlines; write nothing"},
			&cli.Int64Flag{Name: "limit", Usage: "stop after setting this many deadlines (0 = no limit)"},
		),
		Action: action(newBackfillOptions, backfillAction),
	}
}

// backfillOptions are backfill's options.
type backfillOptions struct {
	filters
	dryRun, fixKeyTTL            bool
	limit                        int64
	ttl, policy, from, retention string
}

func newBackfillOptions() *backfillOptions { return &backfillOptions{} }

func (o *backfillOptions) bind(c *cli.Context) {
	o.filters.bind(c)
	o.dryRun, o.fixKeyTTL, o.limit = c.Bool("dry-run"), c.Bool("fix-key-ttl"), c.Int64("limit")
	o.ttl, o.policy, o.from, o.retention = c.String("ttl"), c.String("policy"), c.String("from"), c.String("retention")
}

// validate checks the options; the --policy file is read (and checked)
// by backfillAction.
func (o *backfillOptions) validate() error {
	_, err := o.request()
	return err
}

// request is what Backfill is given, without the policy and the hooks.
func (o *backfillOptions) request() (backfill.Options, error) {
	var err error
	opts := backfill.Options{DryRun: o.dryRun, Limit: o.limit, Delayed: o.delayed, FixKeyTTL: o.fixKeyTTL}
	if opts.Limit < 0 {
		return opts, usageErrorf("--limit must not be negative")
	}
	if s := o.ttl; s != "" {
		if opts.TTL, err = resque.ParseDuration(s); err != nil {
			return opts, usageErrorf("--ttl %q: %v", s, err)
		}
		if opts.TTL <= 0 {
			return opts, usageErrorf("--ttl must be positive, got %q", s)
		}
	}
	if opts.TTL == 0 && o.policy == "" {
		return opts, usageErrorf("backfill needs --ttl or --policy")
	}
	if opts.From, err = backfill.ParseFrom(o.from); err != nil {
		return opts, usageErrorf("--from: %v", err)
	}
	if opts.Retention, err = resque.ParseDuration(o.retention); err != nil {
		return opts, usageErrorf("--retention %q: %v", o.retention, err)
	}
	if opts.Retention <= 0 {
		return opts, usageErrorf("--retention must be positive, got %q", o.retention)
	}
	return opts, nil
}

func backfillAction(ctx context.Context, e *env, o *backfillOptions) error {
	opts, err := o.request()
	if err != nil {
		return err
	}
	if path := o.policy; path != "" {
		if opts.Policy, err = backfill.LoadPolicy(path); err != nil {
			return usage(err)
		}
	}
	if opts.Policy != nil && opts.TTL > 0 {
		for _, r := range opts.Policy.Rules {
			if r.MatchesEverything() {
				e.log.Warn().Int("line", r.Line).Msg("the policy has a default rule; --ttl is never used")
				break
			}
		}
	}
	ss, err := e.open(o.filters, nil)
	if err != nil {
		return err
	}
	defer ss.Close()
	res, runErr := runBackfill(ctx, e, ss.scanner, opts)
	return e.reportBackfill(ss.scanner, res, runErr)
}

// runBackfill sets the deadlines, logging each one (debug).
func runBackfill(ctx context.Context, e *env, s *inspect.Scanner, opts backfill.Options) (*backfill.Result, error) {
	verb := "set deadline"
	if opts.DryRun {
		verb = "would set deadline"
	}
	opts.OnSet = func(d backfill.DeadlineSample) {
		e.log.Debug().Str("id", d.ID).Str("queue", d.Queue).Str("class", d.Class).Str("rule", d.Rule).
			Str("from", string(d.From)).Time("deadline", d.Deadline).Time("key_expires_at", d.KeyExpiresAt).Msg(verb)
	}
	p, done := e.track("backfill")
	defer done()
	opts.Progress = p
	return backfill.Run(ctx, s, opts)
}

// reportBackfill logs what the backfill met, renders its summary and
// returns its error, if any.
func (e *env) reportBackfill(s *inspect.Scanner, res *backfill.Result, runErr error) error {
	if res == nil || errors.Is(runErr, backfill.ErrNoTTL) {
		return runErr
	}
	if runErr == nil && res.Stopped == "" {
		res.Problems = append(res.Problems, s.Unmatched()...)
	}
	e.logProblems(res.Problems)
	if res.Stopped != "" && res.Stopped != "error" {
		e.log.Warn().Str("reason", res.Stopped).Msg("backfill stopped before the end; the summary is partial")
	}
	if err := e.render(backfillResult{res, e.clockSkew()}); err != nil {
		return err
	}
	if runErr != nil && !errors.Is(runErr, sweep.ErrReadOnly) {
		return fmt.Errorf("backfill failed (partial summary above): %w", runErr)
	}
	return runErr
}
