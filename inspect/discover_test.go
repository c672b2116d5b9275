package inspect

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

func discover(t *testing.T, s *Scanner) ([]QueueInfo, []Problem) {
	t.Helper()
	qs, ps, err := s.DiscoverQueues(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !sort.SliceIsSorted(qs, func(i, j int) bool { return qs[i].Name < qs[j].Name }) {
		t.Error("queues not sorted by name")
	}
	return qs, ps
}

func queueNames(qs []QueueInfo) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.Name
	}
	return out
}

func problemOf(ps []Problem, key string) *Problem {
	for i := range ps {
		if ps[i].Key == key {
			return &ps[i]
		}
	}
	return nil
}

// TestDiscoverQueues covers every way a queue shows up: registered with a
// list, registered without one, a list nobody registered, and a queue key
// that is not a list; with names Resque allows but globs and shells don't
// like.
func TestDiscoverQueues(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	s := newTestScanner(t, rdb, 10)
	names := []string{"default", "with space", "ünïcødé ✓", "new\nline", "colon:name", "glob*name", "[brackets]", "q?"}
	for _, n := range names {
		rdb.SAdd(ctx, "resque:queues", n)
		rdb.RPush(ctx, "resque:queue:"+n, obj("id-"+n), obj("id2-"+n))
	}
	rdb.SAdd(ctx, "resque:queues", "registered-empty")
	rdb.RPush(ctx, "resque:queue:unregistered", obj("u1"))
	rdb.HSet(ctx, "resque:queue:a-hash", "k", "v")
	rdb.Set(ctx, "resque:queue:a-string", "v", 0)
	rdb.SAdd(ctx, "resque:queues", "registered-set")
	rdb.SAdd(ctx, "resque:queue:registered-set", "x")
	// Not queue keys of this layout.
	rdb.RPush(ctx, "resque:queue:", obj("empty-name"))
	rdb.RPush(ctx, "resque:queuex", obj("x"))
	rdb.RPush(ctx, "other:queue:default", obj("o"))
	rdb.RPush(ctx, "resque:failed", "f")

	qs, ps := discover(t, s)
	byName := map[string]QueueInfo{}
	for _, q := range qs {
		byName[q.Name] = q
	}
	want := append([]string{"registered-empty", "unregistered", "a-hash", "a-string", "registered-set"}, names...)
	sort.Strings(want)
	if got := queueNames(qs); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("queues = %q, want %q", got, want)
	}
	for _, n := range names {
		q := byName[n]
		if !q.InSet || q.Type != "list" || q.Length != 2 || q.Key != "resque:queue:"+n || !q.Readable() {
			t.Errorf("queue %q: %+v", n, q)
		}
		if p := problemOf(ps, q.Key); p != nil {
			t.Errorf("healthy queue %q reported: %+v", n, p)
		}
	}
	checks := []struct {
		name, typ, kind string
		inSet, readable bool
		length          int64
	}{
		{"registered-empty", "none", ProblemNoList, true, true, 0},
		{"unregistered", "list", ProblemNotInSet, false, true, 1},
		{"a-hash", "hash", ProblemWrongType, false, false, 0},
		{"a-string", "string", ProblemWrongType, false, false, 0},
		{"registered-set", "set", ProblemWrongType, true, false, 0},
	}
	for _, c := range checks {
		q := byName[c.name]
		if q.Type != c.typ || q.InSet != c.inSet || q.Readable() != c.readable || q.Length != c.length {
			t.Errorf("queue %q: %+v, want type %s inSet %v readable %v length %d", c.name, q, c.typ, c.inSet, c.readable, c.length)
		}
		p := problemOf(ps, "resque:queue:"+c.name)
		if p == nil || p.Kind != c.kind {
			t.Errorf("queue %q: problem %+v, want %s", c.name, p, c.kind)
		}
	}
	if len(ps) != len(checks) {
		t.Errorf("%d problems, want %d: %+v", len(ps), len(checks), ps)
	}

	t.Run("queue filter", func(t *testing.T) {
		s := newTestScanner(t, rdb, 10, func(c *Config) { c.Queues = []string{"a-*", `glob\*name`, "unregistered"} })
		qs, ps := discover(t, s)
		if got := strings.Join(queueNames(qs), "|"); got != "a-hash|a-string|glob*name|unregistered" {
			t.Errorf("filtered queues = %q", got)
		}
		if len(ps) != 3 {
			t.Errorf("problems of filtered-out queues reported: %+v", ps)
		}
	})
}

