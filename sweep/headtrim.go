package sweep

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
)

//go:embed head_trim.lua
var headTrimSrc string

var headTrimScript = luaScripts.Once(headTrimSrc)

// headDigests is how many of a run's first jobs head_trim.lua gets the
// digests of, to recognise the one at the head: workers may pop that many
// less one of them between the page's read and the trim (a few
// milliseconds) before the run falls back to remove_expired.lua. Hashing
// every job of the run cost more than the tool's part of the trim.
const headDigests = 64

// headRun returns the candidates that form a run at the head of a queue,
// starting with the page's job off (see headRunLen), for one head_trim.lua:
// at most most jobs, their failure entries and archive records at most
// argBytes. It returns none when a later candidate shares a deadline key
// with one of the run (the same job twice in the queue: it must be judged
// by the deadline the run deletes, which remove_expired.lua remembers
// within its script).
func (lr *listRun) headRun(c *inspect.Chunk, cands []candidate, off, most int) []candidate {
	copies := lr.r.entryCopies()
	n, args := 0, 0
	for limit := min(headRunLen(c, cands, off), most); n < limit; n++ {
		if args += copies*len(cands[n].job.Raw) + 64; n > 0 && args > argBytes {
			break
		}
	}
	keys := make(map[string]bool, n)
	for _, cd := range cands[:n] {
		keys[cd.job.ExpirationKey] = true
	}
	for _, cd := range cands[n:] {
		if keys[cd.job.ExpirationKey] {
			return nil
		}
	}
	return cands[:n]
}

// headRunLen is how many of cands, from the first, form a run at the head
// of a queue starting with the page's job off: the page was read from the
// list's head, its jobs before off have left the list (an earlier run),
// and the run's jobs follow one another, candidates judged by their
// deadline (not by age, not by a key this run deleted, none holding a
// newline). Such a run goes by head_trim.lua's LTRIM.
func headRunLen(c *inspect.Chunk, cands []candidate, off int) int {
	if c.List.Delayed() || len(c.Jobs) == 0 || c.Jobs[0].Index != 0 {
		return 0
	}
	for i := 0; i < off; i++ {
		if i >= len(c.Removed) || !c.Removed[i] {
			return 0
		}
	}
	n := 0
	for n < len(cands) && cands[n].i == off+n && !cands[n].byAge && cands[n].job.DeadlineRaw != "" &&
		!strings.Contains(cands[n].job.DeadlineRaw, "\n") {
		n++
	}
	return n
}

// headTrims removes the runs of candidates at the head of the queue, one
// head_trim.lua a run sized to the script time budget. It returns the
// candidates left for remove_expired.lua (all of them when the head was
// not what was read) and how many jobs left the list.
func (lr *listRun) headTrims(ctx context.Context, c *inspect.Chunk, cands []candidate) ([]candidate, int64, error) {
	var shifted int64
	off := 0
	for {
		run := lr.headRun(c, cands, off, lr.trimVictims)
		if len(run) == 0 {
			return cands, shifted, nil
		}
		gone, took, err := lr.headTrim(ctx, c, run)
		if err != nil || took < 0 {
			return cands, shifted, err
		}
		lr.trimVictims = resize(lr.trimVictims, len(run), took, lr.r.opts.MaxScriptTime)
		shifted += gone
		off += len(run)
		cands = cands[len(run):]
	}
}

// headTrim removes a run of candidates at the head of the queue with
// head_trim.lua, and says how long the script took. took is negative when
// the script found the head changed (a push to the head, a job taken from
// the middle, a deadline changed) and removed nothing: the caller then
// removes them as any other candidates.
func (lr *listRun) headTrim(ctx context.Context, c *inspect.Chunk, run []candidate) (gone int64, took time.Duration, err error) {
	r := lr.r
	keys := make([]string, 0, 4+len(run))
	keys = append(keys, c.List.Key, r.s.layout.Failed(), r.s.layout.Journal(), r.s.layout.Stats())
	digests := make([]byte, 0, 40*min(len(run), headDigests))
	judged := make([]string, len(run))
	var due int64
	for i, cd := range run {
		keys = append(keys, cd.job.ExpirationKey)
		if i < headDigests {
			digests = append(digests, sha1hex(cd.job.Raw)...)
		}
		judged[i] = cd.job.DeadlineRaw
		due = max(due, r.due(cd).UnixMilli())
	}
	args := make([]any, 0, 7+2*len(run))
	args = append(args, flag(r.opts.ToFailed), flag(r.opts.Archive != nil), run[len(run)-1].job.Raw, StatsField(r.opts, c.List),
		string(digests), strings.Join(judged, "\n"), due)
	now := r.opts.Now().UTC()
	if r.opts.ToFailed {
		for _, cd := range run {
			args = append(args, r.failureEntry(cd, c, now))
		}
	}
	if r.opts.Archive != nil {
		for _, cd := range run {
			args = append(args, r.archiveRecord(cd, c, now))
		}
	}
	reply, err := r.requests.Run(ctx, r.s.rdb, headTrimScript, keys, args...).Int64Slice()
	if err != nil {
		if redis.IsReadOnlyError(err) {
			return 0, -1, ErrReadOnly
		}
		return 0, -1, fmt.Errorf("remove expired jobs from the head of %s: %w", c.List.Key, err)
	}
	if len(reply) == 0 {
		return 0, -1, nil
	}
	if len(reply) != 2 || reply[0] < 0 || reply[0] >= int64(len(run)) || reply[1] < 0 {
		return 0, -1, fmt.Errorf("remove expired jobs from the head of %s: script answered %v for %d jobs", c.List.Key, reply, len(run))
	}
	codes := make([]int64, len(run))
	for i := reply[0]; i < int64(len(run)); i++ {
		codes[i] = 1
	}
	gone, err = lr.settle(ctx, c, run, codes)
	return gone, time.Duration(reply[1]) * time.Microsecond, err
}
