package sweep

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/once"
	"github.com/resque-expire/resque-expire/internal/parallel"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/stop"
	"github.com/resque-expire/resque-expire/internal/tally"
)

// Options configure one sweep.
type Options struct {
	// DryRun reports what would be removed and changes nothing (no lock,
	// no scripts): safe against a replica.
	DryRun bool
	// Grace: only remove jobs expired longer ago than this.
	Grace time.Duration
	// Limit stops after this many removals (0 = no limit).
	Limit int64
	// MaxDuration stops cleanly between batches once this much time has
	// passed (0 = no limit).
	MaxDuration time.Duration
	// MaxAge, when > 0, also treats a job with no expiration key as expired
	// when its own enqueue time is older than this.
	MaxAge time.Duration
	// Delayed includes resque-scheduler's delayed buckets.
	Delayed bool
	// ToFailed moves each removed job onto the failed list as a Resque
	// failure entry, in the same script that removes it.
	ToFailed bool
	// Archive, when set, receives one JSON line per removed job. Records are
	// staged in a Redis journal by the removing script itself and drained to
	// the archive after each batch, so a run killed at any point loses none.
	Archive *Archive
	// LockTTL is the lock's time to live (default DefaultLockTTL).
	LockTTL time.Duration
	// MaxScriptTime is the time budget of one removal script, as the
	// script measures itself; batches adapt to stay under it (default
	// DefaultMaxScriptTime).
	MaxScriptTime time.Duration
	// Progress, when set, is told the amount of work and each page.
	Progress inspect.Progress
	// OnRemoved is called for each job removed (or, in a dry run, that
	// would be removed).
	OnRemoved func(Removal)
	// Orphans also handles expiration keys whose job is in no queue and no
	// delayed bucket. They are never deleted, since their job may only have
	// been between two lists while the run read them: each gets a Redis TTL
	// of the hold, max(OrphanGrace, inspect.OrphanHold), past its deadline,
	// or past now when the deadline has passed. A sweep within the hold finds
	// such a job with its deadline; without a job, the key vanishes.
	Orphans     bool
	OrphanGrace time.Duration
	// Target names the Redis target of a run over many (--targets); archive
	// records carry it, so that restore puts each job back on its target.
	Target string
	// Now, when set, is the clock for failure entries and archive records.
	Now func() time.Time
	// Failed also removes expired failure entries from the failed lists
	// (failed.go); OnlyFailed removes nothing else. FailedOlderThan, when
	// > 0, also removes failure entries that failed longer ago than this.
	Failed          bool
	OnlyFailed      bool
	FailedOlderThan time.Duration

	// The copy engine's thresholds (copyswap.go; zero: the defaults), and
	// a test's hook, called at each phase of a copy ("copy" after each
	// page, "before-cutover", "after-cutover", "drain" after each step):
	// an error it returns aborts the copy, errCrashed stops the run as a
	// kill would.
	headReach   int64
	copyMinLen  int64
	cutoverTail int64
	copyHook    func(phase, list string) error
}

// Removal describes one removed job.
type Removal struct {
	Queue     string        `json:"queue"`
	List      string        `json:"list"`
	DelayedAt int64         `json:"delayed_at,omitempty"`
	ID        string        `json:"id"`
	Class     string        `json:"class"`
	ExpiresAt time.Time     `json:"expires_at"`
	OverdueBy time.Duration `json:"-"`
	// ByAge is set when the job had no deadline and was removed under
	// MaxAge; EnqueuedAt is then its enqueue time.
	ByAge      bool      `json:"by_age,omitempty"`
	EnqueuedAt time.Time `json:"enqueued_at,omitempty"`
	Payload    string    `json:"payload"`
	DryRun     bool      `json:"dry_run"`
	// Failed names the failed list of a removed failure entry (Payload is
	// then the entry; ByAge: removed under FailedOlderThan, EnqueuedAt its
	// failed_at).
	Failed string `json:"failed,omitempty"`
}

// Counts says what a sweep did to the jobs it read.
type Counts struct {
	// Scanned jobs read; Expired of those judged expired (including, under
	// MaxAge, jobs too old without a deadline).
	Scanned int64 `json:"scanned"`
	Expired int64 `json:"expired"`
	// Removed, or would be removed in a dry run.
	Removed int64 `json:"removed"`
	// AlreadyGone: expired jobs a worker took before the sweep could.
	AlreadyGone int64 `json:"already_gone"`
	// Changed: expired jobs kept because their deadline changed meanwhile.
	Changed int64 `json:"changed"`
	// Skipped: jobs left out by --queue/--class, or expired within --grace.
	Skipped int64 `json:"skipped"`
}

func (c *Counts) add(o Counts) { tally.Add(c, o) }

// QueueResult counts what happened to one queue (or to the delayed jobs).
type QueueResult struct {
	Queue string `json:"queue"`
	Counts
	// Elapsed seconds spent on this queue.
	Elapsed float64 `json:"elapsed_seconds"`
	// Engine says how expired jobs were removed from the queue: "in-place"
	// or "copy" (copy and swap, docs/sweep.md); "" in a dry run.
	Engine string `json:"engine,omitempty"`
	// CopyMemoryBytes is the most Redis memory (INFO used_memory) the copy
	// engine's copy of this queue added while it ran.
	CopyMemoryBytes int64 `json:"copy_memory_bytes,omitempty"`
}

