package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// beEnqueueJSON is `enqueue --format json`.
type beEnqueueJSON struct {
	ID            string    `json:"id"`
	Queue         string    `json:"queue"`
	Class         string    `json:"class"`
	List          string    `json:"list"`
	ExpirationKey string    `json:"expiration_key"`
	Deadline      time.Time `json:"deadline"`
	KeyExpiresAt  time.Time `json:"key_expires_at"`
	DelayedAt     int64     `json:"delayed_at"`
	Payload       string    `json:"payload"`
}

// beCounts are the counts of `backfill --format json`, totals or per queue.
type beCounts struct {
	Scanned    int64 `json:"scanned"`
	Skipped    int64 `json:"skipped"`
	Missing    int64 `json:"missing"`
	Set        int64 `json:"set"`
	AlreadySet int64 `json:"already_set"`
	Unmatched  int64 `json:"unmatched"`
	FromNow    int64 `json:"from_now"`
	TTLFixed   int64 `json:"ttl_fixed"`
}

// beBackfillJSON is `backfill --format json`.
type beBackfillJSON struct {
	DryRun bool   `json:"dry_run"`
	From   string `json:"from"`
	beCounts
	Queues []struct {
		Queue string `json:"queue"`
		beCounts
	} `json:"queues"`
	Delayed *struct {
		beCounts
	} `json:"delayed"`
	Rules []struct {
		Rule    string `json:"rule"`
		Line    int    `json:"line"`
		TTL     string `json:"ttl"`
		Matched int64  `json:"matched"`
		Set     int64  `json:"set"`
		Sample  []struct {
			ID       string    `json:"id"`
			From     string    `json:"from"`
			Deadline time.Time `json:"deadline"`
		} `json:"sample"`
	} `json:"rules"`
	Stopped string `json:"stopped"`
}

