package sweep

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
)

// The copy engine (docs/sweep.md, "Two engines"). Near the head of a list
// expired jobs are removed in place (remove_expired.lua, head_trim.lua). At
// the first page with a victim deeper than the head reach, a long queue is
// instead copied: its survivors, page by page from the head, into a private
// list in its hash slot, the victims' deadline keys, archive records and
// failure entries into staging lists, while workers keep popping the live
// list and producers pushing to it; then cutover.lua swaps the copy in, in
// one short script, and the staging is drained in bounded steps.

// Defaults of the engine choice's thresholds (Options.headReach and
// Options.copyMinLen set them for tests).
const (
	// defaultHeadReach: victims within this many elements of the head are
	// removed in place. A removal script's fixed part (its window, the LREM
	// scan) grows with depth: with a reach of 20,000, 55-63 scripts a run
	// on two queues of 45,000 jobs took 5 ms or more (those near the reach,
	// in deep mode); within 10,000, one did, and the 99th percentile was
	// under 3 ms.
	defaultHeadReach = 10_000
	// defaultCopyMinLen: shorter lists are never copied. A list is copied
	// as soon as a victim lies beyond the head reach, however long it is: a
	// script past the reach costs more than its budget. (The minimum was
	// 50,000: two queues of 45,000 jobs, half of them expired at random,
	// went in place all the way, in scripts of 4 ms at the median, 39-80 a
	// run of 5 ms or more.)
	defaultCopyMinLen = defaultHeadReach
	// headVictims caps the victims of an in-place script near the head.
	headVictims = 250
	// defaultCutoverTail: the most pushed elements the cutover appends;
	// beyond it the client copies more first.
	defaultCutoverTail = 2000
	// cutoverWindow: the positions of the record around X's head the
	// cutover is told, to find the head in after pops.
	cutoverWindow = 256
	// copyAnchor: the last copied elements the cutover finds at the end.
	copyAnchor = 3
	// recordPresize bounds the room made for a copy's record at its start.
	recordPresize = 1 << 20
	// stagedBytes estimates what a victim's staging costs Redis.
	// (deadline key, value, log record, and the list's overhead).
	stagedBytes = 200
	// memoryCheckPages: the memory guard looks again this often.
	memoryCheckPages = 32
	// earlyCopyShare, earlyCopyReaches: a page whose candidates outside a
	// run at the head are at least 1/earlyCopyShare of its jobs sends a
	// queue at least earlyCopyReaches head reaches long to the copy engine
	// at once, however near the head they lie (four fifths of such a
	// queue's victims lie beyond the reach, where they are copied anyway).
	earlyCopyShare   = 8
	earlyCopyReaches = 5
	// copyAttempts bounds the cutover's retries.
	copyAttempts = 8
)

var (
	// errSwitchCopy stops a list's in-place scan: the copy engine takes it.
	errSwitchCopy = errors.New("switch to the copy engine")
	// errCopyScanDone stops a copy's scan once --limit is reached: the
	// rest of the list is copied as it is, unjudged.
	errCopyScanDone = errors.New("copy the rest unjudged")
	// errCrashed, returned by a test's copy hook, stops the run as a kill
	// would at that point: nothing is cleaned up.
	errCrashed = errors.New("crashed (test hook)")
)

// copyAbort is a copy given up: its keys are deleted and the live list was
// never touched. fallBack: the list is swept in place instead; otherwise
// err (the reason the run stops) is returned.
type copyAbort struct {
	reason   string
	fallBack bool
	err      error
}

func (e *copyAbort) Error() string { return "copy-aborted: " + e.reason }

func abortFallBack(reason string) error { return &copyAbort{reason: reason, fallBack: true} }

// sweepList sweeps one queue: in place, switching to the copy engine when
// visit asks for it, and back in place should the copy abort.
func (lr *listRun) sweepList(ctx context.Context, ref inspect.ListRef) error {
	r := lr.r
	lr.mayCopy = !r.opts.DryRun && ref.Queue != "" && !ref.Delayed() && ref.Failed == "" && copyable(ref.Key)
	// In place, after a visit that removed jobs, the next page's LRANGE
	// goes before the visit's removals (a read during them would look for
	// the page's last jobs, which the visit may have just removed) and its
	// decoding during them; after one that removed nothing, the pages
	// after it are read ahead. A dry run's visits remove nothing: its
	// pages are read ahead all the way.
	scan := r.s.scanner.ScanListRemoving
	if r.opts.DryRun {
		scan = r.s.scanner.ScanListAhead
	}
	_, err := scan(ctx, ref, lr.visit)
	if !errors.Is(err, errSwitchCopy) {
		return err
	}
	err = lr.copyList(ctx, ref)
	var ab *copyAbort
	if errors.As(err, &ab) {
		if !ab.fallBack {
			return ab.err
		}
		lr.mayCopy = false
		_, err = lr.scanAgain().ScanListRemoving(ctx, ref, lr.visit)
	}
	return err
}

