package backfill

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/once"
	"github.com/resque-expire/resque-expire/internal/preflight"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/scripts"
	"github.com/resque-expire/resque-expire/internal/stop"
	"github.com/resque-expire/resque-expire/internal/tally"
)

// defaultSampleSize is how many deadlines Run samples per rule.
const defaultSampleSize = 3

// maxBackfillEntries bounds the entries of one backfill script call (one
// page at the default --batch).
const maxBackfillEntries = 1000

// From says what a backfilled deadline counts from.
type From string

const (
	// FromEnqueued counts from the job's own enqueue time (ActiveJob's
	// args.0.enqueued_at, a top-level enqueued_at or created_at), or from
	// now for a job that records none.
	FromEnqueued From = "enqueued"
	// FromNow always counts from now.
	FromNow From = "now"
)

// ParseFrom parses "enqueued" or "now".
func ParseFrom(s string) (From, error) {
	switch f := From(strings.ToLower(strings.TrimSpace(s))); f {
	case FromEnqueued, FromNow:
		return f, nil
	}
	return "", fmt.Errorf("want enqueued or now, got %q", s)
}

// Options configure Run.
type Options struct {
	// TTL gives every job the Policy does not match the deadline base + TTL
	// (a default rule after the policy's rules). 0 means no such default.
	TTL time.Duration
	// Policy, when set, gives per-queue and per-class TTLs; the first
	// matching rule wins. A job neither Policy nor TTL covers is counted as
	// unmatched and left alone.
	Policy *Policy
	// From is the deadline's base (default FromEnqueued).
	From From
	// Retention: every key written expires (Redis TTL) at deadline +
	// Retention, or Retention from now when that is later (default
	// resque.DefaultRetention).
	Retention time.Duration
	// Delayed includes resque-scheduler's delayed buckets.
	Delayed bool
	// DryRun writes nothing and reports what would be set.
	DryRun bool
	// Limit stops after this many keys set (0 = no limit).
	Limit int64
	// FixKeyTTL also gives existing deadline keys without a Redis TTL one
	// (deadline + Retention, or Retention from now when later), with
	// EXPIREAT ... NX so a TTL someone set is kept.
	FixKeyTTL bool
	// SampleSize is how many deadlines to keep per rule (default
	// defaultSampleSize; negative for none).
	SampleSize int
	// Progress, when set, is told the amount of work and each page.
	Progress inspect.Progress
	// OnSet is called for each deadline written (or, in a dry run, that
	// would be written).
	OnSet func(DeadlineSample)

	// beforeWrite, for tests, runs after a page was read and judged and
	// before its writes.
	beforeWrite func(ctx context.Context, c *inspect.Chunk)
}

// Counts counts what Run did to the jobs of one queue, or all.
type Counts struct {
	// Scanned jobs read; Skipped of those left out by the class filter.
	Scanned int64 `json:"scanned"`
	Skipped int64 `json:"skipped"`
	// Missing: jobs with an id and no deadline.
	Missing int64 `json:"missing"`
	// Set: deadlines written (would be written, in a dry run).
	Set int64 `json:"set"`
	// AlreadySet: missing jobs whose deadline someone else wrote between
	// the read and the write; theirs was kept.
	AlreadySet int64 `json:"already_set"`
	// Unmatched: missing jobs no rule matched; left without a deadline.
	Unmatched int64 `json:"unmatched"`
	// FromNow: deadlines set from now under FromEnqueued because the job
	// records no enqueue time.
	FromNow int64 `json:"from_now"`
	// TTLFixed: existing deadline keys given a Redis TTL (FixKeyTTL).
	TTLFixed int64 `json:"ttl_fixed"`
}

func (c *Counts) add(o Counts) { tally.Add(c, o) }

// QueueCounts counts one queue, or the delayed jobs ("(delayed)").
type QueueCounts struct {
	Queue string `json:"queue"`
	Counts
}

// RuleCounts counts the missing jobs one rule matched.
type RuleCounts struct {
	// Rule names it ("queue=mailers", "default", "--ttl").
	Rule       string  `json:"rule"`
	Queue      string  `json:"queue,omitempty"`
	Class      string  `json:"class,omitempty"`
	TTL        string  `json:"ttl"`
	TTLSeconds float64 `json:"ttl_seconds"`
	// Line in the policy file; 0 for --ttl.
	Line       int   `json:"line,omitempty"`
	Matched    int64 `json:"matched"`
	Set        int64 `json:"set"`
	AlreadySet int64 `json:"already_set"`
	// Sample holds the first deadlines the rule set (would set).
	Sample []DeadlineSample `json:"sample"`
}