// TestDiscoverQueuesRegistryWrongType: a <ns>:queues that is not a set is
// reported, and the lists are still found by SCAN.
func TestDiscoverQueuesRegistryWrongType(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	setups := map[string]func(){
		"string": func() { rdb.Set(ctx, "resque:queues", "default", 0) },
		"list":   func() { rdb.RPush(ctx, "resque:queues", "default") },
		"hash":   func() { rdb.HSet(ctx, "resque:queues", "default", "1") },
		"zset":   func() { rdb.ZAdd(ctx, "resque:queues", redis.Z{Member: "default"}) },
	}
	for typ, setup := range setups {
		t.Run(typ, func(t *testing.T) {
			flush(t, rdb)
			setup()
			rdb.RPush(ctx, "resque:queue:default", obj("1"))
			rdb.RPush(ctx, "resque:queue:other", obj("2"))
			qs, ps := discover(t, newTestScanner(t, rdb, 10))
			if got := strings.Join(queueNames(qs), "|"); got != "default|other" {
				t.Errorf("queues = %q", got)
			}
			for _, q := range qs {
				if q.InSet || q.Type != "list" {
					t.Errorf("%+v", q)
				}
			}
			p := problemOf(ps, "resque:queues")
			if p == nil || p.Kind != ProblemWrongType || !strings.Contains(p.Detail, typ) {
				t.Errorf("registry problem = %+v, want wrong-type naming %s", p, typ)
			}
		})
	}
}

// TestDiscoverQueuesGlobNamespace: a namespace full of glob characters
// finds its own queues and never another namespace's, whether through the
// SCAN pattern or the registry.
func TestDiscoverQueuesGlobNamespace(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	namespaces := []string{"re[s]que*", "re?que", `we\ird`, "^caret", "x]y", "[!a]", "a*", "*", "{cluster}", "app:resque"}
	// Keys that an unescaped pattern for one of the namespaces above would
	// match.
	decoys := []string{"resque", "reXque", "weird", `we\\ird`, "caret", "xy", "b", "abc", "anything", "cluster", "app:resquex", "app"}
	for _, ns := range append(append([]string{}, namespaces...), decoys...) {
		rdb.SAdd(ctx, ns+":queues", "in-"+ns)
		rdb.RPush(ctx, ns+":queue:in-"+ns, obj("x"))
		rdb.RPush(ctx, ns+":queue:only-"+ns, obj("y"))
	}
	for _, ns := range namespaces {
		t.Run(ns, func(t *testing.T) {
			s := newTestScanner(t, rdb, 10, func(c *Config) { c.Layout = resque.MustLayout(ns, "") })
			qs, ps := discover(t, s)
			want := []string{"in-" + ns, "only-" + ns}
			sort.Strings(want)
			if got := queueNames(qs); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("queues = %q, want %q", got, want)
			}
			for _, q := range qs {
				if !strings.HasPrefix(q.Key, ns+":queue:") || q.Type != "list" || q.Length != 1 {
					t.Errorf("%+v", q)
				}
			}
			if len(ps) != 1 || ps[0].Kind != ProblemNotInSet {
				t.Errorf("problems = %+v, want only only-%s not in set", ps, ns)
			}
		})
	}
}

// TestDiscoverQueuesNoNamespace: "" means keys carry no namespace.
func TestDiscoverQueuesNoNamespace(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	rdb.SAdd(ctx, "queues", "a")
	rdb.RPush(ctx, "queue:a", obj("1"))
	rdb.RPush(ctx, "resque:queue:b", obj("2"))
	s := newTestScanner(t, rdb, 10, func(c *Config) { c.Layout = resque.MustLayout("", "") })
	qs, ps := discover(t, s)
	if len(qs) != 1 || qs[0].Name != "a" || qs[0].Key != "queue:a" || !qs[0].InSet || len(ps) != 0 {
		t.Errorf("queues %+v, problems %+v", qs, ps)
	}
}