// The engines of QueueResult.Engine.
const (
	engineInPlace = "in-place"
	engineCopy    = "copy"
)

// Result is the summary of a sweep.
type Result struct {
	DryRun bool `json:"dry_run"`
	Counts
	Destination string `json:"destination"`
	// Queues has one entry per queue swept; Delayed the delayed jobs.
	Queues  []QueueResult `json:"queues"`
	Delayed *QueueResult  `json:"delayed,omitempty"`
	Failed  *QueueResult  `json:"failed,omitempty"`
	Orphans *OrphanResult `json:"orphans,omitempty"`
	// Stopped says why the run ended early: "limit", "max-duration",
	// "interrupted", "error"; "" when it finished.
	Stopped string `json:"stopped,omitempty"`
	// Recovered counts archive records recovered from an earlier run that
	// was killed before it could write them.
	Recovered int `json:"recovered,omitempty"`
	// RecoveredCopies counts copies of an earlier, interrupted run that
	// this run deleted (before their cutover) or drained (after it).
	RecoveredCopies int               `json:"recovered_copies,omitempty"`
	Problems        []inspect.Problem `json:"problems"`
	Elapsed         float64           `json:"elapsed_seconds"`
	StartedAt       time.Time         `json:"started_at"`
}

// Sweeper removes expired jobs. Build it with New.
type Sweeper struct {
	scanner *inspect.Scanner
	rdb     redis.UniversalClient
	layout  resque.Layout
}

// New returns a Sweeper reading through scanner (and its client and filters).
// It reads the class only of the jobs it may remove, and the enqueue time
// only of those without a deadline.
func New(scanner *inspect.Scanner) *Sweeper {
	return &Sweeper{scanner: scanner.WithDetailsOf(detailsOf), rdb: scanner.Client(), layout: scanner.Layout()}
}

var (
	errLimit    = stop.ErrLimit
	errDeadline = stop.ErrMaxDuration
	errStopped  = stop.ErrInterrupted
)

// Run sweeps every queue the scanner's filters select, then the delayed
// schedule. Unless DryRun, it holds the sweep lock for the whole run. On an
// error it returns the partial result together with the error.
func (s *Sweeper) Run(ctx context.Context, opts Options) (*Result, error) {
	start := time.Now()
	res := &Result{DryRun: opts.DryRun, Queues: []QueueResult{}, Problems: []inspect.Problem{}, StartedAt: start.UTC()}
	res.Destination = destination(opts)
	r := &run{s: s, opts: opts, res: res, start: start}
	if r.opts.Now == nil {
		r.opts.Now = s.scanner.Now // Redis's clock, when the scanner has it
	}
	if r.opts.MaxScriptTime <= 0 {
		r.opts.MaxScriptTime = DefaultMaxScriptTime
	}
	r.opts.setCopyDefaults()
	r.hashSeed = maphash.MakeSeed()
	host, _ := os.Hostname()
	r.worker = fmt.Sprintf("%s:%d:resque-expire", host, os.Getpid())
	mark := make([]byte, 16)
	_, _ = rand.Read(mark)
	// Not valid JSON, so no payload can ever equal it.
	r.marker = "\x00resque-expire:marker:" + hex.EncodeToString(mark)

	if opts.Orphans && (s.scanner.QueueFiltered() || !opts.Delayed) {
		return res, errors.New("orphans can only be told with every queue and the delayed jobs in view: drop --queue and --no-delayed")
	}
	if err := opts.checkFailedOptions(); err != nil {
		return res, err
	}
	if opts.OnRemoved != nil {
		r.reports = startReporter(opts.OnRemoved)
	}
	err := r.execute(ctx)
	if r.reports != nil {
		r.reports.stop()
	}
	res.Elapsed = time.Since(start).Seconds()
	if errors.Is(err, errHalted) { // stopped because another list stopped the run
		err = errStopped
	}
	res.Stopped, err = stop.Reason(ctx, err)
	return res, err
}

// detailsOf says what a run reads of a job of a queue or delayed bucket
// judged in state st, besides its id, class and deadline: the enqueue time
// of a job without a deadline, which MaxAge judges by (a job whose key was
// a deadline key the run deleted is judged by the deadline remembered).
// Reading it without MaxAge too keeps this one predicate for every run:
// jobs without a deadline are few.
func detailsOf(st inspect.State) inspect.Details {
	if st == inspect.StateMissing {
		return inspect.DetailEnqueuedAt
	}
	return 0
}

func destination(o Options) string {
	switch {
	case o.DryRun:
		return "none (dry run)"
	case o.ToFailed:
		return "failed list"
	case o.Archive != nil:
		return "archive " + o.Archive.Path()
	}
	return "deleted"
}