// DeadlineSample describes one deadline Run set.
type DeadlineSample struct {
	Queue string `json:"queue"`
	ID    string `json:"id"`
	Class string `json:"class"`
	// Rule is the name of the rule that gave the TTL.
	Rule string `json:"rule"`
	// From is "enqueued" when the deadline counts from the job's enqueue
	// time, "now" otherwise; Base is that time.
	From         From      `json:"from"`
	Base         time.Time `json:"base"`
	Deadline     time.Time `json:"deadline"`
	KeyExpiresAt time.Time `json:"key_expires_at"`
	DryRun       bool      `json:"dry_run,omitempty"`
}

// Result is the summary of a backfill. The embedded counts are the
// totals.
type Result struct {
	DryRun           bool    `json:"dry_run"`
	From             From    `json:"from"`
	RetentionSeconds float64 `json:"retention_seconds"`
	// Retention is RetentionSeconds as a duration.
	Retention time.Duration `json:"-"`
	FixKeyTTL bool          `json:"fix_key_ttl"`
	Counts
	Queues  []QueueCounts `json:"queues"`
	Delayed *QueueCounts  `json:"delayed,omitempty"`
	Rules   []RuleCounts  `json:"rules"`
	// Stopped says why the run ended early: "limit", "interrupted",
	// "error"; "" when it finished.
	Stopped   string            `json:"stopped,omitempty"`
	Problems  []inspect.Problem `json:"problems"`
	Elapsed   float64           `json:"elapsed_seconds"`
	StartedAt time.Time         `json:"started_at"`
}

// Errors that end a run early; Run turns them into a Stopped reason.
var (
	errLimit   = stop.ErrLimit
	errStopped = stop.ErrInterrupted
)

// ErrNoTTL is returned by Run when neither a TTL nor a policy is given.
var ErrNoTTL = errors.New("backfill needs a TTL: --ttl, or a --policy file")

// Run gives every job that has an id but no deadline (state missing)
// an expiration key: deadline = base + TTL, where the TTL comes from the
// first matching policy rule (else opts.TTL) and base is the job's enqueue
// time or now (opts.From). It walks the queues and delayed buckets the
// scanner's filters select, page by page, and writes each page with one Lua
// script:
//
//   - SET key deadline NX EXAT keyExpiry: a deadline that exists, or that
//     someone writes between the read and the write, is never replaced;
//     those are counted as already set.
//   - every key written carries a Redis TTL of deadline + Retention (and at
//     least Retention from now), so keys of jobs workers already ran vanish
//     by themselves. A job whose deadline + Retention is already past still
//     gets its (past) deadline, kept for Retention from now: the next sweep
//     then sees it as expired and removes it, rather than the key vanishing
//     at once and the job staying without a deadline.
//   - with FixKeyTTL, existing deadline keys that have no TTL get one the
//     same way, with EXPIREAT ... NX (a TTL someone set is kept).
//
// Jobs in every other state (live, expired, unidentified, invalid) are left
// as they are. A dry run writes nothing (it only reads, so it is safe
// against a replica). On an error it returns the partial result with it.
func Run(ctx context.Context, scanner *inspect.Scanner, opts Options) (*Result, error) {
	start := time.Now()
	if opts.From == "" {
		opts.From = FromEnqueued
	}
	if opts.Retention <= 0 {
		opts.Retention = resque.DefaultRetention
	}
	if opts.SampleSize == 0 {
		opts.SampleSize = defaultSampleSize
	}
	res := &Result{DryRun: opts.DryRun, From: opts.From, RetentionSeconds: opts.Retention.Seconds(), Retention: opts.Retention,
		FixKeyTTL: opts.FixKeyTTL, Queues: []QueueCounts{}, Rules: []RuleCounts{}, Problems: []inspect.Problem{},
		StartedAt: start.UTC()}
	if _, err := ParseFrom(string(opts.From)); err != nil {
		return res, fmt.Errorf("from: %w", err)
	}
	if opts.TTL < 0 {
		return res, errors.New("ttl must not be negative")
	}
	rules := &Policy{}
	if opts.Policy != nil {
		rules.Source = opts.Policy.Source
		rules.Rules = append(rules.Rules, opts.Policy.Rules...)
	}
	if opts.TTL > 0 {
		r, _ := newRule("", "", opts.TTL)
		rules.Rules = append(rules.Rules, r)
	}
	if len(rules.Rules) == 0 {
		return res, ErrNoTTL
	}
	for i, r := range rules.Rules {
		name := r.Name()
		if opts.TTL > 0 && i == len(rules.Rules)-1 {
			name = "--ttl"
		}
		res.Rules = append(res.Rules, RuleCounts{Rule: name, Queue: r.Queue, Class: r.Class, TTL: r.ttlString(),
			TTLSeconds: r.TTL.Seconds(), Line: r.Line, Sample: []DeadlineSample{}})
	}
	b := &backfill{scanner: scanner, rdb: scanner.Client(), opts: opts, rules: rules, res: res}
	err := b.execute(ctx)
	res.Elapsed = time.Since(start).Seconds()
	res.Stopped, err = stop.Reason(ctx, err)
	return res, err
}

