package audit

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

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/scripts"
)

var (
	fxLonerOK     = "resque:loners:queue:default:job:" + auditMD5(`{"class":"A","args":[1]}`)
	fxLonerOrphan = "resque:loners:queue:default:job:" + auditMD5(`{"class":"Gone","args":[]}`)
	fxLonerTTL    = "resque:loners:queue:default:job:" + auditMD5(`{"class":"Gone","args":[2]}`)
)

// fxSeed writes idempotency keys, a job and its deadline, orphaned deadline
// keys and loner markers, some rotten and some not.
func fxSeed(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	auditSet(t, rdb, "email_sent:1", "true", auditWeek)
	auditSet(t, rdb, "email_sent:2", "true", 0)       // no TTL
	auditDo(t, rdb, "HSET", "email_sent:3", "f", "v") // wrong type, no TTL
	auditSet(t, rdb, "payment:a", "completed", auditWeek)
	auditSet(t, rdb, "payment:b", "in_progress", 0)                     // stuck, no TTL
	auditSet(t, rdb, "payment:c", "in_progress", auditWeek-2*time.Hour) // stuck, 2h old
	auditSet(t, rdb, "payment:d", "in_progress", auditWeek-time.Minute) // not stuck
	auditSet(t, rdb, "payment:e", "unexpected", 0)                      // no TTL
	past, future := strconv.FormatInt(auditNow.Add(-time.Hour).Unix(), 10), strconv.FormatInt(auditNow.Add(time.Hour).Unix(), 10)
	redistest.Seed(t, rdb, resque.MustLayout("resque", "")).
		Enqueue("default", redistest.Job{Payload: `{"class":"A","args":[1],"id":"j1"}`, ID: "j1", Deadline: future}).
		Deadline("gone1", past).  // orphan, expired
		Deadline("gone2", future) // orphan, live
	auditSet(t, rdb, fxLonerOK, "1", 0)
	auditSet(t, rdb, fxLonerOrphan, "1", 0)      // orphan, no TTL
	auditSet(t, rdb, fxLonerTTL, "1", time.Hour) // orphan that clears itself
}

func fxAudit() Options {
	return Options{Families: DefaultFamilies(), Jobs: true, Deadlines: true, Loners: true, ScanCount: 3}
}

// fxKey is one key as dumped: type, serialized value, TTL.
type fxKey struct {
	typ, dump string
	ttl       time.Duration // -1 none
}

func fxDump(t *testing.T, rdb redis.UniversalClient) map[string]fxKey {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]fxKey{}
	for _, k := range keys {
		out[k] = fxKey{typ: rdb.Type(ctx, k).Val(), dump: rdb.Dump(ctx, k).Val(), ttl: rdb.PTTL(ctx, k).Val()}
	}
	return out
}

