package sweep

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// The failed lists' removal script; see its header for KEYS/ARGV.
var (
	//go:embed remove_failed.lua
	removeFailedSrc    string
	removeFailedScript = luaScripts.Once(removeFailedSrc)
)

// checkFailedOptions refuses option combinations a failed-list sweep
// cannot honour.
func (o Options) checkFailedOptions() error {
	switch {
	case o.OnlyFailed && !o.Failed:
		return errors.New("only-failed needs failed")
	case o.FailedOlderThan > 0 && !o.Failed:
		return errors.New("--failed-older-than needs --failed")
	case o.FailedOlderThan < 0:
		return errors.New("--failed-older-than must not be negative")
	case o.Failed && o.ToFailed:
		// --to-failed puts expired jobs on the failed list as expired
		// failures; --failed would take them off again in the same run.
		return errors.New("--failed and --to-failed cannot be combined: --to-failed puts expired jobs on the failed list, --failed removes expired failure entries")
	case o.OnlyFailed && o.Orphans:
		return errors.New("--orphans needs the queues and delayed jobs in view: it cannot be combined with --only failed")
	}
	return nil
}

// failedNeeds lists the commands a sweep of the failed lists runs.
func (r *run) failedNeeds() []Need {
	if !r.opts.Failed {
		return nil
	}
	l := r.s.layout
	exp := l.Expiration("resque-expire-probe")
	var needs []Need
	needs = append(needs, Need{"smembers", l.FailedQueues()})
	for _, key := range []string{l.Failed(), l.FailedList("resque-expire-probe_failed")} {
		needs = append(needs, Need{"type", key}, Need{"llen", key}, Need{"lindex", key}, Need{"lrange", key},
			Need{"lset", key}, Need{"lrem", key})
	}
	return append(needs, Need{"mget", exp}, Need{"type", exp}, Need{"exists", exp})
}

// sweepFailedLists removes the expired entries of every failed list, after
// the queues and delayed jobs (whose removals this run remembers: a failure
// of a job removed a moment ago is judged by the deadline it was removed for).
func (r *run) sweepFailedLists(ctx context.Context) error {
	if !r.opts.Failed {
		return nil
	}
	if err := r.checkStop(); err != nil {
		return err
	}
	r.res.Failed = &QueueResult{Queue: "(failed)"}
	lr := &listRun{r: r, q: r.res.Failed, maxVictims: startVictims}
	start := time.Now()
	_, problems, err := r.s.scanner.ScanFailed(ctx, lr.visitFailed)
	lr.q.Elapsed = time.Since(start).Seconds()
	r.tally(lr.q)
	r.problem(problems...)
	return err
}

// failedCandidate is one failure entry a page selected for removal.
type failedCandidate struct {
	i   int
	job *inspect.Job
	// key and judged: the deadline key the script re-checks and the value
	// it must still hold ("" = absent); key is "" when the entry is judged
	// without one (by its exception, or by its age).
	key, judged string
	// due is when, by Redis's clock, the entry may go.
	due time.Time
	// byAge: judged by --failed-older-than.
	byAge bool
}

// judgeFailure decides whether a failure entry goes.
func (r *run) judgeFailure(c *inspect.Chunk, j *inspect.Job) (failedCandidate, bool) {
	fc := failedCandidate{job: j}
	deadline, judgedByKey := j.Deadline, j.State == inspect.StateExpired && !j.Failure.ByException
	if j.State == inspect.StateMissing {
		// Its job was removed by this run a moment ago: the key is gone.
		r.mu.Lock()
		nanos, ok := r.deleted[keyHash(j.ExpirationKey)]
		r.mu.Unlock()
		if ok {
			deadline, judgedByKey = time.Unix(0, nanos).UTC(), true
		}
	}
	switch {
	case j.State == inspect.StateExpired && j.Failure.ByException:
		return fc, true // due at once, no key to re-check: the entry itself says it
	case judgedByKey && c.Now.Sub(deadline) >= r.opts.Grace:
		fc.key, fc.judged, fc.due = j.ExpirationKey, j.DeadlineRaw, deadline.Add(r.opts.Grace)
		if j.State == inspect.StateMissing {
			fc.judged = ""
		}
		return fc, true
	}
	if d := r.opts.FailedOlderThan; d > 0 && !j.Failure.FailedAtTime.IsZero() && c.Now.Sub(j.Failure.FailedAtTime) >= d {
		fc.byAge, fc.due = true, j.Failure.FailedAtTime.Add(d)
		return fc, true
	}
	return fc, false
}