type backfill struct {
	scanner   *inspect.Scanner
	rdb       redis.UniversalClient
	opts      Options
	rules     *Policy
	res       *Result
	current   *QueueCounts
	interrupt context.Context
	setSoFar  int64
	requests  *once.Requests
}

func (b *backfill) execute(ctx context.Context) error {
	// As in a sweep, Redis calls run on a context an interrupt does not
	// cancel; the run stops between pages.
	b.interrupt = ctx
	work := context.WithoutCancel(ctx)
	if !b.opts.DryRun {
		if err := preflight.Check(work, b.rdb, needs(b.scanner.Layout())); err != nil {
			return err
		}
		if err := luaScripts.Load(work, b.rdb); err != nil {
			return scripts.ReadOnly(err)
		}
		b.requests = once.NewRequests(b.scanner.Layout().Requests(once.NewRunID()))
		defer func() { _ = b.requests.Done(work, b.rdb) }()
	}
	queues, problems, err := b.scanner.DiscoverQueues(work)
	if err != nil {
		return err
	}
	b.res.Problems = append(b.res.Problems, problems...)
	if b.opts.Progress != nil {
		var total int64
		for _, q := range queues {
			total += q.Length
		}
		b.opts.Progress.SetTotal(total)
	}
	for _, q := range queues {
		if !q.Readable() {
			continue
		}
		b.res.Queues = append(b.res.Queues, QueueCounts{Queue: q.Name})
		b.current = &b.res.Queues[len(b.res.Queues)-1]
		_, err := b.scanner.ScanList(work, inspect.ListRef{Key: q.Key, Queue: q.Name}, b.visit)
		b.res.add(b.current.Counts)
		if err != nil {
			if inspect.IsWrongType(err) {
				b.res.Problems = append(b.res.Problems, inspect.WrongTypeProblem(q.Key, err))
				continue
			}
			return err
		}
	}
	if b.opts.Delayed {
		b.res.Delayed = &QueueCounts{Queue: "(delayed)"}
		b.current = b.res.Delayed
		problems, err := b.scanner.ScanDelayed(work, b.visit, nil)
		b.res.add(b.current.Counts)
		b.res.Problems = append(b.res.Problems, problems...)
		if err != nil {
			return err
		}
	}
	return nil
}

// setOp is a deadline to write; fixOp a key to give a TTL.
type setOp struct {
	job      *inspect.Job
	rule     int
	from     From
	base     time.Time
	deadline time.Time
	keyAt    time.Time
}

type fixOp struct {
	job   *inspect.Job
	keyAt time.Time
}

// keyExpiry is when a deadline key expires: deadline + retention, and never
// sooner than retention from now.
func (b *backfill) keyExpiry(deadline, now time.Time) time.Time {
	at := deadline.Add(b.opts.Retention)
	if floor := now.Add(b.opts.Retention); at.Before(floor) {
		at = floor
	}
	return at.Truncate(time.Second)
}