// fxChanged lists the keys whose type, value or TTL changed (a TTL only
// counts as changed if it was set, dropped or moved by more than 10s).
func fxChanged(before, after map[string]fxKey) []string {
	var out []string
	for k, b := range before {
		a, ok := after[k]
		switch {
		case !ok, a.typ != b.typ, a.dump != b.dump, (a.ttl < 0) != (b.ttl < 0), (a.ttl - b.ttl).Abs() > 10*time.Second:
			out = append(out, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func fxFix(t *testing.T, rdb redis.UniversalClient, opts FixOptions) (*FixResult, []FixAction) {
	t.Helper()
	var acts []FixAction
	opts.Audit = fxAudit()
	opts.OnAction = func(a FixAction) { acts = append(acts, a) }
	res, err := Fix(context.Background(), auditScanner(t, rdb, 2), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res, acts
}

// Without Apply, every fix is reported for exactly the keys the audit
// counted, and nothing in Redis changes.
func TestFixDryRunChangesNothing(t *testing.T) {
	rdb := redistest.Client(t, redistest.Start(t))
	fxSeed(t, rdb)
	before := fxDump(t, rdb)

	res, acts := fxFix(t, rdb, FixOptions{TTL: time.Hour})
	if a := res.Audit; a.NoTTL() != 4 || res.TTL.Candidates != 4 || len(acts) != 4 || res.TTL.Done != 0 || !res.DryRun {
		t.Errorf("ttl: audit says %d without TTL, fix %+v, %d actions", a.NoTTL(), *res.TTL, len(acts))
	}
	res, acts = fxFix(t, rdb, FixOptions{Stuck: true})
	if a := res.Audit; a.Stuck() != 2 || res.Stuck.Candidates != 2 || len(acts) != 2 {
		t.Errorf("stuck: audit says %d, fix %+v", a.Stuck(), *res.Stuck)
	}
	res, acts = fxFix(t, rdb, FixOptions{Orphans: true})
	if a := res.Audit; a.Orphans() != 2 || res.LonerOrphans.Candidates != 1 || res.DeadlineOrphans.Candidates != 1 || len(acts) != 2 {
		t.Errorf("orphans: audit says %d, fix %+v %+v", a.Orphans(), *res.LonerOrphans, *res.DeadlineOrphans)
	}
	res, acts = fxFix(t, rdb, FixOptions{TTL: time.Hour, Stuck: true, Orphans: true})
	for _, a := range acts {
		if a.Outcome != OutcomeWould {
			t.Errorf("dry run: %+v", a)
		}
	}
	// payment:b is stuck without TTL: deleted rather than given a TTL.
	if res.TTL.Candidates != 3 || res.Stuck.Candidates != 2 || len(acts) != 7 {
		t.Errorf("all: ttl %+v stuck %+v, %d actions", *res.TTL, *res.Stuck, len(acts))
	}
	if changed := fxChanged(before, fxDump(t, rdb)); len(changed) != 0 {
		t.Errorf("a dry run changed %v", changed)
	}
}

// With Apply, exactly the keys reported change, each as reported.
func TestFixApplyChangesExactlyTheReportedKeys(t *testing.T) {
	rdb := redistest.Client(t, redistest.Start(t))
	fxSeed(t, rdb)
	before := fxDump(t, rdb)
	res, acts := fxFix(t, rdb, FixOptions{TTL: time.Hour, Stuck: true, Orphans: true, Apply: true})
	after := fxDump(t, rdb)

	var reported []string
	got := map[string]string{}
	for _, a := range acts {
		if a.Outcome != OutcomeDone {
			t.Errorf("not done: %+v", a)
		}
		reported = append(reported, a.Key)
		got[a.Key] = a.Action
	}
	sort.Strings(reported)
	if changed := fxChanged(before, after); strings.Join(changed, " ") != strings.Join(reported, " ") {
		t.Errorf("changed keys:\n %v\nreported:\n %v", changed, reported)
	}
	want := map[string]string{
		"email_sent:2": ActionExpire, "email_sent:3": ActionExpire, "payment:e": ActionExpire,
		"payment:b": ActionDeleteStuck, "payment:c": ActionDeleteStuck,
		"resque:job:gone1:expiration": ActionExpireDeadline, fxLonerOrphan: ActionDeleteLoner,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("actions:\n got %v\nwant %v", got, want)
	}
	for k, act := range want {
		a, ok := after[k]
		switch {
		case (act == ActionExpire || act == ActionExpireDeadline) && (!ok || a.ttl <= 59*time.Minute || a.ttl > time.Hour):
			t.Errorf("%s: TTL %v, want 1h", k, a.ttl)
		case act == ActionExpireDeadline && a.dump != before[k].dump:
			t.Errorf("%s: value changed", k)
		case act != ActionExpire && act != ActionExpireDeadline && ok:
			t.Errorf("%s not deleted", k)
		}
	}
	if res.TTL.Done != 3 || res.Stuck.Done != 2 || res.LonerOrphans.Done != 1 || res.DeadlineOrphans.Done != 1 || res.DryRun {
		t.Errorf("counts: %+v %+v %+v %+v", *res.TTL, *res.Stuck, *res.LonerOrphans, *res.DeadlineOrphans)
	}

	// A second audit finds nothing left to fix.
	rep, err := Run(context.Background(), auditScanner(t, rdb, 2), fxAudit())
	if err != nil {
		t.Fatal(err)
	}
	if rep.NoTTL() != 0 || rep.Stuck() != 0 || rep.Orphans() != 0 {
		t.Errorf("after the fix: no TTL %d, stuck %d, orphans %d", rep.NoTTL(), rep.Stuck(), rep.Orphans())
	}
}

// A key written again between the audit and the fix is kept.
func TestFixKeepsKeysChangedSinceJudged(t *testing.T) {
	rdb := redistest.Client(t, redistest.Start(t))
	ctx := context.Background()
	if err := LoadScripts(ctx, rdb); err != nil {
		t.Fatal(err)
	}
	// Judged: in_progress, no TTL; now, each has moved on.
	auditSet(t, rdb, "p:value", "completed", 0)
	auditSet(t, rdb, "p:ttl", "in_progress", auditWeek)
	// Judged with 1h left; renewed since.
	auditSet(t, rdb, "p:renewed", "in_progress", auditWeek)
	// Judged with 1h left; still so: deleted.
	auditSet(t, rdb, "p:old", "in_progress", time.Hour-time.Second)
	// An orphaned marker given a TTL since; a deadline key rewritten.
	auditSet(t, rdb, "m:ttl", "1", time.Hour)
	auditSet(t, rdb, "d:value", "2000000000", 0)
	// A key given a TTL by someone else.
	auditSet(t, rdb, "k:ttl", "true", time.Minute)

	stuck := func(key string, ttl time.Duration) Finding {
		return Finding{Kind: KindKeys, Key: key, Type: "string", Value: "in_progress", HasValue: true,
			TTL: ttl, NoTTL: ttl < 0, Stuck: true}
	}
	fs := []Finding{
		stuck("p:value", -1), stuck("p:ttl", -1), stuck("p:renewed", time.Hour), stuck("p:old", time.Hour), stuck("p:gone", -1),
		{Kind: KindLoners, Key: "m:ttl", Type: "string", Value: "1", HasValue: true, TTL: -1, NoTTL: true, Orphan: true},
		{Kind: KindDeadlines, Key: "d:value", Type: "string", Value: "1000000000", HasValue: true, TTL: -1, NoTTL: true, Orphan: true, Expired: true},
		{Kind: KindKeys, Key: "k:ttl", Type: "string", Value: "true", HasValue: true, TTL: -1, NoTTL: true},
		{Kind: KindKeys, Key: "k:gone", Type: "string", Value: "true", HasValue: true, TTL: -1, NoTTL: true},
	}
	got := map[string]string{}
	r := &repairer{rdb: rdb, opts: FixOptions{TTL: time.Hour, Stuck: true, Orphans: true, Apply: true,
		OnAction: func(a FixAction) { got[a.Key] = a.Outcome }},
		res: &FixResult{TTL: &FixCount{}, Stuck: &FixCount{}, LonerOrphans: &FixCount{}, DeadlineOrphans: &FixCount{}}}
	// The script cache was flushed since the run loaded it: still works.
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := r.handle(ctx, fs); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"p:value": OutcomeChanged, "p:ttl": OutcomeChanged, "p:renewed": OutcomeChanged, "p:old": OutcomeDone, "p:gone": OutcomeGone,
		"m:ttl": OutcomeChanged, "d:value": OutcomeChanged, "k:ttl": OutcomeChanged, "k:gone": OutcomeGone,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("outcomes:\n got %v\nwant %v", got, want)
	}
	if n := rdb.Exists(ctx, "p:value", "p:ttl", "p:renewed", "m:ttl", "d:value", "k:ttl").Val(); n != 6 {
		t.Errorf("%d of 6 changed keys kept", n)
	}
	if rdb.Exists(ctx, "p:old").Val() != 0 || rdb.Exists(ctx, "k:gone").Val() != 0 {
		t.Error("p:old kept, or k:gone created")
	}
	if ttl := rdb.PTTL(ctx, "k:ttl").Val(); ttl > time.Minute {
		t.Errorf("k:ttl's own TTL replaced: %v", ttl)
	}
}

// On a replica a dry run works and Apply fails with ErrReadOnly, writing
// nothing.
func TestFixOnReplica(t *testing.T) {
	master := redistest.Start(t)
	rdb := redistest.Client(t, master)
	ctx := context.Background()
	fxSeed(t, rdb)
	if err := rdb.ConfigSet(ctx, "repl-diskless-sync-delay", "0").Err(); err != nil {
		t.Fatal(err)
	}
	replica := redistest.Client(t, fxReplica(t, master))
	deadline := time.Now().Add(10 * time.Second)
	for replica.DBSize(ctx).Val() != rdb.DBSize(ctx).Val() || !strings.Contains(replica.Info(ctx, "replication").Val(), "master_link_status:up") {
		if time.Now().After(deadline) {
			t.Fatal("the replica did not sync")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := fxDump(t, rdb)
	res, acts := fxFix(t, replica, FixOptions{TTL: time.Hour, Stuck: true, Orphans: true})
	if len(acts) != 7 || res.Audit.Orphans() != 2 {
		t.Errorf("dry run on a replica: %d actions", len(acts))
	}
	opts := FixOptions{Audit: fxAudit(), Stuck: true, Apply: true}
	if _, err := Fix(ctx, auditScanner(t, replica, 2), opts); !errors.Is(err, scripts.ErrReadOnly) {
		t.Errorf("apply on a replica: %v, want ErrReadOnly", err)
	}
	if changed := fxChanged(before, fxDump(t, rdb)); len(changed) != 0 {
		t.Errorf("changed on the master: %v", changed)
	}
}

func fxReplica(t *testing.T, master *redisserver.Server) *redisserver.Server {
	return redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
}

func TestFixOptionErrors(t *testing.T) {
	rdb := redistest.Client(t, redistest.Start(t))
	s := auditScanner(t, rdb, 2)
	for _, o := range []FixOptions{
		{Audit: fxAudit()},
		{Audit: fxAudit(), TTL: -time.Second},
		{Audit: Options{Deadlines: true}, Orphans: true},
	} {
		if _, err := Fix(context.Background(), s, o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