func (lr *listRun) visitFailed(ctx context.Context, c *inspect.Chunk) error {
	r := lr.r
	if err := r.checkStop(); err != nil {
		return err
	}
	q := lr.q
	var cands []failedCandidate
	for i := range c.Jobs {
		j := &c.Jobs[i]
		q.Scanned++
		if j.Skipped || j.Failure == nil {
			q.Skipped++
			continue
		}
		if j.State == inspect.StateExpired {
			q.Expired++
		}
		fc, ok := r.judgeFailure(c, j)
		if !ok {
			if j.State == inspect.StateExpired {
				q.Skipped++ // within --grace
			}
			continue
		}
		if j.State != inspect.StateExpired {
			q.Expired++ // by this run's removal, or by age
		}
		fc.i = i
		cands = append(cands, fc)
	}
	keep, limitHit := r.reserve(len(cands))
	cands = cands[:keep]
	if r.opts.DryRun {
		out := make([]Removal, 0, len(cands))
		for _, fc := range cands {
			q.Removed++
			if r.opts.Limit == 0 {
				r.removedSoFar.Add(1)
			}
			out = append(out, r.failureRemoval(c, fc, true))
		}
		r.emit(out)
	} else if len(cands) > 0 {
		c.Removed = make([]bool, len(c.Jobs))
		shifted := int64(0)
		lr.avgBytes = avgPayload(c)
		for len(cands) > 0 {
			n := lr.takeFailed(cands)
			gone, err := lr.removeFailed(ctx, c, cands[:n], shifted)
			if err != nil {
				return err
			}
			shifted += gone
			cands = cands[n:]
		}
	}
	if limitHit {
		r.halt.Store(true)
		return errLimit
	}
	return nil
}

// takeFailed is take for failure entries: each is sent once, and again in
// its archive record.
func (lr *listRun) takeFailed(cands []failedCandidate) int {
	copies := 1
	if lr.r.opts.Archive != nil {
		copies++
	}
	return lr.budget(len(cands), copies, 512, func(k int) *inspect.Job { return cands[k].job })
}

// removeFailed runs remove_failed.lua for some of a page's candidates,
// whose positions have moved left by shift since the page was read. It
// returns how many of them are no longer in the list.
func (lr *listRun) removeFailed(ctx context.Context, c *inspect.Chunk, cands []failedCandidate, shift int64) (int64, error) {
	r := lr.r
	n := len(cands)
	keys := []string{c.List.Key, r.s.layout.Journal()}
	keyIndex := map[string]int{}
	for _, fc := range cands {
		if fc.key != "" && keyIndex[fc.key] == 0 {
			keys = append(keys, fc.key)
			keyIndex[fc.key] = len(keys) - 2
		}
	}
	args := make([]any, 0, 4+6*n)
	args = append(args, r.marker, flag(r.opts.Archive != nil), lr.slack(), len(keys)-2)
	now := r.opts.Now().UTC()
	for _, fc := range cands {
		var record string
		if r.opts.Archive != nil {
			record = r.failedArchiveRecord(fc, c, now)
		}
		k := 0
		if fc.key != "" {
			k = keyIndex[fc.key]
		}
		due := int64(0)
		if !fc.due.IsZero() {
			due = fc.due.UnixMilli()
		}
		args = append(args, fc.job.Raw, fc.job.Index-shift, k, fc.judged, due, record)
	}
	t0 := time.Now()
	codes, err := r.requests.Run(ctx, r.s.rdb, removeFailedScript, keys, args...).Int64Slice()
	lr.adapt(time.Since(t0), n)
	if err != nil {
		if redis.IsReadOnlyError(err) {
			return 0, ErrReadOnly
		}
		return 0, fmt.Errorf("remove expired failure entries from %s: %w", c.List.Key, err)
	}
	if len(codes) != n {
		return 0, fmt.Errorf("remove expired failure entries from %s: script answered %d codes for %d entries", c.List.Key, len(codes), n)
	}
	var gone int64
	out := make([]Removal, 0, len(codes))
	for k, code := range codes {
		fc := cands[k]
		if lr.settleCode(c, fc.i, code) {
			gone++
		}
		if code == 1 {
			out = append(out, r.failureRemoval(c, fc, false))
		}
	}
	r.emit(out)
	return gone, r.archiveBatch(ctx)
}

func (r *run) failureRemoval(c *inspect.Chunk, fc failedCandidate, dry bool) Removal {
	j := fc.job
	rm := Removal{Queue: j.Queue, List: c.List.Key, ID: j.ID, Class: j.Class, ExpiresAt: j.Deadline, Payload: j.Raw,
		DryRun: dry, Failed: c.List.Failed, ByAge: fc.byAge}
	switch {
	case fc.byAge:
		rm.EnqueuedAt = j.Failure.FailedAtTime
		rm.OverdueBy = c.Now.Sub(j.Failure.FailedAtTime) - r.opts.FailedOlderThan
	case !j.Deadline.IsZero():
		rm.OverdueBy = c.Now.Sub(j.Deadline)
	}
	return rm
}

// failedArchiveRecord is the archive record of a removed failure entry:
// Payload holds the whole entry, Failed the failed list's name, so restore
// puts the entry back on that list.
func (r *run) failedArchiveRecord(fc failedCandidate, c *inspect.Chunk, now time.Time) string {
	j := fc.job
	rec := ArchiveRecord{RemovedAt: now, Queue: j.Queue, List: c.List.Key, ID: j.ID, Class: j.Class, Payload: j.Raw,
		Position: j.Index, Failed: c.List.Failed, Deadline: fc.judged, Target: r.opts.Target}
	if !j.Deadline.IsZero() {
		rec.ExpiresAt = j.Deadline.UTC().Format(time.RFC3339)
	}
	return resque.Marshal(rec)
}
