package sweep

import (
	"context"
	_ "embed"
	"encoding/json"
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
// batches a round trip (drainRound), and reports their removals, written
// while Redis works.
func (r *run) drainKeys(ctx context.Context, k copyKeys, step func() error) error {
	reports := make(chan []string, 4)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		for items := range reports {
			out := make([]Removal, 0, len(items))
			for _, entry := range items {
				if _, _, report, ok := parseStagedEntry(entry); ok {
					if rm, ok := r.stagedRemoval(k.list, report); ok {
						out = append(out, rm)
					}
				}
			}
			r.emit(out)
		}
	}()
	defer func() {
		close(reports)
		<-reported
	}()
	read := func() ([]string, error) {
		items, err := r.s.rdb.LRange(ctx, k.cStage, 0, drainSteps*drainVictims-1).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", k.cStage, err)
		}
		return items, nil
	}
	items, err := read()
	for err == nil && len(items) > 0 {
		items, err = r.drainRound(ctx, k, items, reports, step, read)
	}
	return err
}

// drainRound runs drain_keys.lua on items, drainVictims entries a script,
// the scripts and the read of the next round's items in one pipeline: each
// script checks that the list's head is its batch, so one that follows a
// script that drained nothing drains nothing either (it answers -1), and the
// next round starts from what the list holds then. It hands the drained
// batches' entries to reports and returns the next round's items.
func (r *run) drainRound(ctx context.Context, k copyKeys, items []string, reports chan<- []string, step func() error, read func() ([]string, error)) ([]string, error) {
	var batches [][]string
	for len(items) > 0 {
		n := min(len(items), drainVictims)
		batches, items = append(batches, items[:n]), items[n:]
	}
	pipe := r.s.rdb.Pipeline()
	runs := make([]*redis.Cmd, len(batches))
	for b, batch := range batches {
		keys, args := r.drainArgs(k, batch)
		runs[b] = r.requests.Run(ctx, pipe, drainKeysScript, keys, args...)
	}
	next := pipe.LRange(ctx, k.cStage, 0, drainSteps*drainVictims-1)
	_, _ = pipe.Exec(ctx)
	reread := false
	for b, batch := range batches {
		run := runs[b]
		if redis.HasErrorPrefix(run.Err(), "NOSCRIPT") {
			// Not run (Redis lost its script cache): again, by its text.
			keys, args := r.drainArgs(k, batch)
			run, reread = r.requests.Run(ctx, r.s.rdb, drainKeysScript, keys, args...), true
		}
		n, err := run.Int()
		if err != nil {
			return nil, fmt.Errorf("delete the deadline keys staged in %s: %w", k.cStage, err)
		}
		if n >= 0 {
			reports <- batch
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

// drainArgs are drain_keys.lua's keys and arguments for a batch of entries.
// An entry that does not parse, or names no deadline key (no build of this
// tool writes one), is drained without deleting anything.
func (r *run) drainArgs(k copyKeys, batch []string) ([]string, []any) {
	keys := []string{k.cStage}
	args := []any{len(batch), sha1hex(batch[0]), sha1hex(batch[len(batch)-1])}
	for _, entry := range batch {
		if key, value, _, ok := parseStagedEntry(entry); ok && key != "" && r.isDeadlineKey(key) {
			keys = append(keys, key)
			args = append(args, value)
		}
	}
	return keys, args
}

// stagedRemoval is what the report of a job the copy engine removes needs,
// staged with its deadline key (so the client keeps nothing per victim).
type stagedRemoval struct {
	ID       string `json:"i"`
	Class    string `json:"c"`
	Deadline int64  `json:"d,omitempty"`
	Enqueued int64  `json:"e,omitempty"`
	Overdue  int64  `json:"o"`
	ByAge    bool   `json:"a,omitempty"`
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
// the numbers in decimal. It never starts with '{', as the JSON of an
// earlier version's staging does.
func (s stagedRemoval) encode() string {
	b := make([]byte, 0, len(s.ID)+len(s.Class)+64)
	b = strconv.AppendInt(b, int64(len(s.ID)), 10)
	b = append(append(b, ':'), s.ID...)
	b = strconv.AppendInt(b, int64(len(s.Class)), 10)
	b = append(append(b, ':'), s.Class...)
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
	b = strconv.AppendInt(b, int64(len(key)), 10)
	b = append(append(b, ':'), key...)
	b = strconv.AppendInt(b, int64(len(value)), 10)
	b = append(append(b, ':'), value...)
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

// cutLenPrefixed splits "<len>:<s><rest>" into s and rest.
func cutLenPrefixed(in string) (s, rest string, ok bool) {
	n, after, found := strings.Cut(in, ":")
	l, err := strconv.Atoi(n)
	if !found || err != nil || l < 0 || l > len(after) {
		return "", "", false
	}
	return after[:l], after[l:], true
}

// decodeStaged reads a staged removal, in either encoding.
func decodeStaged(entry string) (stagedRemoval, bool) {
	var s stagedRemoval
	if strings.HasPrefix(entry, "{") {
		return s, json.Unmarshal([]byte(entry), &s) == nil
	}
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

// stagedRemoval is the removal of a job the copy engine removed from
// list, from its staged report (without its payload, which the copy does
// not keep; the archive has it).
func (r *run) stagedRemoval(list, entry string) (Removal, bool) {
	s, ok := decodeStaged(entry)
	if !ok || r.opts.OnRemoved == nil {
		return Removal{}, false
	}
	queue, _ := r.s.layout.QueueName(list)
	rm := Removal{Queue: queue, List: list, ID: s.ID, Class: s.Class, OverdueBy: time.Duration(s.Overdue), ByAge: s.ByAge}
	if s.Deadline != 0 {
		rm.ExpiresAt = time.Unix(0, s.Deadline).UTC()
	}
	if s.ByAge {
		rm.EnqueuedAt = time.Unix(0, s.Enqueued).UTC()
	}
	return rm, true
}