// TestDiscoverManyQueues crosses SSCAN, SCAN and pipeline page sizes.
func TestDiscoverManyQueues(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	const n = 2500
	pipe := rdb.Pipeline()
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("q%05d", i)
		if i%5 != 0 {
			pipe.SAdd(ctx, "resque:queues", name)
		}
		if i%7 != 0 {
			pipe.RPush(ctx, "resque:queue:"+name, obj(name))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	qs, ps := discover(t, newTestScanner(t, rdb, 10))
	notInSet, noList := 0, 0
	for i := 0; i < n; i++ {
		if i%5 == 0 && i%7 != 0 {
			notInSet++
		}
		if i%5 != 0 && i%7 == 0 {
			noList++
		}
	}
	want := n - countBoth(n)
	if len(qs) != want {
		t.Fatalf("%d queues, want %d", len(qs), want)
	}
	kinds := map[string]int{}
	for _, p := range ps {
		kinds[p.Kind]++
	}
	if kinds[ProblemNotInSet] != notInSet || kinds[ProblemNoList] != noList || len(ps) != notInSet+noList {
		t.Errorf("problems %v, want %d not in set and %d without list", kinds, notInSet, noList)
	}
	for _, q := range qs {
		i, _ := strconv.Atoi(q.Name[1:])
		if q.InSet != (i%5 != 0) || (q.Type == "list") != (i%7 != 0) {
			t.Errorf("%+v", q)
		}
	}
}

// countBoth counts the i < n neither registered nor with a list.
func countBoth(n int) int {
	c := 0
	for i := 0; i < n; i++ {
		if i%5 == 0 && i%7 == 0 {
			c++
		}
	}
	return c
}

// TestDelayedBuckets: buckets come in time order across score pages; bad
// members, buckets of the wrong type and a schedule of the wrong type are
// reported and skipped.
func TestDelayedBuckets(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	s := newTestScanner(t, rdb, 10)
	const n = 2100
	const t0 = 1717236000
	pipe := rdb.Pipeline()
	for i := 0; i < n; i++ {
		ts := int64(t0 + i*60)
		pipe.ZAdd(ctx, "resque:delayed_queue_schedule", redis.Z{Score: float64(ts), Member: strconv.FormatInt(ts, 10)})
		switch {
		case i == 7:
			pipe.HSet(ctx, "resque:delayed:"+strconv.FormatInt(ts, 10), "a", "b")
		case i%3 != 0:
			pipe.RPush(ctx, "resque:delayed:"+strconv.FormatInt(ts, 10), obj(fmt.Sprint("d", i)))
		}
	}
	for _, bad := range []string{"abc", "-5", "0", "1.5", ""} {
		pipe.ZAdd(ctx, "resque:delayed_queue_schedule", redis.Z{Score: 1, Member: bad})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	var got []Bucket
	ps, err := s.DelayedBuckets(ctx, func(b Bucket) error {
		got = append(got, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n-1 {
		t.Fatalf("%d buckets, want %d", len(got), n-1)
	}
	for k, b := range got {
		i := k
		if k >= 7 {
			i++ // the hash was skipped
		}
		ts := int64(t0 + i*60)
		if b.At != ts || b.Key != "resque:delayed:"+strconv.FormatInt(ts, 10) {
			t.Fatalf("bucket %d = %+v, want at %d", k, b, ts)
		}
		if wantList := i%3 != 0; (b.Type == "list") != wantList || (wantList && b.Length != 1) || (!wantList && b.Type != "none") {
			t.Errorf("bucket %d = %+v", k, b)
		}
	}
	kinds := map[string]int{}
	for _, p := range ps {
		kinds[p.Kind]++
	}
	if kinds[ProblemBadScheduleTS] != 5 || kinds[ProblemWrongType] != 1 || len(ps) != 6 {
		t.Errorf("problems = %+v", ps)
	}

	t.Run("callback error stops", func(t *testing.T) {
		boom := errors.New("boom")
		calls := 0
		_, err := s.DelayedBuckets(ctx, func(Bucket) error {
			if calls++; calls == 3 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || calls != 3 {
			t.Errorf("err %v after %d calls", err, calls)
		}
	})
	t.Run("schedule of the wrong type", func(t *testing.T) {
		rdb.Del(ctx, "resque:delayed_queue_schedule")
		rdb.SAdd(ctx, "resque:delayed_queue_schedule", "1717236000")
		ps, err := s.DelayedBuckets(ctx, func(Bucket) error {
			t.Error("called for a set schedule")
			return nil
		})
		if err != nil || len(ps) != 1 || ps[0].Kind != ProblemWrongType || !strings.Contains(ps[0].Detail, "set") {
			t.Errorf("problems %+v, err %v", ps, err)
		}
	})
	t.Run("no schedule", func(t *testing.T) {
		rdb.Del(ctx, "resque:delayed_queue_schedule")
		ps, err := s.DelayedBuckets(ctx, func(Bucket) error {
			t.Error("called without a schedule")
			return nil
		})
		if err != nil || len(ps) != 0 {
			t.Errorf("problems %+v, err %v", ps, err)
		}
	})
}

func TestFailedLength(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	s := newTestScanner(t, rdb, 10)
	if n, p, err := s.FailedLength(ctx); n != 0 || p != nil || err != nil {
		t.Errorf("absent failed list: %d %+v %v", n, p, err)
	}
	rdb.RPush(ctx, "resque:failed", "a", "b", "c")
	if n, p, err := s.FailedLength(ctx); n != 3 || p != nil || err != nil {
		t.Errorf("failed list of 3: %d %+v %v", n, p, err)
	}
	rdb.Del(ctx, "resque:failed")
	rdb.HSet(ctx, "resque:failed", "a", "b")
	if n, p, err := s.FailedLength(ctx); n != 0 || p == nil || p.Kind != ProblemWrongType || p.Key != "resque:failed" || err != nil {
		t.Errorf("failed hash: %d %+v %v", n, p, err)
	}
}

func TestIsWrongType(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	rdb.Set(ctx, "str", "v", 0)
	err := rdb.LLen(ctx, "str").Err()
	if !IsWrongType(err) {
		t.Errorf("IsWrongType(%v) = false", err)
	}
	if !IsWrongType(fmt.Errorf("x: %w", ErrWrongType)) {
		t.Error("IsWrongType(wrapped ErrWrongType) = false")
	}
	for _, e := range []error{nil, errors.New("WRONGTYPE but not from redis"), redis.Nil, context.Canceled} {
		if IsWrongType(e) {
			t.Errorf("IsWrongType(%v) = true", e)
		}
	}
}

// TestDiscoveryStops: the keyspace SCAN in the background ends promptly when
// Stop is called or the context is cancelled, long before it could have
// walked the keyspace, and sends no SCAN after that.
func TestDiscoveryStops(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	const keys = 200_000 // a whole SCAN is keys/scanCount round trips
	if err := rdb.Eval(ctx, `for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'k:' .. i, '1') end return 1`, nil, keys).Err(); err != nil {
		t.Fatal(err)
	}
	s := newTestScanner(t, rdb, 10)
	scans := func() int64 {
		t.Helper()
		info, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		_, after, found := strings.Cut(info, "cmdstat_scan:calls=")
		if !found {
			return 0
		}
		n, err := strconv.ParseInt(after[:strings.IndexByte(after, ',')], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, how := range []string{"Stop", "cancel"} {
		t.Run(how, func(t *testing.T) {
			before := scans()
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			d, err := s.StartDiscovery(cctx)
			if err != nil {
				t.Fatal(err)
			}
			if how == "Stop" {
				d.Stop()
			} else {
				cancel()
			}
			rest := make(chan error, 1)
			go func() {
				_, err := d.Rest()
				rest <- err
			}()
			select {
			case err := <-rest:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Rest after %s = %v, want context.Canceled: the SCAN was not cut short", how, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("the SCAN goroutine still runs 5s after %s", how)
			}
			d.Stop() // again, and after Rest: returns at once
			n := scans() - before
			time.Sleep(50 * time.Millisecond)
			if m := scans() - before; m != n {
				t.Errorf("SCAN went on after %s: %d calls, then %d", how, n, m)
			}
			if n >= keys/scanCount {
				t.Errorf("the SCAN walked the whole keyspace (%d calls) before it stopped", n)
			}
		})
	}
}
