package enqueue

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/sweep"
)

func enqArgs(ss ...string) []json.RawMessage { return ParseArgs(ss) }

// enqJudge returns the jobs of list as a scanner on f's clock judges them.
func enqJudge(f *redistest.Fixture, list inspect.ListRef) []inspect.Job {
	f.T.Helper()
	s, err := inspect.NewScanner(f.RDB, inspect.Config{Layout: f.Layout, Now: f.Clock})
	if err != nil {
		f.T.Fatal(err)
	}
	var jobs []inspect.Job
	if _, err := s.ScanList(f.Ctx, list, func(_ context.Context, c *inspect.Chunk) error {
		jobs = append(jobs, c.Jobs...)
		return nil
	}); err != nil {
		f.T.Fatal(err)
	}
	return jobs
}

func TestParseArg(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"42":            `42`,
		"-1.5":          `-1.5`,
		"true":          `true`,
		"null":          `null`,
		`"quoted"`:      `"quoted"`,
		` [1, 2] `:      `[1,2]`,
		`{"a": "<b>"}`:  `{"a":"<b>"}`,
		"hello":         `"hello"`,
		"":              `""`,
		"a <b> & c":     `"a <b> & c"`,
		`{"broken":`:    `"{\"broken\":"`,
		"2024-05-01":    `"2024-05-01"`,
		"multi\nline":   `"multi\nline"`,
		"ünïcode":       `"ünïcode"`,
		"1e3":           `1e3`,
		"0x10":          `"0x10"`,
		"[1,2] trailer": `"[1,2] trailer"`,
	} {
		if got := string(parseArg(in)); got != want {
			t.Errorf("parseArg(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestEnqueuePlain: one script pushes the exact Resque payload with the id
// at the first id path, registers the queue and writes the deadline with
// its key TTL; the scanner then sees the job live, under that id.
func TestEnqueuePlain(t *testing.T) {
	t.Parallel()
	f := redistest.NewFixture(t)
	res, err := Run(f.Ctx, f.RDB, f.Layout, Job{
		Queue: "mailers", Class: "Mailer", Args: enqArgs("42", "x", `{"to":"<a@b>"}`), ID: "job-1",
		TTL: 90 * time.Minute, Retention: time.Hour, Now: f.Clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantPayload := `{"class":"Mailer","args":[42,"x",{"to":"<a@b>"}],"id":"job-1"}`
	deadline := f.Now.Add(90 * time.Minute)
	want := Result{ID: "job-1", Queue: "mailers", Class: "Mailer", List: "resque:queue:mailers",
		ExpirationKey: "resque:job:job-1:expiration", Deadline: deadline, KeyExpiresAt: deadline.Add(time.Hour), Payload: wantPayload}
	if res != want {
		t.Errorf("result\n  %+v\nwant\n  %+v", res, want)
	}
	if got := f.RDB.LRange(f.Ctx, "resque:queue:mailers", 0, -1).Val(); len(got) != 1 || got[0] != wantPayload {
		t.Errorf("queue holds %q", got)
	}
	if !f.RDB.SIsMember(f.Ctx, "resque:queues", "mailers").Val() {
		t.Error("queue not registered in resque:queues")
	}
	if f.Deadline("job-1") != f.Unix(90*time.Minute) {
		t.Errorf("deadline %q", f.Deadline("job-1"))
	}
	f.WantKeyExpiresAt("job-1", deadline.Add(time.Hour))
	jobs := enqJudge(f, inspect.ListRef{Key: res.List, Queue: "mailers"})
	if len(jobs) != 1 || jobs[0].ID != "job-1" || jobs[0].State != inspect.StateLive || !jobs[0].Deadline.Equal(deadline) {
		t.Errorf("scanner sees %+v", jobs)
	}
	if n := f.RDB.DBSize(f.Ctx).Val(); n != 3 {
		t.Errorf("%d keys, want 3 (queue, queues, deadline)", n)
	}
}

// TestEnqueueIDs: generated ids are UUIDs; the id goes at the first id
// path when it is a top-level key, and requests that would put it where
// the tool cannot find it fail with ErrInvalidRequest, writing nothing.
func TestEnqueueIDs(t *testing.T) {
	t.Parallel()
	f := redistest.NewFixture(t)
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, err := Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "q", Class: "C", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "q", Class: "C", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !uuid.MatchString(a.ID) || !uuid.MatchString(b.ID) || a.ID == b.ID {
		t.Errorf("generated ids %q %q", a.ID, b.ID)
	}
	if a.Payload != `{"class":"C","args":[],"id":"`+a.ID+`"}` {
		t.Errorf("payload %s", a.Payload)
	}

	jid, err := Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "q", Class: "C", ID: "s1", IDPaths: []string{"jid", "id"}, TTL: time.Hour})
	if err != nil || jid.Payload != `{"class":"C","args":[],"jid":"s1"}` {
		t.Errorf("jid: %s, %v", jid.Payload, err)
	}

	before := f.Dump()
	for _, tc := range []struct {
		name string
		req  Job
		want string
	}{
		{"nested path", Job{IDPaths: []string{"args.0.job_id", "id"}}, "a plain payload keeps its id at a top-level key"},
		{"reserved key", Job{IDPaths: []string{"class"}}, `the id cannot go at "class"`},
		{"activejob unreachable", Job{ActiveJob: true, IDPaths: []string{"id", "jid"}}, "would not find the id"},
		{"no queue", Job{Queue: "-"}, "a queue is required"},
		{"no class", Job{Class: "-"}, "a class is required"},
		{"no ttl", Job{TTL: -1}, "the TTL must be positive"},
		{"bad arg", Job{Args: []json.RawMessage{json.RawMessage(`{nope`)}}, "argument 1 is not a JSON value"},
		{"past deadline", Job{At: f.Now.Add(-2 * time.Hour)}, "is already past"},
		{"bad path", Job{IDPaths: []string{"a..b"}}, "empty segment"},
	} {
		req := tc.req
		if req.Queue == "" {
			req.Queue = "q"
		} else if req.Queue == "-" {
			req.Queue = ""
		}
		if req.Class == "" {
			req.Class = "C"
		} else if req.Class == "-" {
			req.Class = ""
		}
		if req.TTL == 0 {
			req.TTL = time.Hour
		}
		req.Now = f.Clock
		_, err := Run(f.Ctx, f.RDB, f.Layout, req)
		if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want ErrInvalidRequest with %q", tc.name, err, tc.want)
		}
	}
	redistest.SameDump(t, "invalid requests", before, f.Dump())
}

// TestEnqueueActiveJob: --activejob writes the payload Rails' Resque adapter
// writes, with the id as job_id where the default id paths find it.
func TestEnqueueActiveJob(t *testing.T) {
	t.Parallel()
	f := redistest.NewFixture(t)
	now := f.Now.Add(123456789 * time.Nanosecond)
	res, err := Run(f.Ctx, f.RDB, f.Layout, Job{
		Queue: "default", Class: "Reports::Daily", Args: enqArgs("7", "full"), ID: "aj-1", ActiveJob: true,
		TTL: time.Hour, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"class":"ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper","args":[{"job_class":"Reports::Daily",` +
		`"job_id":"aj-1","provider_job_id":null,"queue_name":"default","priority":null,"arguments":[7,"full"],` +
		`"executions":0,"exception_executions":{},"locale":"en","timezone":"UTC",` +
		`"enqueued_at":"` + f.Now.Format("2006-01-02T15:04:05") + `.123456789Z","scheduled_at":null}]}`
	if res.Payload != want {
		t.Errorf("payload\n  %s\nwant\n  %s", res.Payload, want)
	}
	// The deadline is rounded up to the whole second.
	if !res.Deadline.Equal(f.Now.Add(time.Hour+time.Second)) || f.Deadline("aj-1") != f.Unix(time.Hour+time.Second) {
		t.Errorf("deadline %s / %q", res.Deadline, f.Deadline("aj-1"))
	}
	jobs := enqJudge(f, inspect.ListRef{Key: res.List, Queue: "default"})
	if len(jobs) != 1 || jobs[0].ID != "aj-1" || jobs[0].Class != "Reports::Daily" || jobs[0].State != inspect.StateLive ||
		!jobs[0].EnqueuedAt.Equal(now) {
		t.Errorf("scanner sees %+v", jobs)
	}
	if !f.RDB.SIsMember(f.Ctx, "resque:queues", "default").Val() {
		t.Error("queue not registered")
	}
}

// TestEnqueueDelayed: --at puts the job on resque-scheduler's schedule as
// delayed_push does (bucket list, timestamps set, schedule zset), payload
// with "queue", deadline counted from the due time; nothing on the queue.
func TestEnqueueDelayed(t *testing.T) {
	t.Parallel()
	for _, aj := range []bool{false, true} {
		name := "plain"
		if aj {
			name = "activejob"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := redistest.NewFixture(t)
			at := f.Now.Add(2*time.Hour + 500*time.Millisecond)
			ts := at.Unix()
			res, err := Run(f.Ctx, f.RDB, f.Layout, Job{
				Queue: "low", Class: "Cleanup", Args: enqArgs("1"), ID: "d-1", ActiveJob: aj,
				TTL: 30 * time.Minute, At: at, Now: f.Clock,
			})
			if err != nil {
				t.Fatal(err)
			}
			wantPayload := `{"class":"Cleanup","args":[1],"queue":"low","id":"d-1"}`
			if aj {
				wantPayload = `{"class":"ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper","args":[{"job_class":"Cleanup",` +
					`"job_id":"d-1","provider_job_id":null,"queue_name":"low","priority":null,"arguments":[1],"executions":0,` +
					`"exception_executions":{},"locale":"en","timezone":"UTC","enqueued_at":"` + f.Now.Format("2006-01-02T15:04:05") +
					`.000000000Z","scheduled_at":"` + f.Now.Add(2*time.Hour).Format("2006-01-02T15:04:05") + `.500000000Z"}],"queue":"low"}`
			}
			if res.Payload != wantPayload {
				t.Errorf("payload\n  %s\nwant\n  %s", res.Payload, wantPayload)
			}
			bucket := f.Layout.Delayed(ts)
			if res.DelayedAt != ts || res.List != bucket {
				t.Errorf("result %+v", res)
			}
			if got := f.RDB.LRange(f.Ctx, bucket, 0, -1).Val(); len(got) != 1 || got[0] != wantPayload {
				t.Errorf("bucket holds %q", got)
			}
			if got := f.RDB.SMembers(f.Ctx, f.Layout.Timestamps(wantPayload)).Val(); len(got) != 1 || got[0] != "delayed:"+f.Unix(2*time.Hour) {
				t.Errorf("timestamps set %q", got)
			}
			z := f.RDB.ZRangeWithScores(f.Ctx, f.Layout.DelayedSchedule(), 0, -1).Val()
			if len(z) != 1 || z[0].Member != f.Unix(2*time.Hour) || z[0].Score != float64(ts) {
				t.Errorf("schedule %v", z)
			}
			// Due at +2h0.5s: the deadline is 30 minutes later, rounded up.
			if f.Deadline("d-1") != f.Unix(2*time.Hour+30*time.Minute+time.Second) {
				t.Errorf("deadline %q", f.Deadline("d-1"))
			}
			f.WantKeyExpiresAt("d-1", f.Now.Add(2*time.Hour+30*time.Minute+time.Second+resque.DefaultRetention))
			if n := f.RDB.Exists(f.Ctx, f.Layout.Queue("low"), f.Layout.Queues()).Val(); n != 0 {
				t.Errorf("a delayed job touched the queue (%d keys)", n)
			}
			jobs := enqJudge(f, inspect.ListRef{Key: bucket, DelayedAt: ts})
			if len(jobs) != 1 || jobs[0].ID != "d-1" || jobs[0].Queue != "low" || jobs[0].State != inspect.StateLive {
				t.Errorf("scanner sees %+v", jobs)
			}
		})
	}
}

// TestEnqueueAtomic: when the id's deadline exists already, or a key holds
// the wrong type, the script writes nothing at all.
func TestEnqueueAtomic(t *testing.T) {
	t.Parallel()
	f := redistest.NewFixture(t)
	f.SetDeadline("dup", f.Unix(time.Minute), 0)
	f.RDB.Set(f.Ctx, f.Layout.Queue("stringy"), "x", 0)
	f.RDB.Set(f.Ctx, f.Layout.DelayedSchedule(), "x", 0)
	before := f.Dump()

	_, err := Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "q", Class: "C", ID: "dup", TTL: time.Hour})
	if !errors.Is(err, ErrIDExists) {
		t.Errorf("duplicate id: %v", err)
	}
	_, err = Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "q", Class: "C", ID: "dup", TTL: time.Hour, At: f.Now.Add(time.Hour)})
	if !errors.Is(err, ErrIDExists) && (err == nil || !strings.Contains(err.Error(), "WRONGTYPE")) {
		t.Errorf("duplicate delayed id: %v", err)
	}
	_, err = Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "stringy", Class: "C", ID: "new1", TTL: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "WRONGTYPE resque:queue:stringy holds a string, not a list") {
		t.Errorf("wrong-type queue: %v", err)
	}
	_, err = Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "q", Class: "C", ID: "new2", TTL: time.Hour, At: f.Now.Add(time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "not a zset") {
		t.Errorf("wrong-type schedule: %v", err)
	}
	redistest.SameDump(t, "failed enqueues", before, f.Dump())
}