func beDeadline(t *testing.T, rdb *redis.Client, id string) string {
	t.Helper()
	v, err := rdb.Get(context.Background(), defaultLayout.Expiration(id)).Result()
	if err == redis.Nil {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func bePush(t *testing.T, rdb *redis.Client, queue string, payloads ...string) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.SAdd(ctx, defaultLayout.Queues(), queue).Err(); err != nil {
		t.Fatal(err)
	}
	for _, p := range payloads {
		if err := rdb.RPush(ctx, defaultLayout.Queue(queue), p).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// beOneError checks a failed run printed exactly one error line containing want.
func beOneError(t *testing.T, r result, code int, want string) {
	t.Helper()
	r.expect(t, code)
	var errs []string
	for _, l := range splitLines(r.stderr) {
		if strings.HasPrefix(l, "resque-expire: ") {
			errs = append(errs, l)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], want) {
		t.Errorf("want one error line containing %q\n%s", want, r)
	}
}

// TestEnqueueCanaryThenSweep is the smoke-check round trip: a canary
// enqueued with --ttl 1s is removed by the first sweep after its deadline,
// and nothing else is.
func TestEnqueueCanaryThenSweep(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()

	keepOut := run(t, srv, "enqueue", "--queue", "canary", "--class", "Canary", "--ttl", "1h").expect(t, 0).lines()
	canaryOut := run(t, srv, "enqueue", "--queue", "canary", "--class", "Canary", "--ttl", "1s", "--", "ping").expect(t, 0).lines()
	if len(keepOut) != 1 || len(canaryOut) != 1 {
		t.Fatalf("enqueue printed %q and %q, want one id each", keepOut, canaryOut)
	}
	keep, canary := keepOut[0], canaryOut[0]
	d, err := strconv.ParseInt(beDeadline(t, rdb, canary), 10, 64)
	if err != nil {
		t.Fatalf("canary deadline: %v", err)
	}
	deadline := time.Unix(d, 0)
	for limit := time.Now().Add(3 * time.Second); deadline.After(time.Now()); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(limit) {
			t.Fatalf("the canary's deadline %s is still ahead after 3s", deadline)
		}
	}

	r := run(t, srv, "sweep", "--yes", "--format", "json").expect(t, 0)
	var res sweepJSON
	r.decode(t, &res)
	if res.Removed != 1 || res.Expired != 1 || res.Scanned != 2 {
		t.Errorf("sweep %+v, want exactly the canary removed\n%s", res, r)
	}
	if got := removalLogs(t, r, "removed expired job"); len(got) != 1 || got[0] != "canary/"+canary {
		t.Errorf("removal logs %q, want canary/%s", got, canary)
	}
	left := rdb.LRange(ctx, defaultLayout.Queue("canary"), 0, -1).Val()
	if len(left) != 1 || !strings.Contains(left[0], keep) {
		t.Errorf("queue holds %q, want only the job %s", left, keep)
	}
	if beDeadline(t, rdb, canary) != "" || beDeadline(t, rdb, keep) == "" {
		t.Error("the canary's deadline key was not removed with it, or the other job's was")
	}
}

// TestEnqueueCommand: the payloads, keys and output of enqueue, plain,
// ActiveJob and delayed, and its refusals.
func TestEnqueueCommand(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()

	t.Run("plain", func(t *testing.T) {
		before := time.Now()
		r := run(t, srv, "enqueue", "--format", "json", "--queue", "mailers", "--class", "Mail", "--ttl", "2h",
			"--id", "e1", "--", "42", `{"to":"<a@b>"}`, "hello").expect(t, 0)
		var res beEnqueueJSON
		r.decode(t, &res)
		wantPayload := `{"class":"Mail","args":[42,{"to":"<a@b>"},"hello"],"id":"e1"}`
		if res.ID != "e1" || res.Payload != wantPayload || res.List != "resque:queue:mailers" || res.DelayedAt != 0 {
			t.Errorf("result %+v", res)
		}
		if got := rdb.LRange(ctx, "resque:queue:mailers", 0, -1).Val(); len(got) != 1 || got[0] != wantPayload {
			t.Errorf("queue holds %q", got)
		}
		if !rdb.SIsMember(ctx, "resque:queues", "mailers").Val() {
			t.Error("queue not registered")
		}
		d, _ := strconv.ParseInt(beDeadline(t, rdb, "e1"), 10, 64)
		if dl := time.Unix(d, 0); dl.Before(before.Add(2*time.Hour)) || dl.After(time.Now().Add(2*time.Hour+time.Second)) || !dl.Equal(res.Deadline) {
			t.Errorf("deadline %s (result %s)", dl, res.Deadline)
		}
		ttl := rdb.TTL(ctx, "resque:job:e1:expiration").Val()
		if want := 2*time.Hour + 7*24*time.Hour; ttl > want+time.Second || ttl < want-10*time.Second {
			t.Errorf("key TTL %s, want about %s", ttl, want)
		}
		if logs := r.logs(t); len(logs) != 1 || logs[0]["message"] != "enqueued job" || logs[0]["id"] != "e1" {
			t.Errorf("logs %v", logs)
		}
	})

	t.Run("activejob", func(t *testing.T) {
		out := run(t, srv, "enqueue", "--queue", "default", "--class", "Reports::Daily", "--activejob", "--ttl", "1h",
			"--", "2024-05-01").expect(t, 0).lines()
		if len(out) != 1 {
			t.Fatalf("stdout %q, want the id", out)
		}
		id := out[0]
		payload := rdb.LIndex(ctx, "resque:queue:default", -1).Val()
		var p struct {
			Class string `json:"class"`
			Args  []struct {
				JobClass   string   `json:"job_class"`
				JobID      string   `json:"job_id"`
				QueueName  string   `json:"queue_name"`
				Arguments  []string `json:"arguments"`
				EnqueuedAt string   `json:"enqueued_at"`
			} `json:"args"`
		}
		if err := json.Unmarshal([]byte(payload), &p); err != nil || len(p.Args) != 1 {
			t.Fatalf("payload %s: %v", payload, err)
		}
		a := p.Args[0]
		if p.Class != resque.ActiveJobWrapper || a.JobClass != "Reports::Daily" || a.JobID != id || a.QueueName != "default" ||
			len(a.Arguments) != 1 || a.Arguments[0] != "2024-05-01" || len(a.EnqueuedAt) != len("2024-05-01T12:00:00.123456789Z") {
			t.Errorf("payload %s", payload)
		}
		if beDeadline(t, rdb, id) == "" {
			t.Error("no deadline")
		}
		// inspect finds it, live, under its id.
		var sum struct {
			Totals struct {
				Live int64 `json:"live"`
			} `json:"totals"`
		}
		run(t, srv, "inspect", "--queue", "default", "--format", "json").expect(t, 0).decode(t, &sum)
		if sum.Totals.Live != 1 {
			t.Errorf("inspect sees %d live jobs in default, want 1", sum.Totals.Live)
		}
	})

	t.Run("delayed", func(t *testing.T) {
		r := run(t, srv, "enqueue", "--format", "json", "--queue", "low", "--class", "Cleanup", "--in", "1h", "--ttl", "30m").expect(t, 0)
		var res beEnqueueJSON
		r.decode(t, &res)
		ts := strconv.FormatInt(res.DelayedAt, 10)
		if res.DelayedAt == 0 || res.List != "resque:delayed:"+ts || !strings.Contains(res.Payload, `"queue":"low"`) {
			t.Fatalf("result %+v", res)
		}
		if got := rdb.LRange(ctx, res.List, 0, -1).Val(); len(got) != 1 || got[0] != res.Payload {
			t.Errorf("bucket holds %q", got)
		}
		if m := rdb.SMembers(ctx, "resque:timestamps:"+res.Payload).Val(); len(m) != 1 || m[0] != "delayed:"+ts {
			t.Errorf("timestamps set %q", m)
		}
		if s, err := rdb.ZScore(ctx, "resque:delayed_queue_schedule", ts).Result(); err != nil || s != float64(res.DelayedAt) {
			t.Errorf("schedule score %v, %v", s, err)
		}
		if want := res.DelayedAt + 1800; beDeadline(t, rdb, res.ID) != strconv.FormatInt(want, 10) &&
			beDeadline(t, rdb, res.ID) != strconv.FormatInt(want+1, 10) {
			t.Errorf("deadline %s, want the due time + 30m", beDeadline(t, rdb, res.ID))
		}
		if rdb.Exists(ctx, "resque:queue:low").Val() != 0 {
			t.Error("a delayed job was pushed to its queue")
		}
		at := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
		r = run(t, srv, "enqueue", "--format", "json", "--queue", "low", "--class", "Cleanup", "--at", at, "--ttl", "30m").expect(t, 0)
		r.decode(t, &res)
		if time.Unix(res.DelayedAt, 0).UTC().Format(time.RFC3339) != at {
			t.Errorf("--at %s: delayed at %d", at, res.DelayedAt)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		before := snapshot(t, rdb)
		for _, tc := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"--queue", "q", "--class", "C"}, 2, "enqueue needs --queue, --class and --ttl"},
			{[]string{"--queue", "q", "--class", "C", "--ttl", "0s"}, 2, "--ttl must be positive"},
			{[]string{"--queue", "q", "--class", "C", "--ttl", "1x"}, 2, `--ttl "1x"`},
			{[]string{"--queue", "q", "--class", "C", "--ttl", "1h", "--at", "2030-01-01T00:00:00Z", "--in", "1h"}, 2, "not both"},
			{[]string{"--queue", "q", "--class", "C", "--ttl", "1h", "--at", "tomorrow"}, 2, `--at "tomorrow"`},
			{[]string{"--queue", "q", "--class", "C", "--ttl", "1h", "--at", "2001-01-01T00:00:00Z"}, 2, "already past"},
			{[]string{"--id-path", "args.0.job_id", "--queue", "q", "--class", "C", "--ttl", "1h"}, 2, "top-level key"},
			{[]string{"--queue", "q", "--class", "C", "--ttl", "1h", "--id", "e1"}, 1, "already exists"},
		} {
			beOneError(t, run(t, srv, append([]string{"enqueue"}, tc.args...)...), tc.code, tc.want)
		}
		sameSnapshot(t, "refused enqueues", before, snapshot(t, rdb))
	})
}

