package sweep

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
)

var (
	//go:embed drain_keys.lua
	drainKeysSrc    string
	drainKeysScript = luaScripts.Once(drainKeysSrc)

	//go:embed drain_move.lua
	drainMoveSrc    string
	drainMoveScript = luaScripts.Once(drainMoveSrc)
)

// Batches of the drain: victims per drain_keys.lua, and such scripts a
// round trip; entries per drain_move.lua.
const (
	drainVictims = 500
	drainSteps   = 2
	drainEntries = 200
)

// drainCommitted carries out what a copy's cutover committed, in bounded
// steps that a later run resumes where a dead one stopped: the archive
// records go to the journal (and, with --archive, on to the archive file),
// the failure entries to the failed list, and the deadline keys are deleted
// where they still hold the judged value. step, when set, is called after
// each step (a test's crash point).
func (r *run) drainCommitted(ctx context.Context, k copyKeys, step func() error) error {
	for _, m := range []struct{ src, dst string }{{k.cJournal, r.s.layout.Journal()}, {k.cFailures, r.s.layout.Failed()}} {
		for {
			n, err := r.requests.Run(ctx, r.s.rdb, drainMoveScript, []string{m.src, m.dst}, drainEntries, argBytes).Int()
			if err != nil {
				return fmt.Errorf("drain %s: %w", m.src, err)
			}
			if n == 0 {
				break
			}
			if m.src == k.cJournal {
				if err := r.archiveBatch(ctx); err != nil {
					return err
				}
			}
			if step != nil {
				if err := step(); err != nil {
					return err
				}
			}
		}
	}
	return r.drainKeys(ctx, k, step)
}

// drainKeys runs drain_keys.lua on the committed entries of list k, a few
// batches a round trip (drainRound), and reports their removals.
func (r *run) drainKeys(ctx context.Context, k copyKeys, step func() error) error {
	read := func() ([]string, error) {
		items, err := r.s.rdb.LRange(ctx, k.cStage, 0, drainSteps*drainVictims-1).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k.cStage, err)
		}
		return items, nil
	}
	items, err := read()
	for err == nil && len(items) > 0 {
		items, err = r.drainRound(ctx, k, items, step, read)
	}
	return err
}

// drainBatch is one drain_keys.lua call: its keys and arguments, and the
// reports of the entries it drains.
type drainBatch struct {
	keys    []string
	args    []any
	reports []string
}

// drainRound runs drain_keys.lua on items, drainVictims entries a script,
// the scripts and the read of the next round's items in one pipeline: each
// script checks that the list's head is its batch, so one that follows a
// script that drained nothing drains nothing either (it answers -1), and the
// next round starts from what the list holds then. It reports the drained
// batches' removals and returns the next round's items.
func (r *run) drainRound(ctx context.Context, k copyKeys, items []string, step func() error, read func() ([]string, error)) ([]string, error) {
	var batches []drainBatch
	for len(items) > 0 {
		n := min(len(items), drainVictims)
		batches, items = append(batches, r.drainBatch(k, items[:n])), items[n:]
	}
	pipe := r.s.rdb.Pipeline()
	runs := make([]*redis.Cmd, len(batches))
	for b, batch := range batches {
		runs[b] = r.requests.Run(ctx, pipe, drainKeysScript, batch.keys, batch.args...)
	}
	next := pipe.LRange(ctx, k.cStage, 0, drainSteps*drainVictims-1)
	_, _ = pipe.Exec(ctx)
	reread := false
	for b, batch := range batches {
		run := runs[b]
		if redis.HasErrorPrefix(run.Err(), "NOSCRIPT") {
			// Not run (Redis lost its script cache): again, by its text.
			run, reread = r.requests.Run(ctx, r.s.rdb, drainKeysScript, batch.keys, batch.args...), true
		}
		n, err := run.Int()
		if err != nil {
			return nil, fmt.Errorf("delete the deadline keys staged in %s: %w", k.cStage, err)
		}
		if n >= 0 {
			r.emit(r.stagedRemovals(k.list, batch.reports))
		}
	}
	// The round's scripts all ran: a stop (a test's crash point) comes
	// after their reports, as it would between two rounds.
	for range batches {
		if step != nil {
			if err := step(); err != nil {
				return nil, err
			}
		}
	}
	if reread {
		return read()
	}
	items, err := next.Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.cStage, err)
	}
	return items, nil
}

// drainBatch is the drain_keys.lua call for a batch of entries. An entry
// that does not parse, or names no deadline key (a victim judged by age
// has none; no build of this tool writes another), is drained without
// deleting anything.
func (r *run) drainBatch(k copyKeys, entries []string) drainBatch {
	b := drainBatch{keys: []string{k.cStage}}
	values := make([]string, 0, len(entries))
	// The values holding a newline (which the joined ones could not tell
	// apart) go one an argument, after the others.
	var oddKeys []string
	var oddValues []any
	for _, entry := range entries {
		key, value, report, ok := parseStagedEntry(entry)
		if !ok {
			continue
		}
		b.reports = append(b.reports, report)
		switch {
		case !r.isDeadlineKey(key):
		case strings.Contains(value, "\n"):
			oddKeys, oddValues = append(oddKeys, key), append(oddValues, value)
		default:
			b.keys, values = append(b.keys, key), append(values, value)
		}
	}
	b.keys = append(b.keys, oddKeys...)
	b.args = append([]any{len(entries), sha1hex(entries[0]), sha1hex(entries[len(entries)-1]),
		len(values), strings.Join(values, "\n")}, oddValues...)
	return b
}

