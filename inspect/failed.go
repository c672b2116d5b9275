package inspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// JobExpiredException is the exception of the failure entries resque-expire
// writes itself (sweep --to-failed) for jobs it removed because they had
// expired. Such an entry is expired whatever its job's deadline key says
// now (the sweep deleted that key).
const JobExpiredException = "ResqueExpire::JobExpired"

// Failure is what a failure entry adds to the job it holds.
type Failure struct {
	// List is the failed list's name: "failed", or "<queue>_failed" for
	// Resque::Failure::RedisMultiQueue.
	List string
	// Exception, Error, FailedAt and RetriedAt are the entry's own fields.
	Exception string
	Error     string
	FailedAt  string
	RetriedAt string
	// FailedAtTime is FailedAt parsed, zero when it cannot be. When the
	// entry names no zone, or one that is not UTC/GMT or a numeric offset,
	// it is the latest instant the text can mean (read 12 hours west of
	// UTC), so an age judged from it is never too large.
	FailedAtTime time.Time
	// ByException: expired because the tool wrote the entry for a job it
	// removed as expired (Exception is JobExpiredException).
	ByException bool
}

// FailedList is one list of failure entries.
type FailedList struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	Length int64  `json:"entries"`
}

// FailedLists finds the failed lists: <ns>:failed (Resque's default failure
// backend) and every "<queue>_failed" list named in <ns>:failed_queues
// (Resque::Failure::RedisMultiQueue). Lists that do not exist are left out;
// keys of another type are reported as problems and left out.
func (s *Scanner) FailedLists(ctx context.Context) ([]FailedList, []Problem, error) {
	names := []string{"failed"}
	members, err := s.rdb.SMembers(ctx, s.layout.FailedQueues()).Result()
	var problems []Problem
	switch {
	case err != nil && redis.HasErrorPrefix(err, "WRONGTYPE"):
		problems = append(problems, Problem{Key: s.layout.FailedQueues(), Kind: ProblemWrongType, Detail: "the failed_queues key is not a set"})
	case err != nil:
		return nil, nil, fmt.Errorf("read %s: %w", s.layout.FailedQueues(), err)
	}
	sort.Strings(members)
	for _, m := range members {
		if m == "failed" {
			continue
		}
		if !resque.IsFailedListName(m) {
			problems = append(problems, Problem{Key: s.layout.FailedQueues(), Kind: "bad-failed-queue",
				Detail: fmt.Sprintf("member %q is not a failed list name (<queue>_failed); not read", m)})
			continue
		}
		names = append(names, m)
	}
	pipe := s.rdb.Pipeline()
	type pair struct {
		t interface{ Val() string }
		n interface{ Val() int64 }
	}
	cmds := make([]pair, len(names))
	for i, n := range names {
		cmds[i] = pair{pipe.Type(ctx, s.layout.FailedList(n)), pipe.LLen(ctx, s.layout.FailedList(n))}
	}
	if _, err := pipe.Exec(ctx); err != nil && !redis.HasErrorPrefix(err, "WRONGTYPE") {
		return nil, nil, fmt.Errorf("describe failed lists: %w", err)
	}
	var lists []FailedList
	for i, n := range names {
		key := s.layout.FailedList(n)
		switch t := cmds[i].t.Val(); t {
		case "list":
			lists = append(lists, FailedList{Name: n, Key: key, Length: cmds[i].n.Val()})
		case "none":
		default:
			problems = append(problems, Problem{Key: key, Kind: ProblemWrongType, Detail: fmt.Sprintf("the failed list is a %s, not a list", t)})
		}
	}
	return lists, problems, nil
}