// TestBackfillCommand: dry run then real run with a policy file, --fix-key-ttl,
// and the refusals of bad flags and a bad policy file.
func TestBackfillCommand(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	now := time.Now()
	enq := now.Add(-2 * time.Hour).Unix()
	bePush(t, rdb, "mailers",
		fmt.Sprintf(`{"class":"Mail","args":[],"id":"m1","enqueued_at":%d}`, enq),
		`{"class":"Mail","args":[],"id":"m2"}`)
	bePush(t, rdb, "default",
		`{"class":"Reports::Daily","args":[],"id":"r1"}`,
		`{"class":"Other","args":[],"id":"o1"}`,
		`{"class":"Other","args":[],"id":"live"}`)
	rdb.Set(ctx, defaultLayout.Expiration("live"), resque.FormatDeadline(now.Add(time.Hour)), 0)
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, []byte("- {queue: \"mailers\", ttl: \"6h\"}\n- {class: \"Reports::*\", ttl: \"3d\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	before := snapshot(t, rdb)
	var dry beBackfillJSON
	run(t, srv, "backfill", "--policy", policy, "--dry-run", "--format", "json").expect(t, 0).decode(t, &dry)
	sameSnapshot(t, "backfill --dry-run", before, snapshot(t, rdb))
	if !dry.DryRun || dry.From != "enqueued" || dry.Scanned != 5 || dry.Missing != 4 || dry.Set != 3 || dry.Unmatched != 1 || dry.FromNow != 2 {
		t.Fatalf("dry run %+v", dry.beCounts)
	}
	if len(dry.Rules) != 2 || dry.Rules[0].Set != 2 || dry.Rules[1].Set != 1 || dry.Rules[1].Line != 2 || len(dry.Rules[0].Sample) != 2 ||
		dry.Rules[0].Sample[0].ID != "m1" || dry.Rules[0].Sample[0].From != "enqueued" ||
		!dry.Rules[0].Sample[0].Deadline.Equal(time.Unix(enq, 0).Add(6*time.Hour)) {
		t.Errorf("dry-run rules %+v", dry.Rules)
	}
	table := run(t, srv, "backfill", "--policy", policy, "--dry-run").expect(t, 0).stdout
	for _, want := range []string{"would set", "By rule", "queue=mailers", "class=Reports::*", "(no rule)", "Sample deadlines", "m1"} {
		if !strings.Contains(table, want) {
			t.Errorf("dry-run table lacks %q:\n%s", want, table)
		}
	}

	var res beBackfillJSON
	run(t, srv, "backfill", "--policy", policy, "--format", "json").expect(t, 0).decode(t, &res)
	if res.DryRun || res.beCounts != dry.beCounts {
		t.Errorf("real run %+v, dry run %+v", res.beCounts, dry.beCounts)
	}
	want := map[string]string{
		"m1":   strconv.FormatInt(enq+6*3600, 10),
		"r1":   "", // checked below: now + 3d
		"o1":   "",
		"live": resque.FormatDeadline(now.Add(time.Hour)),
	}
	for id, w := range want {
		if id == "r1" {
			continue
		}
		if got := beDeadline(t, rdb, id); got != w {
			t.Errorf("%s: deadline %q, want %q", id, got, w)
		}
	}
	if d, _ := strconv.ParseInt(beDeadline(t, rdb, "r1"), 10, 64); d < now.Add(72*time.Hour).Unix() || d > time.Now().Add(72*time.Hour).Unix() {
		t.Errorf("r1: deadline %d, want now + 3d", d)
	}
	if ttl := rdb.TTL(ctx, defaultLayout.Expiration("m1")).Val(); ttl < 7*24*time.Hour || ttl > 7*24*time.Hour+4*time.Hour+time.Second {
		t.Errorf("m1: key TTL %s, want deadline (4h ahead) + 7d", ttl)
	}
	if rdb.TTL(ctx, defaultLayout.Expiration("live")).Val() != -1 {
		t.Error("backfill gave an existing deadline key a TTL without --fix-key-ttl")
	}

	// --ttl gives the rest a default; --fix-key-ttl the live key a TTL.
	var again beBackfillJSON
	run(t, srv, "backfill", "--policy", policy, "--ttl", "1d", "--fix-key-ttl", "--retention", "1d", "--format", "json").
		expect(t, 0).decode(t, &again)
	if again.Missing != 1 || again.Set != 1 || again.TTLFixed != 1 || beDeadline(t, rdb, "o1") == "" {
		t.Errorf("second run %+v", again.beCounts)
	}
	if ttl := rdb.TTL(ctx, defaultLayout.Expiration("live")).Val(); ttl < 25*time.Hour-10*time.Second || ttl > 25*time.Hour {
		t.Errorf("live: key TTL %s, want 1h + 1d", ttl)
	}

	// Refusals: nothing is read or written.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("- {queue: a, ttl: 1h}\n- {queue: b, ttl: \"3x\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before = snapshot(t, rdb)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--policy", bad}, bad + ` line 2: bad ttl "3x"`},
		{[]string{"--policy", filepath.Join(dir, "absent.yaml")}, "read policy"},
		{nil, "backfill needs --ttl or --policy"},
		{[]string{"--ttl", "-1h"}, "--ttl must be positive"},
		{[]string{"--ttl", "1h", "--from", "later"}, "--from"},
		{[]string{"--ttl", "1h", "--retention", "0s"}, "--retention must be positive"},
		{[]string{"--ttl", "1h", "--limit", "-1"}, "--limit must not be negative"},
	} {
		beOneError(t, run(t, srv, append([]string{"backfill"}, tc.args...)...), 2, tc.want)
	}
	sameSnapshot(t, "refused backfills", before, snapshot(t, rdb))
}