type run struct {
	s         *Sweeper
	opts      Options
	res       *Result
	start     time.Time
	lock      *Lock
	requests  *once.Requests
	worker    string
	marker    string
	interrupt context.Context
	// runID names this run's requests hash and its copies' keys.
	runID string
	// reports hands removals to Options.OnRemoved (nil: none).
	reports *reporter

	// The copy engine: the memory its copies in flight may still add
	// (copyRest, by list, under copyMu), the permission probe's verdict,
	// the fence, and the seed of the record's hashes.
	copyMu      sync.Mutex
	copyRest    map[string]int64
	copyProbe   sync.Once
	copyRefused string
	fence       fence
	hashSeed    maphash.Seed

	// removedSoFar counts removals (or would-be removals) across lists,
	// for Limit; lists swept concurrently reserve from it atomically.
	removedSoFar atomic.Int64
	// halt, once set, stops every list at its next page (limit reached,
	// or another list failed).
	halt atomic.Bool

	mu sync.Mutex // guards what follows, shared by concurrent lists
	// seen holds the ids of every job read, for Orphans.
	seen idSet
	// deleted holds the expiration keys this run deleted, with the deadline
	// they held: a second copy of a removed job (the same job twice in a
	// queue, or in two delayed buckets) finds its key gone, and must still
	// be judged by the deadline the first copy was removed for. Keys are
	// kept as 128-bit hashes (about 40 bytes a removed job rather than
	// 100), where a collision is beyond any realistic run.
	deleted map[[16]byte]int64
}

// listRun is the state of one list being swept.
type listRun struct {
	r          *run
	q          *QueueResult
	maxVictims int
	// trimVictims caps the next head_trim.lua run, sized by the last
	// one's own time (Options.MaxScriptTime).
	trimVictims int
	// avgBytes is the mean payload size of the page being removed from.
	avgBytes int
	// deep: scripts on this list run over the budget whatever their size.
	deep bool
	// mayCopy: the list may still go to the copy engine. headSeen counts
	// the hashes of the jobs the in-place head phase read and left (up to
	// maxHeadSeen); a later scan of the list from its head (the copy, or
	// the fall-back after it) takes them as read already (scanAgain):
	// kept, and not counted again.
	mayCopy  bool
	length   int64 // the list's length when the copy was first thought of
	headSeen map[uint64]int
}

// maxHeadSeen bounds listRun.headSeen; past it, jobs read again by a copy
// count as scanned twice.
const maxHeadSeen = 1 << 17

func (r *run) problem(p ...inspect.Problem) {
	r.mu.Lock()
	r.res.Problems = append(r.res.Problems, p...)
	r.mu.Unlock()
}

func (r *run) execute(ctx context.Context) error {
	// Redis calls run on a context that an interrupt does not cancel, so a
	// script in flight is never abandoned half-read; the run stops between
	// batches instead.
	r.interrupt = ctx
	work := context.WithoutCancel(ctx)
	if !r.opts.DryRun {
		release, err := r.prepare(work)
		defer release()
		if err != nil {
			return err
		}
	}
	if r.opts.OnlyFailed {
		return r.sweepFailedLists(work)
	}
	if r.opts.Orphans {
		r.seen = idSet{}
	}
	if err := r.sweepAllQueues(work); err != nil {
		return err
	}
	if err := r.sweepDelayed(work); err != nil {
		return err
	}
	if err := r.sweepFailedLists(work); err != nil {
		return err
	}
	if r.opts.Orphans {
		if r.opts.Limit > 0 && r.removedSoFar.Load() >= r.opts.Limit {
			return errLimit
		}
		var err error
		r.res.Orphans, err = r.sweepOrphans(work, r.seen, orphanHold(r.opts.OrphanGrace))
		return err
	}
	return nil
}

// prepare readies a run that writes: permissions, the lock, the record of
// its scripts' answers, the scripts, and what an interrupted run left (the
// copies, the journal). release undoes it at the end of the run.
func (r *run) prepare(ctx context.Context) (release func(), err error) {
	var undo []func()
	release = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if err := CheckPermissions(ctx, r.s.rdb, r.sweepNeeds()); err != nil {
		return release, err
	}
	lock, err := AcquireLock(ctx, r.s.rdb, r.s.layout.Lock(), r.opts.LockTTL)
	if err != nil {
		return release, err
	}
	r.lock = lock
	undo = append(undo, func() { _ = lock.Release(ctx) })
	r.runID = once.NewRunID()
	r.requests = once.NewRequests(r.s.layout.Requests(r.runID))
	undo = append(undo, func() { _ = r.requests.Done(ctx, r.s.rdb) })
	if err := LoadScripts(ctx, r.s.rdb); err != nil {
		if redis.IsReadOnlyError(err) {
			return release, ErrReadOnly
		}
		return release, err
	}
	if err := r.recoverCopies(ctx); err != nil {
		return release, err
	}
	if r.opts.Archive != nil {
		n, err := r.drainJournal(ctx)
		if err != nil {
			return release, err
		}
		r.res.Recovered = n
	} else if n, err := r.s.rdb.LLen(ctx, r.s.layout.Journal()).Result(); err == nil && n > 0 {
		r.res.Problems = append(r.res.Problems, inspect.Problem{Key: r.s.layout.Journal(), Kind: "unarchived-journal",
			Detail: fmt.Sprintf("%d records of jobs removed by an interrupted archiving sweep are waiting; rerun with --archive to write them out", n)})
	}
	return release, nil
}

