package sweep

import (
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
)

//go:embed head_trim.lua
var headTrimSrc string

var headTrimScript = luaScripts.Once(headTrimSrc)

// headRun returns the candidates that form a run at the head of a queue:
// the page was read from the list's head and its first jobs, one after the
// other, are candidates judged by their deadline (not by age, not by a key
// this run deleted). Such a run goes with one LTRIM (head_trim.lua).
func headRun(c *inspect.Chunk, cands []candidate) []candidate {
	if c.List.Delayed() || len(c.Jobs) == 0 || c.Jobs[0].Index != 0 {
		return nil
	}
	n := 0
	for n < len(cands) && n < maxVictims && cands[n].i == n && !cands[n].byAge && cands[n].job.DeadlineRaw != "" &&
		!strings.Contains(cands[n].job.DeadlineRaw, "\n") {
		n++
	}
	// A later copy of a job of the run (the same job twice in the queue)
	// must be judged by the deadline the run deletes: leave such a page to
	// remove_expired.lua, which remembers it within the script.
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

// headTrim removes a run of candidates at the head of the queue with
// head_trim.lua. trimmed is false when the script found the head changed
// (a push to the head, a job taken from the middle, a deadline changed) and
// removed nothing: the caller then removes them as any other candidates.
func (lr *listRun) headTrim(ctx context.Context, c *inspect.Chunk, run []candidate) (gone int64, trimmed bool, err error) {
	r := lr.r
	keys := make([]string, 0, 4+len(run))
	keys = append(keys, c.List.Key, r.s.layout.Failed(), r.s.layout.Journal(), r.s.layout.Stats())
	digests := make([]byte, 0, 40*len(run))
	judged := make([]string, len(run))
	var due int64
	for i, cd := range run {
		keys = append(keys, cd.job.ExpirationKey)
		digests = append(digests, sha1hex(cd.job.Raw)...)
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
			return 0, false, ErrReadOnly
		}
		return 0, false, fmt.Errorf("remove expired jobs from the head of %s: %w", c.List.Key, err)
	}
	if len(reply) == 0 {
		return 0, false, nil
	}
	popped := reply[0]
	if len(reply) != 1 || popped < 0 || popped >= int64(len(run)) {
		return 0, false, fmt.Errorf("remove expired jobs from the head of %s: script answered %v for %d jobs", c.List.Key, reply, len(run))
	}
	codes := make([]int64, len(run))
	for i := popped; i < int64(len(run)); i++ {
		codes[i] = 1
	}
	gone, err = lr.settle(ctx, c, run, codes)
	return gone, true, err
}
