package inspect

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

type progress struct {
	mu    sync.Mutex
	total int64
	added int
	calls int
}

func (p *progress) SetTotal(n int64) { p.mu.Lock(); p.total = n; p.mu.Unlock() }
func (p *progress) Add(n int)        { p.mu.Lock(); p.added += n; p.calls++; p.mu.Unlock() }

// seedInspect writes a small but complete Resque: two queues with jobs in
// every state, an empty registered queue, a list nobody registered, a queue
// key of the wrong type, delayed buckets and failures.
func seedInspect(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	l := resque.MustLayout("resque", "")
	unix := func(d time.Duration) string { return fmt.Sprint(testNow.Add(d).Unix()) }
	job := func(payload, id, deadline string) redistest.Job {
		return redistest.Job{Payload: payload, ID: id, Deadline: deadline}
	}
	s := redistest.Seed(t, rdb, l).Register("mailers", "default", "empty")
	// mailers: 3 expired, 2 live, 1 missing, 1 unidentified, 2 invalid.
	s.Push("mailers",
		job(`{"class":"SendEmailJob","args":[1],"id":"m1"}`, "m1", unix(-time.Hour)),
		job(`{"class":"SendEmailJob","args":[2],"id":"m2"}`, "m2", unix(-48*time.Hour)), // most overdue
		job(`{"class":"SendEmailJob","args":[3],"id":"m3"}`, "m3", unix(0)),
		job(`{"class":"SendEmailJob","args":[4],"id":"m4"}`, "m4", unix(2*time.Hour)),
		job(`{"class":"SendEmailJob","args":[5],"id":"m5"}`, "m5", fmt.Sprint(testNow.Add(10*time.Minute).UnixMilli())), // soonest
		job(`{"class":"SendEmailJob","args":[6],"id":"m6"}`, "", ""),
		job(`{"class":"SendEmailJob","args":[7]}`, "", ""),
		job(`{"class":"SendEmailJob","args":[`, "", ""),
		job(`{"class":"SendEmailJob","args":[9],"id":"m9"}`, "m9", "garbage"),
	)
	// default: 2 expired, 1 live (Reports::Daily), 1 missing.
	s.Push("default",
		job(`{"class":"Reports::Daily","args":[],"id":"d1"}`, "d1", unix(time.Minute)),
		job(`{"class":"Reports::Daily","args":[],"id":"d2"}`, "d2", "1700000000"),
		job(`{"class":"UpdateStatusJob","args":[],"id":"d3"}`, "d3", "1700000000.5"),
		job(`{"class":"UpdateStatusJob","args":[],"id":"d4"}`, "", ""),
	)
	// A list Resque does not know about: 1 expired.
	s.Push("stray", job(`{"class":"X","args":[],"id":"s1"}`, "s1", "2020-01-01T00:00:00Z"))
	rdb.HSet(ctx, l.Queue("broken"), "a", "b")
	// Delayed: 2 buckets; 1 expired, 1 live, 1 missing; one bucket is a hash.
	s.Delay(1717236000,
		job(`{"class":"SendEmailJob","args":[],"id":"x1","queue":"mailers"}`, "x1", "1700000000"),
		job(`{"class":"SendEmailJob","args":[],"id":"x2","queue":"mailers"}`, "x2", unix(time.Hour)),
	)
	s.Delay(1717236060, job(`{"class":"Reports::Daily","args":[],"id":"x3","queue":"default"}`, "", ""))
	rdb.ZAdd(ctx, l.DelayedSchedule(), redis.Z{Score: 1717236120, Member: "1717236120"})
	rdb.HSet(ctx, l.Delayed(1717236120), "a", "b")
	s.Fail("f1", "f2")
}

// countOf is c's count of jobs in state st.
func countOf(c Counts, st State) int64 {
	if n := c.of(st); n != nil {
		return *n
	}
	return 0
}

func countsString(c Counts) string {
	return fmt.Sprintf("jobs=%d expired=%d live=%d missing=%d unidentified=%d invalid=%d skipped=%d",
		c.Jobs, c.Expired, c.Live, c.Missing, c.Unidentified, c.Invalid, c.Skipped)
}

