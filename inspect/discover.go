package inspect

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// scanCount is the COUNT hint for SCAN, SSCAN and the pipelines that follow.
const scanCount = 1000

// QueueInfo describes one queue found by DiscoverQueues.
type QueueInfo struct {
	Name string `json:"queue"`
	Key  string `json:"key"`
	// InSet says whether the name is a member of <ns>:queues.
	InSet bool `json:"in_set"`
	// Type is the Redis type of the queue key: "list", "none" (no key,
	// which is how Redis stores an empty list) or something unexpected.
	Type   string `json:"type"`
	Length int64  `json:"length"`
}

// Readable reports whether the queue is a list (or absent, hence empty).
func (q QueueInfo) Readable() bool { return q.Type == "list" || q.Type == "none" }

// Problem is something odd found in Redis and left as it is.
type Problem struct {
	Key    string `json:"key"`
	Kind   string `json:"kind"`
	Detail string `json:"detail"`
}

// Problem kinds.
const (
	ProblemNotInSet      = "list-not-in-queues-set"
	ProblemNoList        = "queue-without-list"
	ProblemWrongType     = "wrong-type"
	ProblemBadScheduleTS = "bad-schedule-member"
)

// DiscoverQueues returns every queue named in <ns>:queues or present as a
// <ns>:queue:* key, filtered by the scanner's queue globs and sorted by name,
// and the problems found on the way: registered queues with no list (normal
// for an empty queue, but reported), lists Resque does not know about, and
// keys of the wrong type (which are reported and skipped).
func (s *Scanner) DiscoverQueues(ctx context.Context) ([]QueueInfo, []Problem, error) {
	d, err := s.StartDiscovery(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer d.Stop()
	extra, err := d.Rest()
	if err != nil {
		return nil, nil, err
	}
	all := MergeQueues(d.Registered, extra)
	return all, append(d.RegistryProblems, s.QueueProblems(all)...), nil
}

// ScanQueues reads every queue discovery finds with read, in two phases:
// the registered queues while the keyspace SCAN looks for unregistered
// lists in the background, then those lists. read is handed each phase's
// readable queues (lists, or absent keys, which are empty lists) and
// returns its rows, partial ones with an error. ScanQueues returns the rows
// of both phases stably sorted by name(row), and the problems discovery
// found: the registry's own, then each discovered queue's in name order.
// After an error from read or from the SCAN it returns the rows and queue
// problems so far with the error; the SCAN never outlives it.
func ScanQueues[R any](ctx context.Context, s *Scanner, read func(queues []QueueInfo) ([]R, error), name func(row *R) string) ([]R, []Problem, error) {
	d, err := s.StartDiscovery(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer d.Stop()
	rows, err := read(readable(d.Registered))
	var extra []QueueInfo
	if err == nil {
		if extra, err = d.Rest(); err == nil {
			var more []R
			more, err = read(readable(extra))
			rows = append(rows, more...)
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return name(&rows[i]) < name(&rows[j]) })
	problems := append(d.RegistryProblems, s.QueueProblems(MergeQueues(d.Registered, extra))...)
	return rows, problems, err
}

// readable returns the queues of qs that can be read as lists.
func readable(qs []QueueInfo) []QueueInfo {
	var out []QueueInfo
	for _, q := range qs {
		if q.Readable() {
			out = append(out, q)
		}
	}
	return out
}

// Discovery is queue discovery in two parts: the queues registered in
// <ns>:queues, known at once, and the lists that a SCAN of the keyspace
// finds without Resque knowing them. The SCAN walks every key in the
// database (a second on a million jobs' deadline keys), so it runs in the
// background while the registered queues are read; it stops early when the
// context given to StartDiscovery is cancelled or Stop is called.
type Discovery struct {
	// Registered are the registered queues, sorted and described.
	Registered []QueueInfo
	// RegistryProblems: <ns>:queues itself is not a set.
	RegistryProblems []Problem
	cancel           context.CancelFunc
	// done is closed when the SCAN has ended; rest and restErr are its
	// result, written before.
	done    chan struct{}
	rest    []QueueInfo
	restErr error
}

// StartDiscovery reads the registered queues and starts the keyspace SCAN.
// The caller must call Stop (or Rest) before letting go of the Discovery,
// so that the SCAN does not outlive it.
func (s *Scanner) StartDiscovery(ctx context.Context) (*Discovery, error) {
	d := &Discovery{}
	known, err := s.registeredQueues(ctx, d)
	if err != nil {
		return nil, err
	}
	scanCtx, cancel := context.WithCancel(ctx)
	d.cancel, d.done = cancel, make(chan struct{})
	go func() {
		defer close(d.done)
		d.rest, d.restErr = s.unregisteredQueues(scanCtx, known)
	}()
	return d, nil
}

// registeredQueues reads <ns>:queues into d.Registered (described) and
// d.RegistryProblems, and returns the names it holds.
func (s *Scanner) registeredQueues(ctx context.Context, d *Discovery) (map[string]bool, error) {
	known := map[string]bool{}
	setKey := s.layout.Queues()
	var cursor uint64
	for {
		names, next, err := s.rdb.SScan(ctx, setKey, cursor, "", scanCount).Result()
		if err != nil {
			if redis.HasErrorPrefix(err, "WRONGTYPE") {
				t, _ := s.rdb.Type(ctx, setKey).Result()
				d.RegistryProblems = append(d.RegistryProblems, Problem{Key: setKey, Kind: ProblemWrongType,
					Detail: fmt.Sprintf("the queues registry is a %s, not a set; queues found by SCAN only", t)})
				break
			}
			return nil, fmt.Errorf("read %s: %w", setKey, err)
		}
		for _, n := range names {
			if s.queueHits.match(n) && !known[n] {
				known[n] = true
				d.Registered = append(d.Registered, QueueInfo{Name: n, Key: s.layout.Queue(n), InSet: true})
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return known, s.describeAll(ctx, d.Registered)
}

// Rest waits for the SCAN and returns the lists that are not registered
// (sorted and described). After Stop, or once the context is cancelled, it
// returns the cancellation unless the SCAN had already finished.
func (d *Discovery) Rest() ([]QueueInfo, error) {
	<-d.done
	return d.rest, d.restErr
}

// Stop cancels the SCAN if it still runs and waits until it has ended.
// It is safe to call more than once, and after Rest.
func (d *Discovery) Stop() {
	d.cancel()
	<-d.done
}

func (s *Scanner) unregisteredQueues(ctx context.Context, known map[string]bool) ([]QueueInfo, error) {
	var out []QueueInfo
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("scan queue keys: %w", err)
		}
		keys, next, err := s.rdb.Scan(ctx, cursor, s.layout.QueuePattern(), scanCount).Result()
		if err != nil {
			return nil, fmt.Errorf("scan queue keys: %w", err)
		}
		for _, k := range keys {
			n, ok := s.layout.QueueName(k)
			if !ok || !s.queueHits.match(n) || known[n] {
				continue
			}
			known[n] = true
			out = append(out, QueueInfo{Name: n, Key: k})
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	return out, s.describeAll(ctx, out)
}

// describeAll sorts qs by name and fills in their types and lengths.
func (s *Scanner) describeAll(ctx context.Context, qs []QueueInfo) error {
	sort.Slice(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name })
	for from := 0; from < len(qs); from += scanCount {
		if err := s.describe(ctx, qs[from:min(from+scanCount, len(qs))]); err != nil {
			return err
		}
	}
	return nil
}

// MergeQueues returns two sorted lists of queues as one sorted list.
func MergeQueues(a, b []QueueInfo) []QueueInfo {
	out := make([]QueueInfo, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// QueueProblems reports, for queues in name order, the registered ones with
// no list, the lists that are not registered, and the keys of another type.
func (s *Scanner) QueueProblems(qs []QueueInfo) []Problem {
	var problems []Problem
	for _, q := range qs {
		switch {
		case q.Type == "none" && q.InSet:
			problems = append(problems, Problem{Key: q.Key, Kind: ProblemNoList,
				Detail: fmt.Sprintf("queue %q is registered but has no list (empty)", q.Name)})
		case q.Type == "list" && !q.InSet:
			problems = append(problems, Problem{Key: q.Key, Kind: ProblemNotInSet,
				Detail: fmt.Sprintf("list for queue %q is not in %s; Resque workers listening on all queues will not see it", q.Name, s.layout.Queues())})
		case !q.Readable():
			problems = append(problems, Problem{Key: q.Key, Kind: ProblemWrongType,
				Detail: fmt.Sprintf("queue key is a %s, not a list; skipped", q.Type)})
		}
	}
	return problems
}

// describe fills in Type and Length with one pipeline.
func (s *Scanner) describe(ctx context.Context, qs []QueueInfo) error {
	pipe := s.rdb.Pipeline()
	types := make([]*redis.StatusCmd, len(qs))
	lens := make([]*redis.IntCmd, len(qs))
	for i, q := range qs {
		types[i] = pipe.Type(ctx, q.Key)
		lens[i] = pipe.LLen(ctx, q.Key)
	}
	if _, err := pipe.Exec(ctx); err != nil && !redis.HasErrorPrefix(err, "WRONGTYPE") {
		return fmt.Errorf("describe queues: %w", err)
	}
	for i := range qs {
		if err := types[i].Err(); err != nil {
			return fmt.Errorf("type of %s: %w", qs[i].Key, err)
		}
		qs[i].Type = types[i].Val()
		if qs[i].Type == "list" {
			qs[i].Length = lens[i].Val()
		}
	}
	return nil
}

// Bucket is one resque-scheduler delayed bucket.
type Bucket struct {
	At     int64
	Key    string
	Type   string
	Length int64
}

// DelayedBuckets calls fn for each bucket of the delayed schedule in time
// order, paging the schedule zset by score so it never reads it whole.
// Members that are not Unix seconds are reported as problems and skipped.
func (s *Scanner) DelayedBuckets(ctx context.Context, fn func(Bucket) error) ([]Problem, error) {
	var problems []Problem
	zkey := s.layout.DelayedSchedule()
	lower := "-inf"
	for {
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
			Key: zkey, ByScore: true, Start: lower, Stop: "+inf", Count: scanCount,
		}).Result()
		if err != nil {
			if redis.HasErrorPrefix(err, "WRONGTYPE") {
				t, _ := s.rdb.Type(ctx, zkey).Result()
				return append(problems, Problem{Key: zkey, Kind: ProblemWrongType,
					Detail: fmt.Sprintf("the delayed schedule is a %s, not a sorted set; delayed jobs skipped", t)}), nil
			}
			return problems, fmt.Errorf("read %s: %w", zkey, err)
		}
		buckets := make([]Bucket, 0, len(zs))
		for _, z := range zs {
			m, _ := z.Member.(string)
			ts, err := strconv.ParseInt(m, 10, 64)
			if err != nil || ts <= 0 {
				problems = append(problems, Problem{Key: zkey, Kind: ProblemBadScheduleTS,
					Detail: fmt.Sprintf("member %q is not a Unix timestamp; skipped", m)})
				continue
			}
			buckets = append(buckets, Bucket{At: ts, Key: s.layout.Delayed(ts)})
		}
		if err := s.describeBuckets(ctx, buckets); err != nil {
			return problems, err
		}
		for _, b := range buckets {
			if b.Type != "list" && b.Type != "none" {
				problems = append(problems, Problem{Key: b.Key, Kind: ProblemWrongType,
					Detail: fmt.Sprintf("delayed bucket is a %s, not a list; skipped", b.Type)})
				continue
			}
			if err := fn(b); err != nil {
				return problems, err
			}
		}
		if len(zs) < scanCount {
			return problems, nil
		}
		lower = "(" + strconv.FormatFloat(zs[len(zs)-1].Score, 'f', -1, 64)
	}
}

func (s *Scanner) describeBuckets(ctx context.Context, bs []Bucket) error {
	if len(bs) == 0 {
		return nil
	}
	pipe := s.rdb.Pipeline()
	types := make([]*redis.StatusCmd, len(bs))
	lens := make([]*redis.IntCmd, len(bs))
	for i, b := range bs {
		types[i] = pipe.Type(ctx, b.Key)
		lens[i] = pipe.LLen(ctx, b.Key)
	}
	if _, err := pipe.Exec(ctx); err != nil && !redis.HasErrorPrefix(err, "WRONGTYPE") {
		return fmt.Errorf("describe delayed buckets: %w", err)
	}
	for i := range bs {
		bs[i].Type = types[i].Val()
		if bs[i].Type == "list" {
			bs[i].Length = lens[i].Val()
		}
	}
	return nil
}

// ScanDelayed scans every delayed bucket, in time order, with visit; onBucket,
// when set, is told of each bucket first. It returns the problems found on
// the way, and skips what they name: buckets of another type (at discovery
// or changed during the scan) and schedule members that are not timestamps.
func (s *Scanner) ScanDelayed(ctx context.Context, visit Visitor, onBucket func(Bucket)) ([]Problem, error) {
	var found []Problem
	problems, err := s.DelayedBuckets(ctx, func(b Bucket) error {
		if onBucket != nil {
			onBucket(b)
		}
		_, err := s.ScanList(ctx, ListRef{Key: b.Key, DelayedAt: b.At}, visit)
		if IsWrongType(err) {
			found = append(found, WrongTypeProblem(b.Key, err))
			return nil
		}
		return err
	})
	return append(found, problems...), err
}

// WrongTypeProblem reports a list whose key turned out to be of another
// type while it was read; it is skipped.
func WrongTypeProblem(key string, err error) Problem {
	return Problem{Key: key, Kind: ProblemWrongType, Detail: err.Error()}
}

// FailedLength returns the length of Resque's failed list (0 when absent).
func (s *Scanner) FailedLength(ctx context.Context) (int64, *Problem, error) {
	n, err := s.rdb.LLen(ctx, s.layout.Failed()).Result()
	if err != nil {
		if redis.HasErrorPrefix(err, "WRONGTYPE") {
			return 0, &Problem{Key: s.layout.Failed(), Kind: ProblemWrongType, Detail: "the failed key is not a list"}, nil
		}
		return 0, nil, fmt.Errorf("read %s: %w", s.layout.Failed(), err)
	}
	return n, nil, nil
}

// IsWrongType reports whether err is Redis's WRONGTYPE reply (or wraps ErrWrongType).
func IsWrongType(err error) bool {
	return errors.Is(err, ErrWrongType) || redis.HasErrorPrefix(err, "WRONGTYPE")
}