// wantsCopy says whether the page's candidates send the list to the copy
// engine: one lies deeper than the head reach (or, in a list several head
// reaches long, they are spread through the page), the list is a long queue,
// the user may run what a copy runs, and Redis has the memory.
func (lr *listRun) wantsCopy(ctx context.Context, c *inspect.Chunk, cands []candidate) bool {
	r := lr.r
	if !lr.mayCopy || len(cands) == 0 {
		return false
	}
	deep := cands[len(cands)-1].job.Index >= r.opts.headReach
	// Victims spread through the page (not a run at the head, which
	// head_trim.lua removes at once) are as many in the pages after it,
	// most likely: in a list at least earlyCopyReaches head reaches long,
	// most of them lie beyond the head reach and will be copied anyway, so
	// the copy starts now rather than after a head phase of in-place
	// scripts, each scanning further into the list, whose survivors the
	// copy then reads again.
	spread := len(cands)-headRunLen(c, cands, 0) >= max(1, len(c.Jobs)/earlyCopyShare)
	if !deep && !spread {
		return false
	}
	if lr.length == 0 {
		n, err := r.s.rdb.LLen(ctx, c.List.Key).Result()
		if err != nil {
			lr.mayCopy = false
			return false
		}
		lr.length = max(1, n)
	}
	if !deep && lr.length < earlyCopyReaches*r.opts.headReach {
		return false // not decided: a deeper page may still copy the list
	}
	lr.mayCopy = false // decided once per list
	n, err := r.s.rdb.LLen(ctx, c.List.Key).Result()
	if err != nil || n < r.opts.copyMinLen {
		return false
	}
	if reason := r.copyDenied(ctx); reason != "" {
		return false
	}
	// Copies of several lists run at once: the memory check and the
	// reservation of this copy's estimate are one step.
	r.copyMu.Lock()
	defer r.copyMu.Unlock()
	m, err := readMemory(ctx, r.s.rdb)
	if err != nil {
		r.problem(inspect.Problem{Key: c.List.Key, Kind: "copy-skipped", Detail: "removed in place: " + err.Error()})
		return false
	}
	// The copy holds the survivors' payloads and the victims' staging: by
	// the share of victims read so far in this list, this page included.
	victims := float64(lr.q.Expired+int64(len(cands))) / float64(max(1, lr.q.Scanned+int64(len(c.Jobs))))
	est := int64(float64(n) * ((1-victims)*float64(avgPayload(c)) + victims*stagedBytes))
	// What the other copies in flight may still add is spoken for.
	others := r.copiesRest("")
	if m.max > 0 && m.max-m.used-others < 2*est {
		detail := fmt.Sprintf("removed in place: a copy may need about %d bytes, and maxmemory leaves %d (a copy needs twice its size free)",
			est, m.max-m.used)
		if others > 0 {
			detail += fmt.Sprintf(", of which the copies of other lists in flight may still take %d", others)
		}
		r.problem(inspect.Problem{Key: c.List.Key, Kind: "copy-skipped", Detail: detail})
		return false
	}
	if r.copyRest == nil {
		r.copyRest = map[string]int64{}
	}
	r.copyRest[c.List.Key] = est
	lr.mayCopy = true
	return true
}

// copiesRest is what the copies in flight, but that of list except, may
// still add to Redis's memory by their estimates (under copyMu).
func (r *run) copiesRest(except string) int64 {
	var n int64
	for k, v := range r.copyRest {
		if k != except {
			n += v
		}
	}
	return n
}

// copyDenied probes, once per run, whether the user may run what the copy
// engine runs; it answers why not, or "".
func (r *run) copyDenied(ctx context.Context) string {
	r.copyProbe.Do(func() {
		if err := CheckPermissions(ctx, r.s.rdb, CopyNeeds(r.s.layout)); err != nil {
			r.copyRefused = err.Error()
			r.problem(inspect.Problem{Key: copiesRegistry(r.s.layout), Kind: "copy-skipped",
				Detail: "deep queues are removed in place: " + err.Error()})
		}
	})
	return r.copyRefused
}

