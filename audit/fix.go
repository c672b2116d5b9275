package audit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/orphan"
	"github.com/resque-expire/resque-expire/internal/scripts"
)

// Fix actions.
const (
	ActionExpire      = "expire"
	ActionDeleteStuck = "delete-stuck"
	ActionDeleteLoner = "delete-orphaned-marker"
	// ActionExpireDeadline gives an expired orphaned deadline key a TTL of
	// inspect.OrphanHold; it is never deleted (see orphan_expire.lua).
	ActionExpireDeadline = "expire-orphaned-deadline"
)

// Fix outcomes.
const (
	OutcomeWould   = "would"   // dry run
	OutcomeDone    = "done"    // applied
	OutcomeChanged = "changed" // kept: it changed since it was judged
	OutcomeGone    = "gone"    // deleted by someone else meanwhile
)

// FixOptions say what Fix repairs. Every action is a dry run unless Apply.
type FixOptions struct {
	// Audit selects what is read; its OnFindings is Fix's own.
	Audit Options
	// TTL, when > 0, is given to every key of the families that has none
	// (not deadline keys or loner markers, whose TTL is optional).
	TTL time.Duration
	// Stuck deletes the stuck keys of the families.
	Stuck bool
	// Orphans deletes orphaned loner markers that have no TTL, and gives
	// orphaned deadline keys whose deadline has passed a TTL of
	// inspect.OrphanHold (never deleting them: their job may only have been
	// between two lists while the audit read them). It needs Audit.Jobs.
	Orphans bool
	// Apply makes the changes; without it Fix only reports them and never
	// writes (safe against a replica).
	Apply bool
	// OnAction is told of each action, done or not.
	OnAction func(FixAction)
}

// FixAction is one change Fix made, would make, or gave up.
type FixAction struct {
	Action string `json:"action"`
	Family string `json:"family"`
	Key    string `json:"key"`
	Value  string `json:"value,omitempty"`
	// TTLSeconds is the key's remaining TTL when judged, -1 for none.
	TTLSeconds float64 `json:"ttl_seconds"`
	Outcome    string  `json:"outcome"`
}

// FixCount counts one kind of action.
type FixCount struct {
	// Candidates the audit reported; Done of them changed (0 in a dry
	// run); Changed kept because they changed since they were judged;
	// Gone deleted by someone else meanwhile.
	Candidates int64 `json:"candidates"`
	Done       int64 `json:"done"`
	Changed    int64 `json:"changed"`
	Gone       int64 `json:"gone"`
}

func (c *FixCount) count(outcome string) {
	switch outcome {
	case OutcomeDone:
		c.Done++
	case OutcomeChanged:
		c.Changed++
	case OutcomeGone:
		c.Gone++
	}
}

// FixResult is the audit and what was done about it.
type FixResult struct {
	DryRun bool    `json:"dry_run"`
	Audit  *Report `json:"audit"`
	// One count per action asked for.
	TTL             *FixCount `json:"ttl,omitempty"`
	TTLSeconds      float64   `json:"ttl_seconds,omitempty"`
	Stuck           *FixCount `json:"stuck,omitempty"`
	LonerOrphans    *FixCount `json:"orphaned_markers,omitempty"`
	DeadlineOrphans *FixCount `json:"orphaned_deadlines,omitempty"`
}

// Fix runs the audit and repairs what it reports, as it reports it: each
// key is changed by a script that first re-checks that it is still in the
// state that was judged (same value, TTL not renewed), so a key written
// again since is kept. Without opts.Apply nothing is written. On an error
// it returns what was done so far with the error.
func Fix(ctx context.Context, s *inspect.Scanner, opts FixOptions) (*FixResult, error) {
	if opts.TTL < 0 {
		return nil, errors.New("the TTL to fix must not be negative")
	}
	if opts.TTL == 0 && !opts.Stuck && !opts.Orphans {
		return nil, errors.New("nothing to fix: ask for a TTL, stuck keys or orphans")
	}
	if opts.Orphans && !opts.Audit.Jobs {
		return nil, errors.New("orphans can only be told when the jobs are read")
	}
	res := &FixResult{DryRun: !opts.Apply}
	if opts.TTL > 0 {
		res.TTL, res.TTLSeconds = &FixCount{}, opts.TTL.Seconds()
	}
	if opts.Stuck {
		res.Stuck = &FixCount{}
	}
	if opts.Orphans {
		res.LonerOrphans, res.DeadlineOrphans = &FixCount{}, &FixCount{}
	}
	rdb := s.Client()
	if opts.Apply {
		if err := LoadScripts(ctx, rdb); err != nil {
			return res, scripts.ReadOnly(err)
		}
	}
	f := &repairer{rdb: rdb, opts: opts, res: res}
	audit := opts.Audit
	audit.OnFindings = f.handle
	rep, err := Run(ctx, s, audit)
	res.Audit = rep
	return res, err
}