// ScanFailed streams every entry of every failed list through visit, list
// by list, in pages, like ScanList (with its anchoring against concurrent
// pushes, pops and removals). Each Job is the job inside the entry, judged
// by its own deadline key, with Failure set and Raw the whole entry.
func (s *Scanner) ScanFailed(ctx context.Context, visit Visitor) ([]FailedList, []Problem, error) {
	lists, problems, err := s.FailedLists(ctx)
	if err != nil {
		return nil, problems, err
	}
	for _, l := range lists {
		_, err := s.ScanList(ctx, ListRef{Key: l.Key, Queue: resque.FailedListQueue(l.Name), Failed: l.Name}, visit)
		if IsWrongType(err) {
			problems = append(problems, WrongTypeProblem(l.Key, err))
			continue
		}
		if err != nil {
			return lists, problems, err
		}
	}
	return lists, problems, nil
}

// failureEntry is the part of a Resque failure entry the tool reads.
type failureEntry struct {
	FailedAt  any             `json:"failed_at"`
	Payload   json.RawMessage `json:"payload"`
	Exception string          `json:"exception"`
	Error     any             `json:"error"`
	Queue     string          `json:"queue"`
	RetriedAt any             `json:"retried_at"`
}

// judgeFailure decodes a failure entry and the job inside it; like judge,
// it fills in everything but the deadline.
func (s *Scanner) judgeFailure(raw string, ref ListRef, p *resque.Payload) Job {
	f := &Failure{List: ref.Failed}
	j := Job{Raw: raw, Queue: ref.Queue, Failure: f}
	invalid := func(reason string) Job {
		j.State, j.Reason = StateInvalid, reason
		j.Skipped = len(s.classes) > 0 || len(s.queues) > 0
		return j
	}
	if raw == "" {
		// Resque::Failure.remove(i) sets the entry to "" and LREMs it
		// right after.
		return invalid("empty entry: a removal by resque-web or Resque::Failure.remove in progress")
	}
	if !utf8.ValidString(raw) {
		return invalid("failure entry is not valid UTF-8")
	}
	var e failureEntry
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return invalid("failure entry is not a JSON object: " + err.Error())
	}
	f.Exception, f.Error, f.FailedAt, f.RetriedAt = e.Exception, text(e.Error), text(e.FailedAt), text(e.RetriedAt)
	f.FailedAtTime = ParseFailedAt(f.FailedAt)
	if e.Queue != "" {
		j.Queue = e.Queue
	}
	if len(e.Payload) == 0 || string(e.Payload) == "null" {
		return invalid("failure entry has no payload")
	}
	inner := s.judgePayload(string(e.Payload), ListRef{Key: ref.Key, Queue: j.Queue}, true, p)
	inner.Raw, inner.Failure = raw, f
	inner.Skipped = !s.queueHits.match(inner.Queue) || inner.Skipped
	if inner.State == StateInvalid {
		inner.Reason = "payload: " + inner.Reason
	}
	f.ByException = f.Exception == JobExpiredException
	return inner
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// finishFailures applies what the entries' exceptions say once the
// deadlines are read: an entry the tool wrote for an expired job is
// expired, whatever its job's deadline key holds now.
func finishFailures(c *Chunk) {
	for i := range c.Jobs {
		j := &c.Jobs[i]
		if j.Failure == nil || !j.Failure.ByException {
			continue
		}
		switch j.State {
		case StateExpired, StateInvalid:
		default:
			// The state comes from the exception, not from the key.
			j.Deadline = time.Time{}
			j.State, j.Reason = StateExpired, "written by resque-expire for an expired job ("+JobExpiredException+")"
		}
	}
}

// ParseFailedAt reads a failure entry's failed_at in the formats Resque and
// its ports write: "2006/01/02 15:04:05 UTC" (resque >= 1.20, %Z),
// "2006/01/02 15:04:05" (older), Time#to_s, RFC 2822, node-resque's
// JavaScript Date string and RFC 3339 (goworker). A zone abbreviation other
// than UTC/GMT, or none, is read as the latest instant it can mean (12 hours
// west of UTC): an age computed from it is never too large. It returns the
// zero time when it cannot read s.
func ParseFailedAt(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if i := strings.Index(s, " ("); i > 0 && strings.HasSuffix(s, ")") {
		s = s[:i] // "GMT-0800 (PST)"
	}
	exact := []string{time.RFC3339Nano, "2006-01-02 15:04:05 -0700", "2006/01/02 15:04:05 -0700",
		time.RFC1123Z, "Mon, 2 Jan 2006 15:04:05 -0700", "Mon Jan 02 2006 15:04:05 GMT-0700"}
	for _, layout := range exact {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	const west = 12 * time.Hour
	for _, layout := range []string{"2006/01/02 15:04:05 MST", "2006-01-02 15:04:05 MST", time.RFC1123, time.UnixDate} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if name, _ := t.Zone(); name == "UTC" || name == "GMT" {
			return t.UTC()
		}
		// An abbreviation Go cannot place (it reads it as offset 0):
		// take the wall clock, 12 hours west.
		wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		return wall.Add(west)
	}
	for _, layout := range []string{"2006/01/02 15:04:05", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Add(west)
		}
	}
	return time.Time{}
}