// copyRun is one list's copy.
type copyRun struct {
	lr   *listRun
	ref  inspect.ListRef
	keys copyKeys
	// The record: a hash and a survivor bit per copied element, in order.
	hashes []uint64
	surv   []bool
	last   []string // the last copied payloads (up to copyAnchor)
	// nsurv survivors pushed to the copy; nvict victims staged.
	nsurv, nvict int64
	// counts of the judged pages, added to the queue's at the cutover.
	counts   Counts
	limitHit bool
	// maxDue: the latest a staged victim is due (Unix ms, by Redis's clock).
	maxDue int64
	pages  int
	// The fence's counts and the tool's own at the start.
	fenceBase, own0  fenceCounts
	memBase, memPeak int64
	copyBytes        int64 // MEMORY USAGE of the copy and staging at the cutover
	startLen         int64
	avgBytes         int64
	// lastP: the record position of the list's head when last seen;
	// prefAt, prefS, prefV: survivors and victims before position prefAt.
	lastP, prefAt, prefS, prefV int
	committed, slotFreed        bool
	// pending: the last page's pushes, in flight (see push).
	pending chan error
}

// copyList runs the copy engine on one list. Copies of several lists run
// at once, as their scans do: wantsCopy reserved this one's memory.
func (lr *listRun) copyList(ctx context.Context, ref inspect.ListRef) error {
	r := lr.r
	cp := &copyRun{lr: lr, ref: ref, keys: newCopyKeys(ref.Key, r.runID)}
	defer cp.releaseSlot()
	return cp.finish(ctx, cp.run(ctx))
}

// releaseSlot gives back the memory reserved for the copy: once its cutover
// freed the old list (its drain needs little memory), or it ended.
func (cp *copyRun) releaseSlot() {
	if !cp.slotFreed {
		cp.slotFreed = true
		r := cp.lr.r
		r.copyMu.Lock()
		delete(r.copyRest, cp.ref.Key)
		r.copyMu.Unlock()
	}
}

func (cp *copyRun) hook(phase string) error {
	if h := cp.lr.r.opts.copyHook; h != nil {
		return h(phase, cp.ref.Key)
	}
	return nil
}

func (cp *copyRun) run(ctx context.Context) error {
	r := cp.lr.r
	if err := cp.start(ctx); err != nil {
		return err
	}
	// The copy's visit never removes from the list: read ahead.
	_, err := cp.lr.scanAgain().ScanListAhead(ctx, cp.ref, cp.visit)
	if werr := cp.wait(); err == nil || errors.Is(err, errCopyScanDone) {
		if werr != nil {
			return werr
		}
	}
	if err != nil && !errors.Is(err, errCopyScanDone) {
		return err
	}
	if err := cp.hook("before-cutover"); err != nil {
		return err
	}
	if err := cp.cutover(ctx); err != nil {
		return err
	}
	cp.releaseSlot()
	if err := cp.hook("after-cutover"); err != nil {
		return err
	}
	if err := r.drainCommitted(ctx, cp.keys, func() error { return cp.hook("drain") }); err != nil {
		return err
	}
	return r.s.rdb.SRem(ctx, copiesRegistry(r.s.layout), registryMember(cp.keys.token, cp.ref.Key)).Err()
}

// start registers the copy (so that a later run finds what a dead one
// leaves) and records the fence and the memory it starts from.
func (cp *copyRun) start(ctx context.Context) error {
	r := cp.lr.r
	rdb := r.s.rdb
	if err := rdb.SAdd(ctx, copiesRegistry(r.s.layout), registryMember(cp.keys.token, cp.ref.Key)).Err(); err != nil {
		return fmt.Errorf("register the copy of %s: %w", cp.ref.Key, err)
	}
	if err := rdb.Unlink(ctx, cp.keys.staging()...).Err(); err != nil {
		return fmt.Errorf("clear the copy of %s: %w", cp.ref.Key, err)
	}
	m, err := readMemory(ctx, rdb)
	if err != nil {
		return err
	}
	cp.memBase, cp.memPeak = m.used, m.used
	if cp.startLen, err = rdb.LLen(ctx, cp.ref.Key).Result(); err != nil {
		return fmt.Errorf("read %s: %w", cp.ref.Key, err)
	}
	// The record grows to the list's length: room for it at once, up to a
	// bound (a run may stop early).
	n := min(cp.startLen, recordPresize)
	cp.hashes, cp.surv = make([]uint64, 0, n), make([]bool, 0, n)
	r.fence.mu.Lock()
	defer r.fence.mu.Unlock()
	cp.own0 = r.fence.ownCounts()
	cp.fenceBase, err = readFence(ctx, rdb)
	return err
}