// sweepAllQueues sweeps the registered queues while discovery's SCAN of
// the keyspace looks for unregistered lists in the background; those come
// after. An interrupt stops that SCAN too.
func (r *run) sweepAllQueues(ctx context.Context) error {
	r.mu.Lock()
	problemsAt := len(r.res.Problems)
	r.mu.Unlock()
	var total int64
	sweepPart := func(readable []inspect.QueueInfo) ([]QueueResult, error) {
		for _, q := range readable {
			total += q.Length
		}
		if r.opts.Progress != nil {
			r.mu.Lock()
			r.opts.Progress.SetTotal(total)
			r.mu.Unlock()
		}
		results := make([]QueueResult, len(readable))
		for i, q := range readable {
			results[i].Queue = q.Name
		}
		return results, r.sweepQueues(ctx, readable, results)
	}
	queues, qp, err := inspect.ScanQueues(r.interrupt, r.s.scanner, sweepPart, func(q *QueueResult) string { return q.Queue })
	r.res.Queues = append(r.res.Queues, queues...)
	r.mu.Lock()
	r.res.Problems = append(r.res.Problems[:problemsAt], append(qp, r.res.Problems[problemsAt:]...)...)
	r.mu.Unlock()
	return err
}

// sweepDelayed sweeps resque-scheduler's delayed buckets, in place.
func (r *run) sweepDelayed(ctx context.Context) error {
	if !r.opts.Delayed {
		return nil
	}
	r.res.Delayed = &QueueResult{Queue: "(delayed)"}
	lr := &listRun{r: r, q: r.res.Delayed, maxVictims: startVictims, trimVictims: maxVictims}
	qstart := time.Now()
	problems, err := r.s.scanner.ScanDelayed(ctx, lr.visit, nil)
	lr.q.Elapsed = time.Since(qstart).Seconds()
	r.tally(lr.q)
	r.problem(problems...)
	return err
}

// sweepQueues sweeps the queues, inspect.Concurrency at a time (each queue
// still page by page, in order). The first error
// stops the others at their next page.
func (r *run) sweepQueues(ctx context.Context, queues []inspect.QueueInfo, results []QueueResult) error {
	errs := parallel.Each(len(queues), inspect.Concurrency, func(i int) error {
		q := queues[i]
		lr := &listRun{r: r, q: &results[i], maxVictims: startVictims, trimVictims: maxVictims}
		qstart := time.Now()
		err := lr.sweepList(ctx, inspect.ListRef{Key: q.Key, Queue: q.Name})
		lr.q.Elapsed = time.Since(qstart).Seconds()
		if !r.opts.DryRun && lr.q.Engine == "" {
			lr.q.Engine = engineInPlace
		}
		if err != nil && inspect.IsWrongType(err) {
			r.problem(inspect.WrongTypeProblem(q.Key, err))
			return nil
		}
		if err != nil {
			r.halt.Store(true)
		}
		return err
	})
	for i := range results {
		r.tally(&results[i])
	}
	// Report the most telling error: a failure before a reason to stop,
	// and that before "stopped because another list stopped".
	var first error
	for _, err := range errs {
		if first == nil || stopRank(err) > stopRank(first) {
			first = err
		}
	}
	return first
}

func stopRank(err error) int {
	switch {
	case errors.Is(err, errHalted):
		return 0
	case errors.Is(err, errLimit), errors.Is(err, errDeadline), errors.Is(err, errStopped):
		return 1
	}
	return 2
}

// tally adds a finished queue's counts to the totals.
func (r *run) tally(q *QueueResult) { r.res.Counts.add(q.Counts) }

// maxRemembered bounds the deleted-keys memory (about 25MB). Past it, a
// later copy of a removed job finds no key and is judged missing: kept, the
// safe side; the next sweep cannot tell either, and reports it as missing.
const maxRemembered = 1 << 18

// keyHash is the 128-bit FNV-1a hash of a key.
func keyHash(key string) [16]byte {
	h := fnv.New128a()
	_, _ = h.Write([]byte(key))
	var out [16]byte
	h.Sum(out[:0])
	return out
}

// candidate is one job a page selected for removal.
type candidate struct {
	i     int // index into the chunk
	job   *inspect.Job
	byAge bool
}

func (lr *listRun) visit(ctx context.Context, c *inspect.Chunk) error {
	r := lr.r
	if err := r.checkStop(); err != nil {
		return err
	}
	cands, n := lr.judgePage(c)
	if lr.wantsCopy(ctx, c, cands) {
		return errSwitchCopy
	}
	lr.q.add(n)
	r.notePage(c, int(n.Scanned))
	// Reserve this page's removals; trim what the limit does not allow.
	keep, limitHit := r.reserve(len(cands))
	cands = cands[:keep]
	if r.opts.DryRun {
		out := make([]Removal, 0, len(cands))
		for _, cd := range cands {
			lr.q.Removed++
			if r.opts.Limit == 0 {
				r.removedSoFar.Add(1)
			}
			out = append(out, r.removal(c, cd, true))
		}
		r.emit(out)
	} else if err := lr.removeInPlace(ctx, c, cands); err != nil {
		return err
	}
	lr.rememberHead(c)
	if limitHit {
		r.halt.Store(true)
		return errLimit
	}
	return nil
}