// FailedCounts counts failure entries by state.
type FailedCounts struct {
	Entries      int64 `json:"entries"`
	Expired      int64 `json:"expired"`
	Live         int64 `json:"live"`
	Missing      int64 `json:"missing"`
	Unidentified int64 `json:"unidentified"`
	Invalid      int64 `json:"invalid"`
}

func (c *FailedCounts) add(j *Job) {
	c.Entries++
	switch j.State {
	case StateExpired:
		c.Expired++
	case StateLive:
		c.Live++
	case StateMissing:
		c.Missing++
	case StateUnidentified:
		c.Unidentified++
	case StateInvalid:
		c.Invalid++
	}
}

// FailedSummary counts the entries of the failed lists by state, in all
// and by queue and class.
type FailedSummary struct {
	FailedCounts
	// Skipped counts entries left out by --queue/--class.
	Skipped int64                   `json:"skipped,omitempty"`
	Lists   []FailedList            `json:"lists"`
	ByQueue map[string]FailedCounts `json:"by_queue"`
	ByClass map[string]FailedCounts `json:"by_class"`
	// MostOverdue is the entry whose job's deadline passed longest ago.
	MostOverdue *JobRef `json:"most_overdue,omitempty"`
}

func (f *FailedSummary) add(j *Job, now time.Time) {
	if j.Skipped {
		f.Skipped++
		return
	}
	f.FailedCounts.add(j)
	q, c := f.ByQueue[j.Queue], f.ByClass[j.Class]
	q.add(j)
	c.add(j)
	f.ByQueue[j.Queue], f.ByClass[j.Class] = q, c
	if j.State == StateExpired && !j.Deadline.IsZero() && (f.MostOverdue == nil || j.Deadline.Before(f.MostOverdue.Deadline)) {
		f.MostOverdue = ref(j, now)
	}
}

// InspectFailed counts the entries of every failed list by state.
func (s *Scanner) InspectFailed(ctx context.Context) (*FailedSummary, []Problem, error) {
	f := &FailedSummary{Lists: []FailedList{}, ByQueue: map[string]FailedCounts{}, ByClass: map[string]FailedCounts{}}
	lists, problems, err := s.ScanFailed(ctx, func(_ context.Context, c *Chunk) error {
		for i := range c.Jobs {
			f.add(&c.Jobs[i], c.Now)
		}
		return nil
	})
	if lists != nil {
		f.Lists = lists
	}
	return f, problems, err
}

// ListFailed streams the failure entries matching opts to emit, list by
// list, in list order. It stops early at opts.Limit.
func (s *Scanner) ListFailed(ctx context.Context, opts ListOptions, emit func(Listed) error) ([]Problem, error) {
	_, problems, err := s.ScanFailed(ctx, newLister(opts, emit).visit)
	if errors.Is(err, errListLimit) {
		err = nil
	}
	return problems, err
}

// dropWrongType leaves out the wrong-type problem of key when it is already
// reported.
func dropWrongType(ps []Problem, key string, reported bool) []Problem {
	if !reported {
		return ps
	}
	out := ps[:0:0]
	for _, p := range ps {
		if p.Key != key || p.Kind != ProblemWrongType {
			out = append(out, p)
		}
	}
	return out
}