// visit judges a page as the in-place engine does and copies it: the
// survivors to the copy, the victims' staging to the staging lists.
func (cp *copyRun) visit(ctx context.Context, c *inspect.Chunk) error {
	r := cp.lr.r
	if err := r.checkStop(); err != nil {
		return err
	}
	cands, n := cp.lr.judgePage(c)
	cp.counts.add(n)
	r.notePage(c, int(n.Scanned))
	keep, limitHit := r.reserve(len(cands))
	if err := cp.push(ctx, c, cands[:keep]); err != nil {
		return err
	}
	if err := cp.hook("copy"); err != nil {
		return err
	}
	if cp.pages++; cp.pages%memoryCheckPages == 0 {
		if err := cp.checkMemory(ctx); err != nil {
			return err
		}
	}
	if limitHit {
		cp.limitHit = true
		return errCopyScanDone
	}
	return nil
}

// push copies a page: its jobs in order into the record, the survivors to
// the copy and the victims' staging, in one pipeline.
func (cp *copyRun) push(ctx context.Context, c *inspect.Chunk, cands []candidate) error {
	r := cp.lr.r
	victim := make([]bool, len(c.Jobs))
	for _, cd := range cands {
		victim[cd.i] = true
	}
	var surv, pairs, records, failures []any
	for i := range c.Jobs {
		raw := c.Jobs[i].Raw
		cp.note(raw, !victim[i])
		if !victim[i] {
			surv = append(surv, raw)
		}
	}
	now := r.opts.Now().UTC()
	for _, cd := range cands {
		key, value := cd.job.ExpirationKey, cd.job.DeadlineRaw
		if cd.byAge || value == "" {
			key, value = "", ""
		}
		pairs = append(pairs, stagedEntry(key, value, r.stagedReport(c, cd)))
		if r.opts.ToFailed {
			failures = append(failures, r.failureEntry(cd, c, now))
		}
		if r.opts.Archive != nil {
			records = append(records, r.archiveRecord(cd, c, now))
		}
		cp.nvict++
		cp.maxDue = max(cp.maxDue, r.due(cd).UnixMilli())
	}
	cp.nsurv += int64(len(surv))
	cp.avgBytes = int64(avgPayload(c))
	pipe := r.s.rdb.Pipeline()
	for _, l := range []struct {
		key   string
		items []any
	}{{cp.keys.copy, surv}, {cp.keys.stage, pairs}, {cp.keys.journal, records}, {cp.keys.failures, failures}} {
		if len(l.items) > 0 {
			pipe.RPush(ctx, l.key, l.items...)
		}
	}
	// The previous page's pushes first, in order; this page's go while the
	// next page is read and judged.
	if err := cp.wait(); err != nil {
		return err
	}
	if pipe.Len() == 0 {
		return nil
	}
	done := make(chan error, 1)
	go func() {
		_, err := pipe.Exec(ctx)
		switch {
		case err == nil:
		case redis.HasErrorPrefix(err, "OOM"):
			err = abortFallBack("memory: " + err.Error())
		default:
			err = fmt.Errorf("copy %s: %w", cp.ref.Key, err)
		}
		done <- err
	}()
	cp.pending = done
	return nil
}

// wait waits for the last page's pushes, when they are still in flight,
// and returns their error.
func (cp *copyRun) wait() error {
	if cp.pending == nil {
		return nil
	}
	err := <-cp.pending
	cp.pending = nil
	return err
}

// note adds one copied element to the record.
func (cp *copyRun) note(raw string, survivor bool) {
	cp.hashes = append(cp.hashes, maphash.String(cp.lr.r.hashSeed, raw))
	cp.surv = append(cp.surv, survivor)
	if len(cp.last) < copyAnchor {
		cp.last = append(cp.last, raw)
		return
	}
	copy(cp.last, cp.last[1:])
	cp.last[copyAnchor-1] = raw
}