// judgePage picks a page's candidates for removal and counts what it read.
// A job the list's head phase read and left already (Known: see
// scanAgain) is neither counted again nor a candidate.
func (lr *listRun) judgePage(c *inspect.Chunk) ([]candidate, Counts) {
	r := lr.r
	var q Counts
	var cands []candidate
	for i := range c.Jobs {
		j := &c.Jobs[i]
		if j.Known {
			continue
		}
		q.Scanned++
		if j.Skipped {
			q.Skipped++
			continue
		}
		byAge := false
		if j.State == inspect.StateMissing {
			r.mu.Lock()
			nanos, ok := r.deleted[keyHash(j.ExpirationKey)]
			r.mu.Unlock()
			if ok {
				// DeadlineRaw stays "": no key is what the script will find.
				j.State, j.Deadline = inspect.StateExpired, time.Unix(0, nanos).UTC()
			}
		}
		switch {
		case j.State == inspect.StateExpired:
			q.Expired++
			if c.Now.Sub(j.Deadline) < r.opts.Grace {
				q.Skipped++
				continue
			}
		case j.State == inspect.StateMissing && r.opts.MaxAge > 0 && !j.EnqueuedAt.IsZero() && c.Now.Sub(j.EnqueuedAt) > r.opts.MaxAge:
			q.Expired++
			byAge = true
		default:
			continue
		}
		cands = append(cands, candidate{i: i, job: j, byAge: byAge})
	}
	return cands, q
}

// notePage tells the progress of scanned jobs read and the orphan sweep
// of the page's ids.
func (r *run) notePage(c *inspect.Chunk, scanned int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opts.Progress != nil && scanned > 0 {
		r.opts.Progress.Add(scanned)
	}
	if r.seen != nil {
		r.seen.addChunk(c)
	}
}

// scanAgain is the scanner for a scan of the list from its head after its
// head phase (the copy, or the fall-back after an aborted copy): the jobs
// the head phase read and left (headSeen) come unjudged, Known, as many
// times as it left them — neither decoded nor their deadlines read again.
// (They were judged seconds before: one that expired since stays for the
// next run, as the copy's own late-expiring jobs do.)
func (lr *listRun) scanAgain() *inspect.Scanner {
	if len(lr.headSeen) == 0 {
		return lr.r.s.scanner
	}
	return lr.r.s.scanner.WithKnown(&seenJobs{seed: lr.r.hashSeed, left: cloneCounts(lr.headSeen)})
}

// seenJobs is the inspect.Known of a scan again: the head phase's jobs not
// yet read again, by hash.
type seenJobs struct {
	seed maphash.Seed
	left map[uint64]int
}

func (k *seenJobs) Take(raw string) bool {
	h := maphash.String(k.seed, raw)
	if k.left[h] > 0 {
		k.left[h]--
		return true
	}
	return false
}

func (k *seenJobs) Give(raw string) { k.left[maphash.String(k.seed, raw)]++ }

// rememberHead notes the jobs a page of a list that may still go to the
// copy engine left in the list (see listRun.headSeen).
func (lr *listRun) rememberHead(c *inspect.Chunk) {
	if !lr.mayCopy {
		return
	}
	if lr.headSeen == nil {
		lr.headSeen = map[uint64]int{}
	}
	for i := range c.Jobs {
		if len(lr.headSeen) >= maxHeadSeen {
			return
		}
		if i < len(c.Removed) && c.Removed[i] {
			continue
		}
		lr.headSeen[maphash.String(lr.r.hashSeed, c.Jobs[i].Raw)]++
	}
}

// removeInPlace removes a page's candidates in place: a run at the head
// with head_trim.lua, the others with remove_expired.lua.
func (lr *listRun) removeInPlace(ctx context.Context, c *inspect.Chunk, cands []candidate) error {
	if len(cands) == 0 {
		return nil
	}
	c.Removed = make([]bool, len(c.Jobs))
	// A page's candidates may take several scripts. Each script's
	// removals shift the later candidates left; shifted tells the next
	// script where to look.
	shifted := int64(0)
	lr.avgBytes = avgPayload(c)
	cands, shifted, err := lr.headTrims(ctx, c, cands)
	if err != nil {
		return err
	}
	for len(cands) > 0 {
		n := lr.take(cands)
		gone, err := lr.remove(ctx, c, cands[:n], shifted)
		if err != nil {
			return err
		}
		shifted += gone
		cands = cands[n:]
	}
	return nil
}

