package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/redistest"
)

func acMD5(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// acSeed writes one of each rot case the audit reports, with known counts:
// 3 expired jobs (most overdue: 2h), 1 missing, 1 invalid, 2 duplicate
// jobs (2 by id, 1 of them also by payload), a longest queue of 6, 3
// idempotency keys without TTL (1 stuck, 1 of the wrong type), 1 more
// stuck key, 2 unexpected values, 1 orphaned loner marker and 1 expired
// orphaned deadline key.
func acSeed(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	unix := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	do := func(args ...any) {
		t.Helper()
		if err := rdb.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	week := 7 * 24 * time.Hour
	set := func(k, v string, ttl time.Duration) {
		t.Helper()
		if err := rdb.Set(ctx, k, v, ttl).Err(); err != nil {
			t.Fatal(err)
		}
	}
	job := func(payload, id string, d time.Duration) redistest.Job {
		return redistest.Job{Payload: payload, ID: id, Deadline: unix(d)}
	}
	redistest.Seed(t, rdb, defaultLayout).
		Enqueue("default",
			job(`{"class":"A","args":[1],"id":"e1"}`, "e1", -2*time.Hour),
			job(`{"class":"A","args":[2],"id":"e2"}`, "e2", -time.Hour),
			redistest.Job{Payload: `{"class":"A","args":[3],"id":"e1"}`}, // same id
			job(`{"class":"A","args":[4],"id":"l1"}`, "l1", time.Hour),
			redistest.Job{Payload: `{"class":"A","args":[5],"id":"m1"}`}, // no deadline: missing
			redistest.Job{Payload: `{"class":"A","args":[4],"id":"l1"}`}, // same payload (and id)
		).
		Enqueue("mailers", redistest.Job{Payload: `not json`}, redistest.Job{Payload: `{"class":"U","args":[{"b":1,"a":2}]}`}).
		Deadline("gone", unix(-time.Hour)). // orphan, expired
		Deadline("gone2", unix(time.Hour))  // orphan, live: not counted
	set("resque:loners:queue:mailers:job:"+acMD5(`{"class":"U","args":[[["a",2],["b",1]]]}`), "1", 0)
	set("resque:loners:queue:mailers:job:"+acMD5(`{"class":"U","args":[]}`), "1", 0) // orphan

	set("email_sent:1:welcome", "true", week)
	set("email_sent:2:welcome", "true", 0)   // no TTL
	set("email_sent:3:welcome", "yes", week) // unexpected
	do("SADD", "email_sent:4:welcome", "x")  // wrong type... with no TTL
	set("payment:a", "completed", week)
	set("payment:b", "in_progress", 0)                // stuck, no TTL
	set("payment:c", "in_progress", week-3*time.Hour) // stuck: 3h old
	set("payment:d", "charged", week)                 // unexpected
}

// acReplica starts a replica of srv and waits until it holds the same keys.
func acReplica(t *testing.T, srv *redisserver.Server, rdb redis.UniversalClient) *redisserver.Server {
	t.Helper()
	ctx := context.Background()
	if err := rdb.ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err(); err != nil {
		t.Fatal(err)
	}
	rs := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(srv.Port()))
	replica := redistest.Client(t, rs)
	deadline := time.Now().Add(10 * time.Second)
	for replica.DBSize(ctx).Val() != rdb.DBSize(ctx).Val() || !strings.Contains(replica.Info(ctx, "replication").Val(), "master_link_status:up") {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not sync")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return rs
}

// acClosedPort returns a loopback address nothing listens on.
func acClosedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

type acCheck struct {
	Pass       bool     `json:"pass"`
	Partial    bool     `json:"partial"`
	Failed     []string `json:"failed"`
	Thresholds map[string]struct {
		Value int64 `json:"value"`
		Limit int64 `json:"limit"`
		Pass  bool  `json:"pass"`
		Unit  string
	} `json:"thresholds"`
}

// acLastLine is the error line a failed run ends stderr with.
func acLastLine(t *testing.T, r result, want ...string) {
	t.Helper()
	lines := splitLines(r.stderr)
	if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "resque-expire: ") {
		t.Errorf("no error line on stderr:\n%s", r)
		return
	}
	for _, w := range want {
		if !strings.Contains(lines[len(lines)-1], w) {
			t.Errorf("error line %q does not mention %q", lines[len(lines)-1], w)
		}
	}
}

// TestCheckExitCodes: 0 when every threshold holds (a value at its limit
// holds), 3 when any is exceeded, 1 when it cannot run, 2 on usage errors;
// on the master or a replica, and it never writes.
func TestCheckExitCodes(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	acSeed(t, rdb)
	before := snapshot(t, rdb)
	values := map[string]int64{
		"expired": 3, "missing": 1, "invalid": 1, "orphans": 2, "no-ttl": 3, "stuck": 2, "duplicates": 2, "queue-length": 6,
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	sort.Strings(names)
	flags := func(delta int64) []string {
		var out []string
		for _, n := range names {
			out = append(out, "--max-"+n, strconv.FormatInt(values[n]+delta, 10))
		}
		overdue := "2h1m" // the most overdue job expired 2h ago
		if delta < 0 {
			overdue = "1h59m"
		}
		return append(out, "--max-overdue", overdue)
	}
	replica := acReplica(t, srv, rdb)
	for _, target := range []*redisserver.Server{srv, replica} {
		// Every value at its limit: pass.
		var res acCheck
		r := run(t, target, append([]string{"check", "--format", "json"}, flags(0)...)...).expect(t, 0)
		r.decode(t, &res)
		if !res.Pass || res.Partial || len(res.Failed) != 0 || len(res.Thresholds) != 9 {
			t.Errorf("at the limits: %+v", res)
		}
		for n, want := range values {
			if got := res.Thresholds[n]; got.Value != want || !got.Pass || got.Limit != want {
				t.Errorf("%s: %+v, want value %d", n, got, want)
			}
		}
		if o := res.Thresholds["overdue"]; o.Value < 7200 || o.Value > 7260 || o.Unit != "seconds" {
			t.Errorf("overdue: %+v", o)
		}

		// Every value one above its limit: each fails.
		r = run(t, target, append([]string{"check", "--format", "json"}, flags(-1)...)...).expect(t, 3)
		res = acCheck{}
		r.decode(t, &res)
		if res.Pass || len(res.Failed) != 9 {
			t.Errorf("below the values: %+v", res)
		}
		if r.stderr != "" {
			t.Errorf("exit 3 with output on stderr:\n%s", r)
		}
	}

	// Table output: one line per threshold given, and only those.
	r := run(t, srv, "check", "--max-stuck", "5", "--max-orphans", "0").expect(t, 3)
	var rows []string
	for _, l := range r.lines() {
		if strings.HasPrefix(l, "| --max-") {
			rows = append(rows, strings.Join(strings.Fields(strings.ReplaceAll(l, "|", " ")), " "))
		}
	}
	if strings.Join(rows, "\n") != "--max-orphans 2 0 FAIL\n--max-stuck 2 5 pass" {
		t.Errorf("table rows:\n%s\n%s", strings.Join(rows, "\n"), r)
	}
	run(t, srv, "check", "--max-stuck", "2").expect(t, 0)
	run(t, srv, "check", "--max-no-ttl", "0", "--pattern", "payment:*").expect(t, 3)
	run(t, srv, "check", "--max-no-ttl", "0", "--pattern", "nothing:*").expect(t, 0)

	// Cut short before anything is exceeded: it could not tell, exit 1.
	r = run(t, srv, "check", "--max-expired", "100", "--max-duration", "1ns").expect(t, 1)
	acLastLine(t, r, "partial")

	// Could not run.
	r = runEnv(t, nil, "", "--redis", "redis://"+acClosedPort(t)+"/0", "check", "--max-expired", "0").expect(t, 1)
	acLastLine(t, r, "connect")
	if r.stdout != "" {
		t.Errorf("output on stdout: %q", r.stdout)
	}

	// Usage errors.
	badConfig := filepath.Join(t.TempDir(), "families.yml")
	if err := os.WriteFile(badConfig, []byte("- pattern: 'x:*'\n  tll: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check"},
		{"check", "--max-bogus", "1"},
		{"check", "--max-expired", "-1"},
		{"check", "--max-expired", "many"},
		{"check", "--max-overdue", "soon"},
		{"check", "--max-stuck", "0", "--config", badConfig},
		{"check", "--max-stuck", "0", "--config", filepath.Join(t.TempDir(), "missing.yml")},
		{"check", "--max-stuck", "0", "--scan-count", "0"},
	} {
		r := run(t, srv, args...)
		if r.code != 2 {
			t.Errorf("%v: want exit 2, got %s", args, r)
		}
	}
	sameSnapshot(t, "check", before, snapshot(t, rdb))
}

type acAudit struct {
	Families []struct {
		Name       string `json:"name"`
		Keys       int64  `json:"keys"`
		NoTTL      int64  `json:"no_ttl"`
		WrongType  int64  `json:"wrong_type"`
		Unexpected int64  `json:"unexpected_values"`
		Stuck      int64  `json:"stuck"`
	} `json:"families"`
	Deadlines struct {
		Keys    int64 `json:"keys"`
		Orphans struct {
			Orphans, Expired, Held, Live, Fixable int64
		} `json:"orphans"`
	} `json:"deadline_keys"`
	Loners struct {
		Orphans struct {
			Orphans, Fixable int64
		} `json:"orphans"`
	} `json:"loner_markers"`
	Jobs struct {
		DuplicateIDs      int64 `json:"duplicate_ids"`
		IdenticalPayloads int64 `json:"identical_payloads"`
		DuplicateJobs     int64 `json:"duplicate_jobs"`
	} `json:"jobs"`
	Partial bool `json:"partial"`
}

// TestAuditAndFix: the audit's numbers, its dry-run fixes that write
// nothing, and --apply changing exactly the keys it logs.
func TestAuditAndFix(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	acSeed(t, rdb)
	before := snapshot(t, rdb)

	var a acAudit
	run(t, srv, "audit", "--format", "json").expect(t, 0).decode(t, &a)
	if len(a.Families) != 2 || a.Partial {
		t.Fatalf("audit: %+v", a)
	}
	type fam struct{ keys, noTTL, wrongType, unexpected, stuck int64 }
	for i, want := range []fam{{4, 2, 1, 1, 0}, {4, 1, 0, 1, 2}} {
		f := a.Families[i]
		if got := (fam{f.Keys, f.NoTTL, f.WrongType, f.Unexpected, f.Stuck}); got != want {
			t.Errorf("%s: got %+v, want %+v", f.Name, got, want)
		}
	}
	if d := a.Deadlines; d.Keys != 5 || d.Orphans.Orphans != 2 || d.Orphans.Expired != 1 || d.Orphans.Held != 0 || d.Orphans.Live != 1 || d.Orphans.Fixable != 1 {
		t.Errorf("deadline keys: %+v", d)
	}
	if l := a.Loners.Orphans; l.Orphans != 1 || l.Fixable != 1 {
		t.Errorf("loner markers: %+v", l)
	}
	if j := a.Jobs; j.DuplicateIDs != 2 || j.IdenticalPayloads != 1 || j.DuplicateJobs != 2 {
		t.Errorf("jobs: %+v", j)
	}
	table := run(t, srv, "audit", "--examples", "1").expect(t, 0).stdout
	for _, want := range []string{"Key families", "payment stuck: payment:", "Orphans", "Duplicate jobs", "remaining TTL of"} {
		if !strings.Contains(table, want) {
			t.Errorf("table output lacks %q:\n%s", want, table)
		}
	}

	fixes := []string{"audit", "--fix-ttl", "1h", "--fix-stuck", "--fix-orphans"}
	logged := func(r result, msgPrefix string) []string {
		var keys []string
		for _, l := range r.logs(t) {
			if msg, _ := l["message"].(string); strings.HasPrefix(msg, msgPrefix) {
				keys = append(keys, l["key"].(string))
			}
		}
		sort.Strings(keys)
		return keys
	}
	dry := run(t, srv, fixes...).expect(t, 0)
	sameSnapshot(t, "a dry-run fix", before, snapshot(t, rdb))
	wouldChange := logged(dry, "would ")
	want := []string{
		"email_sent:2:welcome", "email_sent:4:welcome", "payment:b", "payment:c", "resque:job:gone:expiration",
		"resque:loners:queue:mailers:job:" + acMD5(`{"class":"U","args":[]}`),
	}
	sort.Strings(want)
	if strings.Join(wouldChange, " ") != strings.Join(want, " ") {
		t.Errorf("dry run would change:\n %v\nwant\n %v", wouldChange, want)
	}

	applied := run(t, srv, append(fixes, "--apply")...).expect(t, 0)
	changed := logged(applied, "")
	if strings.Join(changed, " ") != strings.Join(want, " ") {
		t.Errorf("applied to:\n %v\nwant\n %v", changed, want)
	}
	after := snapshot(t, rdb)
	var diff []string
	for k, v := range before {
		if w, ok := after[k]; !ok || w != v {
			diff = append(diff, k)
		}
	}
	sort.Strings(diff)
	if strings.Join(diff, " ") != strings.Join(want, " ") {
		t.Errorf("keys changed:\n %v\nwant\n %v", diff, want)
	}
	run(t, srv, "check", "--max-no-ttl", "0", "--max-stuck", "0", "--max-orphans", "0").expect(t, 0)
	// The expired orphaned deadline key was not deleted but held: it vanishes
	// within 1h, and is no longer fixable.
	if pttl := rdb.PTTL(context.Background(), "resque:job:gone:expiration").Val(); pttl <= 0 || pttl > time.Hour {
		t.Errorf("the fixed orphaned deadline key has TTL %v, want at most 1h", pttl)
	}
	var fixed acAudit
	run(t, srv, "audit", "--format", "json").expect(t, 0).decode(t, &fixed)
	if o := fixed.Deadlines.Orphans; o.Expired != 1 || o.Held != 1 || o.Fixable != 0 {
		t.Errorf("deadline orphans after the fix: %+v", o)
	}

	for _, args := range [][]string{
		{"audit", "--apply"},
		{"audit", "--skip", "bogus"},
		{"audit", "--fix-orphans", "--skip", "jobs"},
		{"audit", "--fix-stuck", "--skip", "families"},
		{"audit", "--max-keys", "-1"},
		{"audit", "--fix-ttl", "-1h"},
	} {
		if r := run(t, srv, args...); r.code != 2 {
			t.Errorf("%v: want exit 2, got %s", args, r)
		}
	}
}