func TestInspect(t *testing.T) {
	rdb := startRedis(t)
	seedInspect(t, rdb)
	ctx := context.Background()
	s := newTestScanner(t, rdb, 2)
	prog := &progress{}
	sum, err := s.Inspect(ctx, Options{Delayed: true, Progress: prog})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.At.Equal(testNow) {
		t.Errorf("At = %v", sum.At)
	}
	want := map[string]string{
		"default": "jobs=4 expired=2 live=1 missing=1 unidentified=0 invalid=0 skipped=0",
		"empty":   "jobs=0 expired=0 live=0 missing=0 unidentified=0 invalid=0 skipped=0",
		"mailers": "jobs=9 expired=3 live=2 missing=1 unidentified=1 invalid=2 skipped=0",
		"stray":   "jobs=1 expired=1 live=0 missing=0 unidentified=0 invalid=0 skipped=0",
	}
	var names []string
	for _, q := range sum.Queues {
		names = append(names, q.Queue)
		if got := countsString(q.Counts); got != want[q.Queue] {
			t.Errorf("queue %s: %s, want %s", q.Queue, got, want[q.Queue])
		}
	}
	if strings.Join(names, ",") != "default,empty,mailers,stray" {
		t.Errorf("queues = %v (the hash queue must be skipped)", names)
	}
	if got := countsString(sum.Delayed.Counts); got != "jobs=3 expired=1 live=1 missing=1 unidentified=0 invalid=0 skipped=0" {
		t.Errorf("delayed: %s", got)
	}
	if sum.Delayed.Buckets != 2 {
		t.Errorf("delayed buckets = %d, want 2 (the hash bucket is a problem)", sum.Delayed.Buckets)
	}
	if got := countsString(sum.Totals.Counts); got != "jobs=17 expired=7 live=4 missing=3 unidentified=1 invalid=2 skipped=0" {
		t.Errorf("totals: %s", got)
	}
	for _, st := range States {
		var n int64
		for _, q := range sum.Queues {
			n += countOf(q.Counts, st)
		}
		n += countOf(sum.Delayed.Counts, st)
		if n != countOf(sum.Totals.Counts, st) {
			t.Errorf("%s: queues+delayed = %d, totals %d", st, n, countOf(sum.Totals.Counts, st))
		}
	}
	if sum.Failed != 2 {
		t.Errorf("Failed = %d", sum.Failed)
	}
	mailers := sum.Queues[2]
	if mailers.MostOverdue == nil || mailers.MostOverdue.ID != "m2" || mailers.MostOverdue.Overdue != 48*time.Hour || mailers.MostOverdue.OverdueSeconds != 48*3600 {
		t.Errorf("mailers most overdue = %+v", mailers.MostOverdue)
	}
	if mailers.Soonest == nil || mailers.Soonest.ID != "m5" || mailers.Soonest.DueInSeconds != 600 || mailers.Soonest.Queue != "mailers" || mailers.Soonest.Class != "SendEmailJob" {
		t.Errorf("mailers soonest = %+v", mailers.Soonest)
	}
	if sum.Totals.MostOverdue == nil || sum.Totals.MostOverdue.ID != "s1" {
		t.Errorf("total most overdue = %+v, want s1 (2020)", sum.Totals.MostOverdue)
	}
	if sum.Totals.Soonest == nil || sum.Totals.Soonest.ID != "d1" {
		t.Errorf("total soonest = %+v, want d1 (in a minute)", sum.Totals.Soonest)
	}
	if sum.Delayed.Soonest == nil || sum.Delayed.Soonest.ID != "x2" || sum.Delayed.Soonest.Queue != "mailers" {
		t.Errorf("delayed soonest = %+v", sum.Delayed.Soonest)
	}
	kinds := map[string]string{}
	for _, p := range sum.Problems {
		kinds[p.Key] = p.Kind
	}
	wantProblems := map[string]string{
		"resque:queue:empty":        ProblemNoList,
		"resque:queue:stray":        ProblemNotInSet,
		"resque:queue:broken":       ProblemWrongType,
		"resque:delayed:1717236120": ProblemWrongType,
	}
	if fmt.Sprint(kinds) != fmt.Sprint(wantProblems) {
		t.Errorf("problems = %v, want %v", kinds, wantProblems)
	}
	if prog.total != 14 || prog.added != 14 {
		t.Errorf("progress total %d added %d, want 14 (queued jobs)", prog.total, prog.added)
	}

	t.Run("without delayed", func(t *testing.T) {
		sum, err := s.Inspect(ctx, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Delayed.Jobs != 0 || sum.Delayed.Buckets != 0 || sum.Totals.Jobs != 14 {
			t.Errorf("delayed %+v, totals %s", sum.Delayed, countsString(sum.Totals.Counts))
		}
	})
	t.Run("class and queue filters", func(t *testing.T) {
		s := newTestScanner(t, rdb, 3, func(c *Config) {
			c.Classes = []string{"Reports::*"}
			c.Queues = []string{"default", "mailers"}
		})
		sum, err := s.Inspect(ctx, Options{Delayed: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := countsString(sum.Totals.Counts); got != "jobs=3 expired=1 live=1 missing=1 unidentified=0 invalid=0 skipped=13" {
			t.Errorf("totals: %s", got)
		}
		if len(sum.Queues) != 2 {
			t.Errorf("queues %+v", sum.Queues)
		}
	})
	t.Run("deterministic now", func(t *testing.T) {
		later := newTestScanner(t, rdb, 100, func(c *Config) { c.Now = func() time.Time { return testNow.Add(3 * time.Hour) } })
		sum, err := later.Inspect(ctx, Options{})
		if err != nil {
			t.Fatal(err)
		}
		// m4 (in 2h), m5 (in 10min) and d1 (in 1min) have now expired.
		if sum.Totals.Expired != 9 || sum.Totals.Live != 0 {
			t.Errorf("three hours later: %s", countsString(sum.Totals.Counts))
		}
	})
}

func TestList(t *testing.T) {
	rdb := startRedis(t)
	seedInspect(t, rdb)
	ctx := context.Background()
	s := newTestScanner(t, rdb, 2)
	collect := func(opts ListOptions) ([]Listed, []Problem) {
		t.Helper()
		var out []Listed
		ps, err := s.List(ctx, opts, func(l Listed) error {
			out = append(out, l)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out, ps
	}

	all, ps := collect(ListOptions{Options: Options{Delayed: true}})
	if len(all) != 17 {
		t.Fatalf("listed %d jobs, want 17", len(all))
	}
	var order []string
	for _, l := range all {
		if k := l.List.Key; len(order) == 0 || order[len(order)-1] != k {
			order = append(order, k)
		}
		if !l.Now.Equal(testNow) {
			t.Errorf("Now = %v", l.Now)
		}
	}
	wantOrder := "resque:queue:default resque:queue:mailers resque:queue:stray resque:delayed:1717236000 resque:delayed:1717236060"
	if strings.Join(order, " ") != wantOrder {
		t.Errorf("list order %v, want %s", order, wantOrder)
	}
	if len(ps) != 4 {
		t.Errorf("problems = %+v", ps)
	}

	expired, _ := collect(ListOptions{States: []State{StateExpired}, Options: Options{Delayed: true}})
	var ids []string
	for _, l := range expired {
		if l.State != StateExpired {
			t.Errorf("listed a %s job", l.State)
		}
		ids = append(ids, l.ID)
	}
	if strings.Join(ids, ",") != "d2,d3,m1,m2,m3,s1,x1" {
		t.Errorf("expired = %v", ids)
	}

	several, _ := collect(ListOptions{States: []State{StateInvalid, StateUnidentified}})
	if len(several) != 3 {
		t.Errorf("invalid+unidentified = %d, want 3", len(several))
	}

	for _, limit := range []int64{1, 2, 5, 13, 14, 100} {
		got, _ := collect(ListOptions{Limit: limit})
		if want := min(limit, 14); int64(len(got)) != want {
			t.Errorf("limit %d: listed %d, want %d", limit, len(got), want)
		}
	}
	limited, _ := collect(ListOptions{Limit: 2, Options: Options{Delayed: true}, States: []State{StateLive}})
	if len(limited) != 2 || limited[0].ID != "d1" || limited[1].ID != "m4" {
		t.Errorf("2 live: %+v", limited)
	}
	delayedLimited, _ := collect(ListOptions{Limit: 1, Options: Options{Delayed: true}, States: []State{StateMissing}})
	if len(delayedLimited) != 1 {
		t.Errorf("limit 1: %d", len(delayedLimited))
	}
	// The limit is reached within the delayed buckets.
	delayedOnly, _ := collect(ListOptions{Limit: 1, Options: Options{Delayed: true}, States: []State{StateLive, StateExpired}})
	if len(delayedOnly) != 1 {
		t.Errorf("limit 1: %d", len(delayedOnly))
	}

	boom := errors.New("boom")
	n := 0
	if _, err := s.List(ctx, ListOptions{}, func(Listed) error {
		if n++; n == 3 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) || n != 3 {
		t.Errorf("emit error: %v after %d", err, n)
	}

	prog := &progress{}
	if _, err := s.List(ctx, ListOptions{Options: Options{Progress: prog}, States: []State{StateLive}}, func(Listed) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if prog.total != 14 || prog.added != 14 {
		t.Errorf("progress total %d added %d, want 14", prog.total, prog.added)
	}
}

func TestCounts(t *testing.T) {
	var c Counts
	for _, st := range States {
		for i := 0; i <= len(st); i++ {
			c.Add(&Job{State: st})
		}
	}
	c.Add(&Job{State: StateExpired, Skipped: true})
	if c.Jobs != c.Expired+c.Live+c.Missing+c.Unidentified+c.Invalid || c.Skipped != 1 {
		t.Errorf("%+v", c)
	}
	for _, st := range States {
		if countOf(c, st) != int64(len(st)+1) {
			t.Errorf("countOf(%s) = %d", st, countOf(c, st))
		}
	}
	var m Counts
	m.Merge(c)
	m.Merge(c)
	if m.Jobs != 2*c.Jobs || m.Skipped != 2 || m.Invalid != 2*c.Invalid {
		t.Errorf("merge: %+v", m)
	}
	if countOf(c, "bogus") != 0 {
		t.Error("countOf(bogus) != 0")
	}
}

// TestQueueFilterAppliesToDelayedJobs: with --queue, a delayed job belongs
// to the queue named in its payload, and jobs of other queues are left out
// like jobs of other classes (docs/backfill.md: "matched by the queue in
// their payload"). Otherwise `sweep --queue canary` would also remove the
// expired delayed jobs of every other queue.
func TestQueueFilterAppliesToDelayedJobs(t *testing.T) {
	rdb := startRedis(t)
	seedInspect(t, rdb)
	ctx := context.Background()
	s := newTestScanner(t, rdb, 10, func(c *Config) { c.Queues = []string{"mailers"} })
	sum, err := s.Inspect(ctx, Options{Delayed: true})
	if err != nil {
		t.Fatal(err)
	}
	// x1 (expired) and x2 (live) are mailers jobs; x3 is a default job.
	if got := countsString(sum.Delayed.Counts); got != "jobs=2 expired=1 live=1 missing=0 unidentified=0 invalid=0 skipped=1" {
		t.Errorf("delayed with --queue mailers: %s", got)
	}
	var listed []string
	if _, err := s.List(ctx, ListOptions{Options: Options{Delayed: true}}, func(l Listed) error {
		if l.List.Delayed() {
			listed = append(listed, l.ID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(listed, ",") != "x1,x2" {
		t.Errorf("delayed jobs listed with --queue mailers: %v, want x1,x2", listed)
	}
}

// pipeHook calls after once each pipeline has run.
type pipeHook struct{ after func(cmds []redis.Cmder) }

func (h pipeHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h pipeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h pipeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		h.after(cmds)
		return err
	}
}

// TestInspectQueueChangesType: a queue that is a list when discovered and
// something else when read is reported and skipped; the others are counted.
func TestInspectQueueChangesType(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	rdb.SAdd(ctx, "resque:queues", "a", "b")
	rpush(t, rdb, "resque:queue:a", []string{obj("a1")})
	rpush(t, rdb, "resque:queue:b", []string{obj("b1"), obj("b2")})
	rpush(t, rdb, "resque:delayed:1717236000", []string{obj("d1")})
	rdb.ZAdd(ctx, "resque:delayed_queue_schedule", redis.Z{Score: 1717236000, Member: "1717236000"})
	scanRdb := redistest.Client(t, srv)
	scanRdb.AddHook(pipeHook{after: func(cmds []redis.Cmder) {
		for _, c := range cmds {
			if c.Name() == "type" && len(c.Args()) > 1 {
				switch c.Args()[1] {
				case "resque:queue:a", "resque:delayed:1717236000":
					key := c.Args()[1].(string)
					rdb.Del(ctx, key)
					rdb.HSet(ctx, key, "now", "a hash")
				}
			}
		}
	}})
	s := newTestScanner(t, scanRdb, 10)
	sum, err := s.Inspect(ctx, Options{Delayed: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Queues) != 1 || sum.Queues[0].Queue != "b" || sum.Totals.Jobs != 2 {
		t.Errorf("queues %+v, totals %s", sum.Queues, countsString(sum.Totals.Counts))
	}
	var wrong []string
	for _, p := range sum.Problems {
		if p.Kind == ProblemWrongType {
			wrong = append(wrong, p.Key)
		}
	}
	if strings.Join(wrong, ",") != "resque:queue:a,resque:delayed:1717236000" {
		t.Errorf("wrong-type problems %v, problems %+v", wrong, sum.Problems)
	}
}