type repairer struct {
	rdb  redis.UniversalClient
	opts FixOptions
	res  *FixResult
}

// repairOp is one action on one key.
type repairOp struct {
	act   FixAction
	count *FixCount
	call  scripts.Call
}

// plan turns a finding into the action the options ask for, if any. A
// stuck key without TTL is deleted rather than given a TTL when both are
// asked for.
func (f *repairer) plan(fd Finding) (repairOp, bool) {
	ttl := -1.0
	if !fd.NoTTL {
		ttl = fd.TTL.Seconds()
	}
	op := repairOp{act: FixAction{Family: fd.Family, Key: fd.Key, Value: fd.Value, TTLSeconds: ttl}}
	o := f.opts
	switch {
	case fd.Kind == KindKeys && fd.Stuck && o.Stuck:
		cond := "none"
		if !fd.NoTTL {
			cond = strconv.FormatInt(fd.TTL.Milliseconds(), 10)
		}
		op.act.Action, op.count, op.call = ActionDeleteStuck, f.res.Stuck, fixDelete(fd.Key, fd.Value, cond)
	case fd.Kind == KindKeys && fd.NoTTL && o.TTL > 0:
		op.act.Action, op.count, op.call = ActionExpire, f.res.TTL, fixTTL(fd.Key, o.TTL)
	case fd.Kind == KindLoners && fd.Orphan && fd.NoTTL && fd.HasValue && o.Orphans:
		op.act.Action, op.count, op.call = ActionDeleteLoner, f.res.LonerOrphans, fixDelete(fd.Key, fd.Value, "none")
	case fd.Kind == KindDeadlines && fd.Orphan && fd.Expired && !fd.Held && fd.HasValue && o.Orphans:
		op.act.Action, op.count, op.call = ActionExpireDeadline, f.res.DeadlineOrphans, orphan.Expire(fd.Key, fd.Value, inspect.OrphanHold)
	default:
		return op, false
	}
	return op, true
}

// handle acts on one page of findings: one pipeline of scripts.
func (f *repairer) handle(ctx context.Context, fs []Finding) error {
	var ops []repairOp
	for _, fd := range fs {
		if op, ok := f.plan(fd); ok {
			op.count.Candidates++
			ops = append(ops, op)
		}
	}
	if len(ops) == 0 {
		return nil
	}
	if !f.opts.Apply {
		for _, op := range ops {
			f.done(op, OutcomeWould)
		}
		return nil
	}
	// A script started is finished even if the run is interrupted.
	work := context.WithoutCancel(ctx)
	pipe := f.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(ops))
	for i, op := range ops {
		cmds[i] = op.call.EvalSha(work, pipe)
	}
	_, _ = pipe.Exec(work) // per-command errors are read below
	for i, op := range ops {
		n, err := cmds[i].Int()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// The script cache was flushed meanwhile: Run loads it again.
			n, err = op.call.Run(work, f.rdb).Int()
		}
		if err != nil {
			if redis.IsReadOnlyError(err) {
				return scripts.ErrReadOnly
			}
			return fmt.Errorf("%s %s: %w", op.act.Action, op.act.Key, err)
		}
		switch n {
		case 1:
			f.done(op, OutcomeDone)
		case 0:
			f.done(op, OutcomeChanged)
		default:
			f.done(op, OutcomeGone)
		}
	}
	return ctx.Err()
}

func (f *repairer) done(op repairOp, outcome string) {
	op.count.count(outcome)
	op.act.Outcome = outcome
	if f.opts.OnAction != nil {
		f.opts.OnAction(op.act)
	}
}