// reserve takes n removals from the run's --limit, which lists swept at
// once share. It returns how many of them the limit allows and whether the
// limit is reached.
func (r *run) reserve(n int) (int, bool) {
	if r.opts.Limit <= 0 || n == 0 {
		return n, false
	}
	over := r.removedSoFar.Add(int64(n)) - r.opts.Limit
	if over < 0 {
		return n, false
	}
	keep := max(0, n-int(over))
	r.removedSoFar.Add(-int64(n - keep))
	return keep, true
}

// errHalted stops a list because another list stopped the run.
var errHalted = errors.New("halted")

func (r *run) checkStop() error {
	if r.halt.Load() {
		return errHalted
	}
	select {
	case <-r.interrupt.Done():
		return errStopped
	default:
	}
	if r.lock != nil {
		select {
		case <-r.lock.Lost():
			return ErrLockLost
		default:
		}
	}
	if r.opts.MaxDuration > 0 && time.Since(r.start) >= r.opts.MaxDuration {
		return errDeadline
	}
	return nil
}

// remove runs the removal script for some of a page's candidates, whose
// list positions have moved left by shift since the page was read. It
// returns how many of them are no longer in the list.
func (lr *listRun) remove(ctx context.Context, c *inspect.Chunk, cands []candidate, shift int64) (int64, error) {
	r := lr.r
	n := len(cands)
	delayed := c.List.Delayed()
	keys := make([]string, 0, 5+2*n)
	keys = append(keys, c.List.Key, r.s.layout.Failed(), r.s.layout.Journal(), r.s.layout.DelayedSchedule(), r.s.layout.Stats())
	for _, cd := range cands {
		keys = append(keys, cd.job.ExpirationKey)
	}
	if delayed {
		for _, cd := range cands {
			keys = append(keys, r.s.layout.Timestamps(cd.job.Raw))
		}
	}
	bucket := ""
	if delayed {
		bucket = fmt.Sprint(c.List.DelayedAt)
	}
	args := make([]any, 0, 6+6*n)
	args = append(args, r.marker, flag(r.opts.ToFailed), flag(r.opts.Archive != nil), bucket, lr.slack(), StatsField(r.opts, c.List))
	now := r.opts.Now().UTC()
	for _, cd := range cands {
		deadline := cd.job.DeadlineRaw
		if cd.byAge {
			deadline = ""
		}
		var failure, record string
		if r.opts.ToFailed {
			failure = r.failureEntry(cd, c, now)
		}
		if r.opts.Archive != nil {
			record = r.archiveRecord(cd, c, now)
		}
		args = append(args, cd.job.Raw, cd.job.Index-shift, deadline, r.due(cd).UnixMilli(), failure, record)
	}
	// Under the fence's read lock, so that a copy's cutover counts this
	// script's LSETs and LREM as the tool's own (copy_fence.go).
	r.fence.mu.RLock()
	reply, err := r.requests.Run(ctx, r.s.rdb, removeExpiredScript, keys, args...).Int64Slice()
	if err == nil && len(reply) == n+1 {
		r.fence.removalRan(reply[:n])
	}
	r.fence.mu.RUnlock()
	if err != nil {
		if redis.IsReadOnlyError(err) {
			return 0, ErrReadOnly
		}
		return 0, fmt.Errorf("remove expired jobs from %s: %w", c.List.Key, err)
	}
	if len(reply) != n+1 {
		return 0, fmt.Errorf("remove expired jobs from %s: script answered %d values for %d jobs", c.List.Key, len(reply), n)
	}
	lr.adapt(time.Duration(reply[n])*time.Microsecond, n)
	return lr.settle(ctx, c, cands, reply[:n])
}

// settle counts what a removal script did to cands (a code per candidate:
// 1 removed, 0 gone, else kept), tells the scanner which jobs left the
// list, and writes the journal out to the archive. It returns how many
// candidates are no longer in the list.
func (lr *listRun) settle(ctx context.Context, c *inspect.Chunk, cands []candidate, codes []int64) (int64, error) {
	var gone int64
	out := make([]Removal, 0, len(codes))
	removed := make([]*inspect.Job, 0, len(codes))
	for k, code := range codes {
		cd := cands[k]
		if code == 1 {
			removed = append(removed, cd.job)
		}
		if lr.settleCode(c, cd.i, code) {
			gone++
		}
		if code == 1 {
			out = append(out, lr.r.removal(c, cd, false))
		}
	}
	lr.r.remember(removed)
	lr.r.emit(out)
	return gone, lr.r.archiveBatch(ctx)
}

// settleCode counts a removal script's answer for the job at c.Jobs[i]:
// 1 removed, 0 gone (a worker took it), anything else kept (its deadline
// changed, or by Redis's clock it is not due yet). It says whether the job
// left the list, and gives back to --limit what was reserved for a job not
// removed.
func (lr *listRun) settleCode(c *inspect.Chunk, i int, code int64) (left bool) {
	r, q := lr.r, lr.q
	switch code {
	case 1:
		q.Removed++
		if r.opts.Limit == 0 {
			r.removedSoFar.Add(1)
		}
		c.Removed[i] = true
		return true
	case 0:
		q.AlreadyGone++
		c.Removed[i] = true
		if c.Popped == nil {
			c.Popped = make([]bool, len(c.Jobs))
		}
		c.Popped[i] = true
		left = true
	default:
		q.Changed++
	}
	if r.opts.Limit > 0 {
		r.removedSoFar.Add(-1) // reserved, but not removed
	}
	return left
}

