package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// TestFailedListEndToEnd: the binary on failure entries of both backends,
// those --to-failed writes and those Resque writes: inspect's failed
// object, list --source failed, check --max-expired-failures, sweep
// --failed (dry run, then for real with an archive) and restore.
func TestFailedListEndToEnd(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := t.Context()
	l := resque.MustLayout("resque", "")
	now := time.Now()
	// Two expired jobs, moved onto the failed list by the tool itself.
	for _, id := range []string{"moved1", "moved2"} {
		rdb.SAdd(ctx, l.Queues(), "mailers")
		rdb.RPush(ctx, l.Queue("mailers"), fmt.Sprintf(`{"class":"Mail","args":[],"id":%q}`, id))
		rdb.Set(ctx, l.Expiration(id), strconv.FormatInt(now.Add(-time.Hour).Unix(), 10), 0)
	}
	run(t, srv, "sweep", "--yes", "--to-failed").expect(t, 0)
	// Resque's own entries: default backend and multi-queue backend.
	entry := func(id, queue string) string {
		return fmt.Sprintf(`{"failed_at":"2026/01/01 10:00:00 UTC","payload":{"class":"Billing","args":[],"id":%q},"exception":"RuntimeError","error":"boom","backtrace":[],"worker":"h:1:%s","queue":%q}`, id, queue, queue)
	}
	rdb.RPush(ctx, l.Failed(), entry("old", "billing"), entry("fresh", "billing"))
	rdb.SAdd(ctx, l.FailedQueues(), "sms_failed")
	rdb.RPush(ctx, l.FailedList("sms_failed"), entry("smsold", "sms"), entry("smsfresh", "sms"))
	for id, d := range map[string]time.Duration{"old": -time.Hour, "fresh": time.Hour, "smsold": -time.Minute, "smsfresh": time.Hour} {
		rdb.Set(ctx, l.Expiration(id), strconv.FormatInt(now.Add(d).Unix(), 10), 0)
	}

	var sum struct {
		Failed struct {
			Entries, Expired, Live int64
			Lists                  []struct{ Name string }
			ByQueue                map[string]struct{ Expired int64 } `json:"by_queue"`
		} `json:"failed"`
	}
	run(t, srv, "inspect", "--format", "json").expect(t, 0).decode(t, &sum)
	if sum.Failed.Entries != 6 || sum.Failed.Expired != 4 || sum.Failed.Live != 2 || len(sum.Failed.Lists) != 2 || sum.Failed.ByQueue["sms"].Expired != 1 {
		t.Fatalf("inspect's failed object: %+v", sum.Failed)
	}
	if r := run(t, srv, "inspect"); !strings.Contains(r.stdout, "(failed: 2 lists)") {
		t.Errorf("inspect's table has no failed row:\n%s", r.stdout)
	}
	var ids []string
	for _, line := range run(t, srv, "list", "--source", "failed", "--state", "expired", "--format", "jsonl").expect(t, 0).lines() {
		var row struct{ ID, Exception, FailedAt, List string }
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, row.ID)
	}
	if want := []string{"moved1", "moved2", "old", "smsold"}; !slices.Equal(ids, want) {
		t.Errorf("list --source failed --state expired: %v, want %v", ids, want)
	}
	run(t, srv, "list", "--source", "failed", "--source", "queues").expect(t, 2)
	run(t, srv, "check", "--max-expired-failures", "3").expect(t, 3)
	run(t, srv, "check", "--max-expired-failures", "4").expect(t, 0)
	run(t, srv, "sweep", "--failed", "--to-failed").expect(t, 2)
	run(t, srv, "sweep", "--only", "failed").expect(t, 2)

	before := snapshot(t, rdb)
	run(t, srv, "sweep", "--failed", "--dry-run").expect(t, 0)
	sameSnapshot(t, "sweep --failed --dry-run", before, snapshot(t, rdb))

	archive := filepath.Join(t.TempDir(), "failed.jsonl")
	var res struct {
		Removed int64
		Failed  struct{ Removed int64 }
	}
	run(t, srv, "--format", "json", "sweep", "--yes", "--failed", "--only", "failed", "--archive", archive).expect(t, 0).decode(t, &res)
	if res.Removed != 4 || res.Failed.Removed != 4 {
		t.Fatalf("sweep --failed: %+v", res)
	}
	if got := rdb.LRange(ctx, l.Failed(), 0, -1).Val(); !slices.Equal(got, []string{entry("fresh", "billing")}) {
		t.Errorf("failed list after the sweep: %q", got)
	}
	if got := rdb.LRange(ctx, l.FailedList("sms_failed"), 0, -1).Val(); !slices.Equal(got, []string{entry("smsfresh", "sms")}) {
		t.Errorf("sms_failed after the sweep: %q", got)
	}
	run(t, srv, "check", "--max-expired-failures", "0").expect(t, 0)
	run(t, srv, "restore", archive).expect(t, 0)
	if n := rdb.LLen(ctx, l.Failed()).Val() + rdb.LLen(ctx, l.FailedList("sms_failed")).Val(); n != 6 {
		t.Errorf("%d entries after restore, want 6", n)
	}
	if got := rdb.LRange(ctx, l.FailedList("sms_failed"), 0, -1).Val(); !slices.Contains(got, entry("smsold", "sms")) {
		t.Errorf("smsold not restored onto sms_failed: %q", got)
	}
}