// TestEnqueueThenSweep is the canary round trip: a job enqueued with a 1s
// TTL is removed by the first sweep after its deadline, queued or delayed,
// and a job with a long TTL is left alone.
func TestEnqueueThenSweep(t *testing.T) {
	t.Parallel()
	f := redistest.NewFixture(t)
	keep, err := Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "canary", Class: "Canary", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	canary, err := Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "canary", Class: "Canary", TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	delayed, err := Run(f.Ctx, f.RDB, f.Layout, Job{Queue: "canary", Class: "Canary", TTL: time.Second,
		At: time.Now().Add(-time.Second / 2)})
	if err != nil {
		t.Fatal(err)
	}
	last := canary.Deadline
	if delayed.Deadline.After(last) {
		last = delayed.Deadline
	}
	for time.Now().Before(last) {
		if time.Until(last) > 3*time.Second {
			t.Fatalf("deadline %s is too far", last)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s, err := inspect.NewScanner(f.RDB, inspect.Config{Layout: f.Layout})
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	res, err := sweep.New(s).Run(f.Ctx, sweep.Options{Delayed: true, OnRemoved: func(r sweep.Removal) { removed = append(removed, r.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Removed != 2 || len(removed) != 2 || removed[0] != canary.ID || removed[1] != delayed.ID {
		t.Fatalf("removed %v (%d), want the canaries %s %s", removed, res.Removed, canary.ID, delayed.ID)
	}
	if got := f.RDB.LRange(f.Ctx, keep.List, 0, -1).Val(); len(got) != 1 || got[0] != keep.Payload {
		t.Errorf("queue holds %q, want only the long-lived job", got)
	}
	if f.Deadline(canary.ID) != "" || f.Deadline(delayed.ID) != "" || f.Deadline(keep.ID) == "" {
		t.Error("deadline keys not removed with their jobs")
	}
	if n := f.RDB.Exists(f.Ctx, delayed.List, f.Layout.Timestamps(delayed.Payload), f.Layout.DelayedSchedule()).Val(); n != 0 {
		t.Errorf("%d delayed structures left behind", n)
	}
}

// TestEnqueueDocsShowTheScript: docs/enqueue.md quotes enqueue.lua verbatim,
// so the Ruby recipe is the script Enqueue runs.
func TestEnqueueDocsShowTheScript(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/enqueue.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), enqueueSrc) {
		t.Error("docs/enqueue.md does not contain enqueue/enqueue.lua verbatim; copy the script into the Ruby recipe")
	}
}

// TestEnqueueRawScript runs enqueue.lua with EVAL, keys and arguments laid
// out by hand as the Ruby recipe in docs/enqueue.md does.
func TestEnqueueRawScript(t *testing.T) {
	t.Parallel()
	f := redistest.NewFixture(t)
	payload := `{"class":"Mailer","args":[1],"id":"r1"}`
	deadline := f.Now.Add(time.Hour).Unix()
	n, err := f.RDB.Eval(f.Ctx, enqueueSrc, []string{"resque:queue:mail", "resque:queues", "resque:job:r1:expiration"},
		payload, "mail", deadline, deadline+7*86400, "").Int()
	if err != nil || n != 1 {
		t.Fatalf("eval: %d, %v", n, err)
	}
	n, err = f.RDB.Eval(f.Ctx, enqueueSrc, []string{"resque:queue:mail", "resque:queues", "resque:job:r1:expiration"},
		payload, "mail", deadline, deadline+7*86400, "").Int()
	if err != nil || n != 0 || f.RDB.LLen(f.Ctx, "resque:queue:mail").Val() != 1 {
		t.Fatalf("second eval: %d, %v", n, err)
	}
	jobs := enqJudge(f, inspect.ListRef{Key: "resque:queue:mail", Queue: "mail"})
	if len(jobs) != 1 || jobs[0].State != inspect.StateLive || jobs[0].DeadlineRaw != resque.FormatDeadline(time.Unix(deadline, 0)) {
		t.Errorf("scanner sees %+v", jobs)
	}
}

// TestRunWhenTheReplyIsLost: enqueue ran, its reply was lost, go-redis sent
// it again: success, with exactly one job queued.
func TestRunWhenTheReplyIsLost(t *testing.T) {
	t.Parallel()
	f := redistest.NewFixture(t)
	proxy := redistest.StartProxy(t, f.RDB.Options().Addr)
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr(), MaxRetries: 3, MinRetryBackoff: time.Millisecond})
	defer c.Close()
	if err := luaScripts.Load(f.Ctx, c); err != nil {
		t.Fatal(err)
	}
	proxy.LoseRepliesTo(enqueueScript.Hash(), 1)
	res, err := Run(f.Ctx, c, f.Layout, Job{Queue: "mail", Class: "Mailer", ID: "once", TTL: time.Hour})
	if err != nil {
		t.Fatalf("enqueue after a lost reply: %v", err)
	}
	if n := f.RDB.LLen(f.Ctx, f.Layout.Queue("mail")).Val(); n != 1 || res.ID != "once" {
		t.Errorf("%d jobs queued (id %q), want exactly 1", n, res.ID)
	}
	if keys := f.RDB.Keys(f.Ctx, "resque:resque-expire:*").Val(); len(keys) != 0 {
		t.Errorf("left behind: %v", keys)
	}
}