// remember notes the deadlines of removed jobs' deleted keys, so that a
// later page showing one of the jobs again (without its key) judges it the
// same. The keys are hashed before the run's mutex is taken, once a page.
func (r *run) remember(jobs []*inspect.Job) {
	type noted struct {
		key [16]byte
		at  int64
	}
	var notes []noted
	for _, j := range jobs {
		if j.DeadlineRaw != "" {
			notes = append(notes, noted{keyHash(j.ExpirationKey), j.Deadline.UnixNano()})
		}
	}
	if len(notes) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deleted == nil {
		r.deleted = map[[16]byte]int64{}
	}
	for _, n := range notes {
		if len(r.deleted) < maxRemembered {
			r.deleted[n.key] = n.at
		}
	}
}

// archiveBatch writes the journal out to the archive after a batch, under
// --archive (the journal is shared by lists swept at once).
func (r *run) archiveBatch(ctx context.Context) error {
	if r.opts.Archive == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.drainJournal(ctx)
	return err
}

// due is when, by Redis's clock, a candidate may go: its deadline plus the
// grace, or (judged by age) its enqueue time plus the maximum age. The script
// compares it with Redis's TIME, so neither a host clock running ahead nor a
// slow run can remove a job before then.
func (r *run) due(cd candidate) time.Time {
	if cd.byAge {
		return cd.job.EnqueuedAt.Add(r.opts.MaxAge)
	}
	return cd.job.Deadline.Add(r.opts.Grace)
}

// adapt sizes the next removal script from the last one's own time (as the
// script measured it: the round trip would add whatever other clients'
// commands ran before it, and shrink scripts for their sake). Over the
// budget, the batch shrinks in proportion; well under it, it grows. A
// script's time has a fixed part, above all the LREM that scans from the
// nearer end of the list to the markers, which grows with depth: once even
// the smallest batch runs over the budget, splitting only repeats that scan,
// so from there on the list goes a whole page per script (deep mode).
func (lr *listRun) adapt(took time.Duration, n int) {
	budget := lr.r.opts.MaxScriptTime
	switch {
	case lr.deep:
	case took > budget && n <= minVictims:
		lr.deep, lr.maxVictims = true, maxVictims
	default:
		lr.maxVictims = resize(lr.maxVictims, n, took, budget)
	}
}

// resize is the next batch size of a script that took took for n jobs with
// size as its batch size: over the budget it shrinks in proportion, well
// under it (a full batch) it grows by half, between minVictims and
// maxVictims.
func resize(size, n int, took, budget time.Duration) int {
	switch {
	case took > budget:
		return max(minVictims, int(float64(n)*0.8*float64(budget)/float64(took)))
	case took < budget/2 && n >= size:
		return min(maxVictims, size+size/2)
	}
	return size
}

// Bounds of the bytes one removal script moves: the window of the list it
// reads around its candidates, and its arguments (each candidate's payload,
// and again in its failure entry and archive record). With them a script
// stays within its time budget whether payloads are 100 bytes or 1 MB.
const (
	windowBytes = 512 << 10
	argBytes    = 512 << 10
	// maxSlack is how far around the read positions a script looks for
	// its candidates when payloads are small.
	maxSlack = 256
)

// avgPayload is the mean payload size of a page, at least 1.
func avgPayload(c *inspect.Chunk) int {
	total := 0
	for i := range c.Jobs {
		total += len(c.Jobs[i].Raw)
	}
	return max(1, total/max(1, len(c.Jobs)))
}

// slack is how far around the read positions the next script looks: a
// quarter of the window's bytes on each side, between 1 and maxSlack jobs.
// A candidate pushed further than that by workers' pops counts as gone,
// the safe side.
func (lr *listRun) slack() int {
	return min(maxSlack, max(1, windowBytes/4/lr.avgBytes))
}

// entryCopies is how many copies of a removed job's payload its script
// writes besides removing it: a failure entry (--to-failed), an archive
// record (--archive).
func (r *run) entryCopies() int {
	n := 0
	if r.opts.ToFailed {
		n++
	}
	if r.opts.Archive != nil {
		n++
	}
	return n
}

// take says how many of cands (in list order) the next removal script
// handles (see budget).
func (lr *listRun) take(cands []candidate) int {
	// The payload itself, then its copies; 64: besides them, a
	// candidate's index, deadline and due time.
	n := lr.budget(len(cands), 1+lr.r.entryCopies(), 64, func(k int) *inspect.Job { return cands[k].job })
	// Near the head, scripts stay short: at most headVictims each.
	if cands[0].job.Index < lr.r.opts.headReach {
		n = min(n, headVictims)
	}
	return n
}