func (b *backfill) visit(ctx context.Context, c *inspect.Chunk) error {
	select {
	case <-b.interrupt.Done():
		return errStopped
	default:
	}
	if b.opts.Progress != nil {
		b.opts.Progress.Add(len(c.Jobs))
	}
	q := b.current
	var sets []setOp
	var fixes []fixOp
	for i := range c.Jobs {
		j := &c.Jobs[i]
		q.Scanned++
		if j.Skipped {
			q.Skipped++
			continue
		}
		switch j.State {
		case inspect.StateMissing:
			q.Missing++
			ri := b.rules.Match(j.Queue, j.Class, wrapperClass(j))
			if ri < 0 {
				q.Unmatched++
				continue
			}
			b.res.Rules[ri].Matched++
			op := setOp{job: j, rule: ri, from: FromNow, base: c.Now}
			if b.opts.From == FromEnqueued && !j.EnqueuedAt.IsZero() {
				op.from, op.base = FromEnqueued, j.EnqueuedAt
			}
			op.deadline = op.base.Add(b.rules.Rules[ri].TTL).Truncate(time.Second)
			op.keyAt = b.keyExpiry(op.deadline, c.Now)
			sets = append(sets, op)
		case inspect.StateLive, inspect.StateExpired:
			if b.opts.FixKeyTTL {
				fixes = append(fixes, fixOp{job: j, keyAt: b.keyExpiry(j.Deadline, c.Now)})
			}
		}
	}
	if b.opts.beforeWrite != nil {
		b.opts.beforeWrite(ctx, c)
	}
	limitHit := false
	if b.opts.Limit > 0 {
		if room := b.opts.Limit - b.setSoFar; int64(len(sets)) > room {
			// Keys that turn out to be set already do not count, so the
			// rest of the page may still be needed: write in rounds.
			limitHit = true
		}
	}
	if b.opts.DryRun {
		if err := b.dryRun(ctx, sets, fixes); err != nil {
			return err
		}
	} else if err := b.write(ctx, c, sets, fixes); err != nil {
		return err
	}
	if limitHit && b.setSoFar >= b.opts.Limit {
		return errLimit
	}
	return nil
}

func wrapperClass(j *inspect.Job) func() string {
	return func() string {
		p, err := resque.DecodePayload([]byte(j.Raw))
		if err != nil {
			return ""
		}
		return p.Class()
	}
}

// room is how many more keys may be set under the limit.
func (b *backfill) room() int64 {
	if b.opts.Limit <= 0 {
		return math.MaxInt64
	}
	return b.opts.Limit - b.setSoFar
}

func (b *backfill) dryRun(ctx context.Context, sets []setOp, fixes []fixOp) error {
	for _, op := range sets {
		if b.room() <= 0 {
			break
		}
		b.applied(op)
	}
	if len(fixes) == 0 {
		return nil
	}
	return b.countNoTTL(ctx, fixes)
}

// countNoTTL counts, for a dry run, the keys --fix-key-ttl would give a TTL.
func (b *backfill) countNoTTL(ctx context.Context, fixes []fixOp) error {
	pipe := b.rdb.Pipeline()
	cmds := make([]*redis.DurationCmd, len(fixes))
	for i, f := range fixes {
		cmds[i] = pipe.PTTL(ctx, f.job.ExpirationKey)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return fmt.Errorf("read deadline key TTLs: %w", err)
	}
	for _, cmd := range cmds {
		// PTTL answers -1 for a key without TTL (-2 for a key gone).
		if d, err := cmd.Result(); err == nil && d == -1 {
			b.current.TTLFixed++
		}
	}
	return nil
}

func (b *backfill) write(ctx context.Context, c *inspect.Chunk, sets []setOp, fixes []fixOp) error {
	for len(sets) > 0 || len(fixes) > 0 {
		n := min(int64(len(sets)), b.room(), maxBackfillEntries)
		if n < 0 {
			n = 0
		}
		m := min(len(fixes), maxBackfillEntries-int(n))
		if n == 0 && m == 0 {
			return nil
		}
		codes, err := backfillPage(ctx, b.requests, b.rdb, c.List.Key, sets[:n], fixes[:m])
		if err != nil {
			return err
		}
		for k, op := range sets[:n] {
			if codes[k] == 1 {
				b.applied(op)
			} else {
				b.current.AlreadySet++
				b.res.Rules[op.rule].AlreadySet++
			}
		}
		for k := range fixes[:m] {
			if codes[int(n)+k] == 1 {
				b.current.TTLFixed++
			}
		}
		sets, fixes = sets[n:], fixes[m:]
	}
	return nil
}

// applied counts a deadline set (or that would be set) and samples it.
func (b *backfill) applied(op setOp) {
	b.setSoFar++
	b.current.Set++
	if op.from == FromNow && b.opts.From == FromEnqueued {
		b.current.FromNow++
	}
	rule := &b.res.Rules[op.rule]
	rule.Set++
	if len(rule.Sample) >= b.opts.SampleSize && b.opts.OnSet == nil {
		return
	}
	j := op.job
	s := DeadlineSample{Queue: j.Queue, ID: j.ID, Class: j.Class, Rule: rule.Rule, From: op.from,
		Base: op.base.UTC(), Deadline: op.deadline.UTC(), KeyExpiresAt: op.keyAt.UTC(), DryRun: b.opts.DryRun}
	if len(rule.Sample) < b.opts.SampleSize {
		rule.Sample = append(rule.Sample, s)
	}
	if b.opts.OnSet != nil {
		b.opts.OnSet(s)
	}
}
