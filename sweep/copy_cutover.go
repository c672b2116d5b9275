package sweep

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/redis/go-redis/v9"
	"github.com/resque-expire/resque-expire/inspect"
)

//go:embed cutover.lua
var cutoverSrc string

var cutoverScript = luaScripts.Once(cutoverSrc)

// cutoverAnswer is cutover.lua's answer.
type cutoverAnswer struct {
	status, reason string
	p, removed     int64
	tail           int64
}

// cutover swaps the copy in: it looks at the live list's head, runs
// cutover.lua, and on its answer copies more of the tail, looks again, or
// gives up.
func (cp *copyRun) cutover(ctx context.Context) error {
	r := cp.lr.r
	misses := 0
	for attempt := 0; attempt < copyAttempts; attempt++ {
		if err := r.checkStop(); err != nil {
			return err
		}
		head, p0, err := cp.observeHead(ctx)
		if err != nil {
			return err
		}
		if m, err := readMemory(ctx, r.s.rdb); err == nil {
			cp.memPeak = max(cp.memPeak, m.used)
		}
		cp.copyBytes = cp.keysMemory(ctx)
		ans, err := cp.callCutover(ctx, head, p0)
		if err != nil {
			return err
		}
		switch ans.status {
		case "ok":
			cp.commit(ans)
			return nil
		case "retry-head":
			if misses++; misses >= 3 {
				return abortFallBack("head-lost")
			}
		case "retry-tail":
			if err := cp.catchUp(ctx); err != nil {
				return err
			}
		case "abort":
			if ans.reason == "lock-lost" {
				return &copyAbort{reason: ans.reason, err: ErrLockLost}
			}
			return abortFallBack(ans.reason)
		default:
			return fmt.Errorf("cutover of %s: unexpected answer %q", cp.ref.Key, ans.status)
		}
	}
	return abortFallBack("no cutover after retries")
}

// observeHead reads the live list's first elements and finds them in the
// record: p0 is the record position of the list's head (elements before it
// were popped since they were copied). Every element read must match, as
// far as the record goes, and at one position only: a queue of id-less,
// identical payloads can repeat a short run elsewhere, and aligning at the
// wrong one would bring back popped jobs or drop pushed ones.
func (cp *copyRun) observeHead(ctx context.Context) ([]string, int, error) {
	r := cp.lr.r
	head, err := r.s.rdb.LRange(ctx, cp.ref.Key, 0, int64(cp.itemsFor(cutoverWindow+copyAnchor+1)-1)).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", cp.ref.Key, err)
	}
	if len(head) == 0 {
		return nil, 0, abortFallBack("head-lost")
	}
	hs := make([]uint64, len(head))
	for i := range hs {
		hs[i] = maphash.String(r.hashSeed, head[i])
	}
	p0, found := -1, 0
	for p := cp.lastP; p < len(cp.hashes) && found < 2; p++ {
		if cp.matchesAt(p, hs) {
			p0, found = p, found+1
		}
	}
	switch found {
	case 0:
		return nil, 0, abortFallBack("head-lost")
	case 2:
		return nil, 0, abortFallBack("head-ambiguous")
	}
	cp.lastP = p0
	return head, p0, nil
}

// matchesAt says whether the record from position p holds hs, as far as
// the record goes.
func (cp *copyRun) matchesAt(p int, hs []uint64) bool {
	for i := 0; i < len(hs) && p+i < len(cp.hashes); i++ {
		if cp.hashes[p+i] != hs[i] {
			return false
		}
	}
	return true
}

// prefix returns the survivors and victims of the record before position p
// (p never goes back between two calls).
func (cp *copyRun) prefix(p int) (int, int) {
	for ; cp.prefAt < p; cp.prefAt++ {
		if cp.surv[cp.prefAt] {
			cp.prefS++
		} else {
			cp.prefV++
		}
	}
	return cp.prefS, cp.prefV
}

// window returns the record positions from p0 whose elements are the head
// just read (a difference ends it), within windowBytes, since the script
// hashes the live list's first wn elements; and next[w], the distance from
// p0+w to the first survivor at or after it (-1: none).
func (cp *copyRun) window(head []string, p0 int) (int, []int) {
	r := cp.lr.r
	c := len(cp.hashes)
	wn, bytes := 0, 0
	for wn < cutoverWindow && p0+wn < c && wn < len(head) && cp.hashes[p0+wn] == maphash.String(r.hashSeed, head[wn]) &&
		(wn == 0 || bytes+len(head[wn]) <= windowBytes) {
		bytes += len(head[wn])
		wn++
	}
	next := make([]int, wn)
	q := -1
	for i := p0 + wn; i < c; i++ {
		if cp.surv[i] {
			q = i
			break
		}
	}
	for w := wn - 1; w >= 0; w-- {
		if cp.surv[p0+w] {
			q = p0 + w
		}
		next[w] = -1
		if q >= 0 {
			next[w] = q - (p0 + w)
		}
	}
	return wn, next
}

