package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// TestRestoreWithoutRPush: a user who may not RPUSH gets a restore that
// fails naming RPUSH and changes nothing at all (not even a marker); the
// default user then restores every job.
func TestRestoreWithoutRPush(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	l := defaultLayout
	var jobs []string
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("acl-%d", i)
		p := fmt.Sprintf(`{"class":"Mail","args":[%d],"id":%q}`, i, id)
		jobs = append(jobs, p)
		rdb.SAdd(ctx, l.Queues(), "mailers")
		rdb.RPush(ctx, l.Queue("mailers"), p)
		rdb.Set(ctx, l.Expiration(id), fmt.Sprint(time.Now().Add(-time.Hour).Unix()), 0)
	}
	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	run(t, srv, "sweep", "--yes", "--archive", archive).expect(t, 0)
	if err := rdb.Do(ctx, "ACL", "SETUSER", "t", "on", ">pw", "~*", "+@all", "-rpush").Err(); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, rdb)
	url := fmt.Sprintf("redis://t:pw@%s/0", srv.Addr())
	r := runEnv(t, []string{"REDIS_URL=" + url}, "", "restore", archive)
	if r.code == 0 || !strings.Contains(r.stderr, "RPUSH") || !strings.Contains(r.stderr, "nothing was changed") {
		t.Errorf("restore as a user without RPUSH: want a failure naming RPUSH, got %s", r)
	}
	sameSnapshot(t, "restore without RPUSH", before, snapshot(t, rdb))

	var rr struct {
		Restored        int `json:"restored"`
		AlreadyRestored int `json:"already_restored"`
	}
	run(t, srv, "restore", "--format", "json", archive).expect(t, 0).decode(t, &rr)
	if rr.Restored != 3 || rr.AlreadyRestored != 0 {
		t.Errorf("restore as the default user: %+v, want 3 restored", rr)
	}
	if got := rdb.LRange(ctx, l.Queue("mailers"), 0, -1).Val(); strings.Join(got, "\n") != strings.Join(jobs, "\n") {
		t.Errorf("mailers after restore: %q", got)
	}
}

// TestRestoreOtherNamespace: an archive swept from namespace other is not
// pushed into resque:* queues unless the target is named with
// --to-namespace; refused, nothing changes.
func TestRestoreOtherNamespace(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	other := resque.MustLayout("other", "")
	job := `{"class":"Mail","args":[],"id":"ns-1"}`
	rdb.SAdd(ctx, other.Queues(), "mailers")
	rdb.RPush(ctx, other.Queue("mailers"), job)
	rdb.Set(ctx, other.Expiration("ns-1"), fmt.Sprint(time.Now().Add(-time.Hour).Unix()), 0)
	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	run(t, srv, "--namespace", "other", "sweep", "--yes", "--archive", archive).expect(t, 0)

	before := snapshot(t, rdb)
	for _, args := range [][]string{{"restore", archive}, {"restore", "--dry-run", archive}, {"--namespace", "resque", "restore", archive}} {
		r := run(t, srv, args...).expect(t, 2)
		if !strings.Contains(r.stderr, `"other"`) || !strings.Contains(r.stderr, "--to-namespace") {
			t.Errorf("%v: the error should name the archive's namespace and the flag:\n%s", args, r.stderr)
		}
	}
	sameSnapshot(t, "a refused restore", before, snapshot(t, rdb))

	run(t, srv, "restore", "--to-namespace", "resque", archive).expect(t, 0)
	if got := rdb.LRange(ctx, defaultLayout.Queue("mailers"), 0, -1).Val(); len(got) != 1 || got[0] != job {
		t.Errorf("resque:queue:mailers after --to-namespace resque: %q", got)
	}
	if !rdb.SIsMember(ctx, defaultLayout.Queues(), "mailers").Val() || rdb.Exists(ctx, other.Queue("mailers")).Val() != 0 {
		t.Error("the job went to the wrong namespace")
	}
	// Into its own namespace it needs no flag.
	run(t, srv, "--namespace", "other", "restore", archive).expect(t, 0)
	if got := rdb.LRange(ctx, other.Queue("mailers"), 0, -1).Val(); len(got) != 1 || got[0] != job {
		t.Errorf("other:queue:mailers after restore --namespace other: %q", got)
	}
}