// budget says how many of n candidates (job(k) the k-th, in list order) a
// script handles: at most maxVictims, and no more than its window and
// argument budgets allow, each candidate sending its payload copies times
// and extra bytes besides; but always at least one.
func (lr *listRun) budget(n, copies, extra int, job func(k int) *inspect.Job) int {
	first := job(0).Index
	args := 0
	for k := 0; k < n; k++ {
		if k == lr.maxVictims {
			return k
		}
		j := job(k)
		args += copies*len(j.Raw) + extra
		span := int(j.Index-first) * lr.avgBytes
		if k > 0 && (args > argBytes || span > windowBytes/2) {
			return k
		}
	}
	return n
}

// DefaultMaxScriptTime is the default budget of one removal script's own
// time. The script does not see all of its command's time: Redis turns its
// keys and arguments into Lua strings before it starts, and a machine's
// hiccup lands on any command. With 4 ms, head trims at 1M jobs took 6.2 ms
// at the 99th percentile and 19-27 of about 550 a run took 5 ms or more
// (SLOWLOG); with 2 ms, 3.6-4.1 ms and 1-2 of 800-1000, for the same Redis
// time in all.
const DefaultMaxScriptTime = 2 * time.Millisecond

// Bounds of the number of jobs one removal script handles.
const (
	minVictims   = 32
	startVictims = 250
	maxVictims   = 1000
)

func (r *run) removal(c *inspect.Chunk, cd candidate, dry bool) Removal {
	j := cd.job
	rm := Removal{Queue: j.Queue, List: c.List.Key, DelayedAt: c.List.DelayedAt, ID: j.ID, Class: j.Class,
		ExpiresAt: j.Deadline, Payload: j.Raw, DryRun: dry, ByAge: cd.byAge}
	if cd.byAge {
		rm.EnqueuedAt = j.EnqueuedAt
		rm.OverdueBy = c.Now.Sub(j.EnqueuedAt) - r.opts.MaxAge
	} else {
		rm.OverdueBy = c.Now.Sub(j.Deadline)
	}
	return rm
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// FailureException is the exception name of the failure entries --to-failed writes.
const FailureException = "ResqueExpire::JobExpired"

// failureEntry is a Resque failure entry for a removed job, shaped as
// lib/resque/failure/redis.rb writes them so resque-web lists and retries it.
func (r *run) failureEntry(cd candidate, c *inspect.Chunk, now time.Time) string {
	j := cd.job
	var msg string
	if cd.byAge {
		msg = fmt.Sprintf("job had no deadline and was enqueued at %s, older than the maximum age %s",
			j.EnqueuedAt.UTC().Format(time.RFC3339), r.opts.MaxAge)
	} else {
		msg = fmt.Sprintf("job expired at %s, %s overdue when removed",
			j.Deadline.UTC().Format(time.RFC3339), c.Now.Sub(j.Deadline).Truncate(time.Second))
	}
	queue := j.Queue
	entry := struct {
		FailedAt  string          `json:"failed_at"`
		Payload   json.RawMessage `json:"payload"`
		Exception string          `json:"exception"`
		Error     string          `json:"error"`
		Backtrace []string        `json:"backtrace"`
		Worker    string          `json:"worker"`
		Queue     string          `json:"queue"`
	}{now.Format("2006/01/02 15:04:05 UTC"), compactJSON(j.Raw), FailureException, msg, []string{}, r.worker, queue}
	return resque.Marshal(entry)
}

// ArchiveRecord is one line of an archive file.
type ArchiveRecord struct {
	RemovedAt time.Time `json:"removed_at"`
	Queue     string    `json:"queue"`
	List      string    `json:"list"`
	DelayedAt int64     `json:"delayed_at,omitempty"`
	ID        string    `json:"id"`
	Class     string    `json:"class"`
	ExpiresAt string    `json:"expires_at"`
	// Deadline is the expiration key's value as it was ("" when none).
	Deadline string `json:"deadline"`
	// Position is the job's index in its list when it was read; it tells
	// two identical jobs removed in the same batch apart.
	Position int64  `json:"position"`
	Payload  string `json:"payload"`
	// Failed, for a removed failure entry, names its failed list ("failed",
	// "<queue>_failed"); Payload is then the whole entry.
	Failed string `json:"failed,omitempty"`
	// Target is the run's target when it swept many (--targets).
	Target string `json:"target,omitempty"`
}

func (r *run) archiveRecord(cd candidate, c *inspect.Chunk, now time.Time) string {
	j := cd.job
	rec := ArchiveRecord{RemovedAt: now, Queue: j.Queue, List: c.List.Key, DelayedAt: c.List.DelayedAt,
		ID: j.ID, Class: j.Class, Payload: j.Raw, Position: j.Index, Target: r.opts.Target}
	if !cd.byAge {
		rec.ExpiresAt = j.Deadline.UTC().Format(time.RFC3339)
		rec.Deadline = j.DeadlineRaw
	}
	return resque.Marshal(rec)
}

func compactJSON(s string) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		// Never happens for expired jobs (their payloads decoded), but a
		// failure entry must stay valid JSON whatever happens.
		q, _ := json.Marshal(s)
		return q
	}
	return b.Bytes()
}