func (cp *copyRun) callCutover(ctx context.Context, head []string, p0 int) (cutoverAnswer, error) {
	r := cp.lr.r
	c := len(cp.hashes)
	wn, next := cp.window(head, p0)
	nvict := cp.nvict
	var nj, nf int64
	if r.opts.Archive != nil {
		nj = nvict
	}
	if r.opts.ToFailed {
		nf = nvict
	}
	k := cp.keys
	keys := []string{k.list, k.copy, k.stage, k.journal, k.failures, k.old, k.cStage, k.cJournal, k.cFailures,
		r.lock.key, r.s.layout.Stats()}
	r.fence.mu.Lock()
	defer r.fence.mu.Unlock()
	want := cp.fenceBase.plus(r.fence.ownCounts().minus(cp.own0))
	args := []any{r.lock.value, c, cp.nsurv, nvict, nj, nf, want.lset, want.linsert, want.lrem,
		r.opts.cutoverTail, StatsField(r.opts, cp.ref), p0, cp.maxDue, argBytes, len(cp.last)}
	for _, l := range cp.last {
		args = append(args, sha1hex(l)[:16])
	}
	sb, vb := cp.prefix(p0)
	for w := 0; w < wn; w++ {
		args = append(args, sha1hex(head[w])[:16], sb, vb, next[w])
		if cp.surv[p0+w] {
			sb++
		} else {
			vb++
		}
	}
	vals, err := r.requests.Run(ctx, r.s.rdb, cutoverScript, keys, args...).Slice()
	if err != nil {
		if redis.IsReadOnlyError(err) {
			return cutoverAnswer{}, ErrReadOnly
		}
		return cutoverAnswer{}, fmt.Errorf("cutover of %s: %w", cp.ref.Key, err)
	}
	ans := cutoverAnswer{}
	if len(vals) > 0 {
		ans.status, _ = vals[0].(string)
	}
	switch {
	case ans.status == "ok" && len(vals) == 4:
		ans.p, _ = vals[1].(int64)
		ans.removed, _ = vals[2].(int64)
		ans.tail, _ = vals[3].(int64)
	case ans.status == "abort" && len(vals) == 2:
		ans.reason, _ = vals[1].(string)
	case ans.status == "retry-tail" && len(vals) == 2:
		ans.tail, _ = vals[1].(int64)
	}
	return ans, nil
}

// commit counts and reports a copy the cutover swapped in: victims copied
// after the head workers popped were removed; those before it were gone.
func (cp *copyRun) commit(ans cutoverAnswer) {
	r, q := cp.lr.r, cp.lr.q
	cp.committed = true
	_, vb := cp.prefix(int(ans.p))
	q.add(cp.counts)
	q.Removed += ans.removed
	q.AlreadyGone += int64(vb)
	if r.opts.Limit > 0 {
		r.removedSoFar.Add(-int64(vb))
	} else {
		r.removedSoFar.Add(ans.removed)
	}
	q.Engine = engineCopy
	q.CopyMemoryBytes = cp.copyBytes
	if q.CopyMemoryBytes == 0 { // MEMORY USAGE denied: what INFO memory saw
		q.CopyMemoryBytes = max(0, cp.memPeak-cp.memBase)
	}
}

// keysMemory is what the copy and its staging hold in Redis just before the
// cutover (MEMORY USAGE, sampled): the memory the copy costs, whatever else
// the server frees or allocates meanwhile. 0 when it cannot be read (a user
// without MEMORY USAGE); the report then falls back on INFO memory.
func (cp *copyRun) keysMemory(ctx context.Context) int64 {
	rdb := cp.lr.r.s.rdb
	k := cp.keys
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, key := range []string{k.copy, k.stage, k.journal, k.failures} {
			p.MemoryUsage(ctx, key)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0
	}
	var total int64
	for _, c := range cmds {
		n, _ := c.(*redis.IntCmd).Result()
		total += n
	}
	return total
}

// catchUp copies the elements pushed to the list since the copy's end (and,
// after --limit, the rest of the list), unjudged: they stay. It stops once
// a read comes back short.
func (cp *copyRun) catchUp(ctx context.Context) error {
	r := cp.lr.r
	page := int64(cp.itemsFor(r.s.scanner.Batch()))
	// A producer as fast as the copy would keep it going for ever: after
	// catchUpPages, the cutover tries with what it has (and, should the
	// tail still be too long, gives up after copyAttempts).
	for pages := 0; pages < catchUpPages; pages++ {
		if err := r.checkStop(); err != nil {
			return err
		}
		items, err := cp.readTail(ctx, page)
		if err != nil {
			return err
		}
		for _, raw := range items {
			cp.note(raw, true)
		}
		if len(items) > 0 {
			args := make([]any, len(items))
			for i, it := range items {
				args[i] = it
			}
			if err := r.s.rdb.RPush(ctx, cp.keys.copy, args...).Err(); err != nil {
				return fmt.Errorf("copy %s: %w", cp.ref.Key, err)
			}
			cp.nsurv += int64(len(items))
		}
		if int64(len(items)) < page {
			return nil
		}
	}
	return nil
}

// catchUpPages bounds one catch-up of the copy with the list's tail.
const catchUpPages = 8

// itemsFor says how many elements, at most n, one read of the list may ask
// for: about inspect.MaxPageBytes of the copy's mean payload, and at least 4.
func (cp *copyRun) itemsFor(n int) int {
	if cp.avgBytes <= 0 {
		return n
	}
	return min(n, max(4, int(inspect.MaxPageBytes/cp.avgBytes)))
}

// readTail reads up to n elements of the list after the copied region,
// found by its last copied elements.
func (cp *copyRun) readTail(ctx context.Context, n int64) ([]string, error) {
	r := cp.lr.r
	_, p0, err := cp.observeHead(ctx)
	if err != nil {
		return nil, err
	}
	e := int64(len(cp.hashes) - p0)
	na := min(int64(len(cp.last)), e)
	anchor := cp.last[int64(len(cp.last))-na:]
	// Look back a little: workers pop between the two reads.
	from := max(0, e-na-64)
	items, err := r.s.rdb.LRange(ctx, cp.ref.Key, from, e+n-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", cp.ref.Key, err)
	}
	for end := min(e-1-from, int64(len(items))-1); end >= na-1; end-- {
		ok := true
		for i := int64(0); i < na; i++ {
			if items[end-na+1+i] != anchor[i] {
				ok = false
				break
			}
		}
		if ok {
			return items[end+1:], nil
		}
	}
	return nil, abortFallBack("end-anchor")
}