// stagedRemoval is what the report of a job the copy engine removes needs,
// staged with its deadline key (so the client keeps nothing per victim).
type stagedRemoval struct {
	ID, Class                   string
	Deadline, Enqueued, Overdue int64
	ByAge                       bool
}

func (r *run) stagedReport(c *inspect.Chunk, cd candidate) string {
	j := cd.job
	s := stagedRemoval{ID: j.ID, Class: j.Class, ByAge: cd.byAge}
	if !j.Deadline.IsZero() {
		s.Deadline = j.Deadline.UnixNano()
	}
	if cd.byAge {
		s.Enqueued = j.EnqueuedAt.UnixNano()
		s.Overdue = int64(c.Now.Sub(j.EnqueuedAt) - r.opts.MaxAge)
	} else {
		s.Overdue = int64(c.Now.Sub(j.Deadline))
	}
	return s.encode()
}

// encode writes a staged removal compactly (JSON cost a fifth of the tool's
// time at 1M): "<len>:<id><len>:<class><deadline> <enqueued> <overdue> <0|1>",
// the numbers in decimal.
func (s stagedRemoval) encode() string {
	b := make([]byte, 0, len(s.ID)+len(s.Class)+64)
	b = appendLenPrefixed(appendLenPrefixed(b, s.ID), s.Class)
	b = strconv.AppendInt(b, s.Deadline, 10)
	b = strconv.AppendInt(append(b, ' '), s.Enqueued, 10)
	b = strconv.AppendInt(append(b, ' '), s.Overdue, 10)
	if s.ByAge {
		b = append(b, " 1"...)
	} else {
		b = append(b, " 0"...)
	}
	return string(b)
}

// isDeadlineKey says whether key is a job's deadline key in the layout.
func (r *run) isDeadlineKey(key string) bool {
	_, ok := r.s.layout.ExpirationID(key)
	return ok
}

// stagedEntry is a victim's entry in a copy's staging list: its deadline
// key, the value it was judged by and its report, each but the last
// prefixed by its length ("<len>:<key><len>:<value><report>"). One entry a
// victim, where three list elements cost Redis and the client three times
// the work to push, read and trim.
func stagedEntry(key, value, report string) string {
	b := make([]byte, 0, len(key)+len(value)+len(report)+8)
	b = appendLenPrefixed(appendLenPrefixed(b, key), value)
	return string(append(b, report...))
}

// parseStagedEntry reads what stagedEntry wrote.
func parseStagedEntry(entry string) (key, value, report string, ok bool) {
	if key, entry, ok = cutLenPrefixed(entry); !ok {
		return "", "", "", false
	}
	if value, report, ok = cutLenPrefixed(entry); !ok {
		return "", "", "", false
	}
	return key, value, report, true
}

// appendLenPrefixed appends "<len>:<s>" to b.
func appendLenPrefixed(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	return append(append(b, ':'), s...)
}

// cutLenPrefixed splits "<len>:<s><rest>" into s and rest.
func cutLenPrefixed(in string) (s, rest string, ok bool) {
	n, after, found := strings.Cut(in, ":")
	l, err := strconv.Atoi(n)
	if !found || err != nil || l < 0 || l > len(after) {
		return "", "", false
	}
	return after[:l], after[l:], true
}

// decodeStaged reads what encode wrote.
func decodeStaged(entry string) (stagedRemoval, bool) {
	var s stagedRemoval
	str := func() (string, bool) {
		s, rest, ok := cutLenPrefixed(entry)
		entry = rest
		return s, ok
	}
	var ok bool
	if s.ID, ok = str(); !ok {
		return s, false
	}
	if s.Class, ok = str(); !ok {
		return s, false
	}
	f := strings.Split(entry, " ")
	if len(f) != 4 {
		return s, false
	}
	var nums [3]int64
	for i := range nums {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return s, false
		}
		nums[i] = n
	}
	s.Deadline, s.Enqueued, s.Overdue, s.ByAge = nums[0], nums[1], nums[2], f[3] == "1"
	return s, true
}

// stagedRemovals are the removals of jobs the copy engine removed from
// list, from their staged reports (without their payloads, which the copy
// does not keep; the archive has them). A report that does not decode is
// left out.
func (r *run) stagedRemovals(list string, reports []string) []Removal {
	if r.opts.OnRemoved == nil {
		return nil
	}
	queue, _ := r.s.layout.QueueName(list)
	out := make([]Removal, 0, len(reports))
	for _, report := range reports {
		s, ok := decodeStaged(report)
		if !ok {
			continue
		}
		rm := Removal{Queue: queue, List: list, ID: s.ID, Class: s.Class, OverdueBy: time.Duration(s.Overdue), ByAge: s.ByAge}
		if s.Deadline != 0 {
			rm.ExpiresAt = time.Unix(0, s.Deadline).UTC()
		}
		if s.ByAge {
			rm.EnqueuedAt = time.Unix(0, s.Enqueued).UTC()
		}
		out = append(out, rm)
	}
	return out
}