// checkMemory aborts the copy when Redis no longer has room for the rest
// of it, and notes the peak of the memory the copy used.
func (cp *copyRun) checkMemory(ctx context.Context) error {
	m, err := readMemory(ctx, cp.lr.r.s.rdb)
	if err != nil {
		return err
	}
	cp.memPeak = max(cp.memPeak, m.used)
	rest := max(0, cp.startLen-int64(len(cp.hashes))) * (cp.avgBytes + stagedBytes)
	r := cp.lr.r
	r.copyMu.Lock()
	r.copyRest[cp.ref.Key] = rest
	others := r.copiesRest(cp.ref.Key)
	r.copyMu.Unlock()
	if m.max > 0 && m.max-m.used < rest+others {
		return abortFallBack(fmt.Sprintf("memory: maxmemory leaves %d bytes, the rest of the copy may need %d and other copies in flight %d",
			m.max-m.used, rest, others))
	}
	return nil
}

// finish settles a copy: committed, it is counted and reported; otherwise
// its keys are deleted (the live list was never touched) and the abort
// reported, unless the hook crashed the run on purpose.
func (cp *copyRun) finish(ctx context.Context, err error) error {
	r, lr := cp.lr.r, cp.lr
	// No push may land after the keys are deleted (or, for a test's crash,
	// after the next run looked).
	_ = cp.wait()
	if errors.Is(err, errCrashed) {
		return err
	}
	if cp.committed {
		if err == nil && cp.limitHit {
			r.halt.Store(true)
			return errLimit
		}
		return err
	}
	if r.opts.Limit > 0 {
		r.removedSoFar.Add(-cp.nvict)
	}
	// Out of the registry only once its keys are gone: otherwise the next
	// run deletes them.
	if r.s.rdb.Unlink(ctx, cp.keys.staging()...).Err() == nil {
		_ = r.s.rdb.SRem(ctx, copiesRegistry(r.s.layout), registryMember(cp.keys.token, cp.ref.Key)).Err()
	}
	var ab *copyAbort
	if !errors.As(err, &ab) {
		ab = &copyAbort{reason: stopReason(err), err: err}
	}
	if !ab.fallBack {
		// The run stops: what was read still counts as read.
		lr.q.Scanned += cp.counts.Scanned
		lr.q.Skipped += cp.counts.Skipped
	}
	r.problem(inspect.Problem{Key: cp.ref.Key, Kind: "copy-aborted", Detail: ab.Error() + abortAfter(ab)})
	return ab
}

func abortAfter(ab *copyAbort) string {
	if ab.fallBack {
		return "; the list was left untouched and is swept in place"
	}
	return "; the list was left untouched"
}

// stopReason names a reason a run stops, for a copy-aborted problem.
func stopReason(err error) string {
	switch {
	case errors.Is(err, errDeadline):
		return "max-duration"
	case errors.Is(err, errStopped):
		return "interrupted"
	case errors.Is(err, ErrLockLost):
		return "lock-lost"
	case errors.Is(err, errHalted):
		return "halted"
	case errors.Is(err, errLimit):
		return "limit"
	}
	return "error: " + err.Error()
}

func cloneCounts(m map[uint64]int) map[uint64]int {
	if m == nil {
		return nil
	}
	out := make(map[uint64]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// copyTestEnv, "<head reach>:<min length>", lowers the copy engine's
// thresholds so that end-to-end tests can drive it through the binary with
// small queues. It is a test hook, not a setting.
const copyTestEnv = "RESQUE_EXPIRE_TEST_COPY_THRESHOLDS"

// setCopyDefaults fills in the copy engine's thresholds left zero.
func (o *Options) setCopyDefaults() {
	if reach, minLen, ok := strings.Cut(os.Getenv(copyTestEnv), ":"); ok && o.headReach == 0 && o.copyMinLen == 0 {
		o.headReach, _ = strconv.ParseInt(reach, 10, 64)
		o.copyMinLen, _ = strconv.ParseInt(minLen, 10, 64)
	}
	if o.headReach <= 0 {
		o.headReach = defaultHeadReach
	}
	if o.copyMinLen <= 0 {
		o.copyMinLen = defaultCopyMinLen
	}
	if o.cutoverTail <= 0 {
		o.cutoverTail = defaultCutoverTail
	}
}
