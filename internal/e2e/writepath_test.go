package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// wpSeed queues n jobs on "mail", every other one expired an hour ago by
// Redis's clock and the others due in 30 minutes; it returns the ids of
// the live ones.
func wpSeed(t *testing.T, rdb *redis.Client, n int) (live []string) {
	t.Helper()
	ctx := t.Context()
	now := rdb.Time(ctx).Val()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("wp%03d", i)
		deadline := now.Add(30 * time.Minute)
		if i%2 == 0 {
			deadline = now.Add(-time.Hour)
		} else {
			live = append(live, id)
		}
		rdb.SAdd(ctx, defaultLayout.Queues(), "mail")
		rdb.RPush(ctx, defaultLayout.Queue("mail"), fmt.Sprintf(`{"class":"Mailer","args":[],"id":%q}`, id))
		rdb.Set(ctx, defaultLayout.Expiration(id), resque.FormatDeadline(deadline), 0)
	}
	return live
}

// TestHostClockAheadRemovesNoLiveJob: a host whose clock runs an hour ahead
// still judges by Redis's clock: nothing live goes, and the skew is reported
// in the JSON summary and warned about on stderr.
func TestHostClockAheadRemovesNoLiveJob(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	live := wpSeed(t, rdb, 20)
	env := []string{"RESQUE_EXPIRE_TEST_HOST_CLOCK_OFFSET=1h"}
	r := runEnv(t, env, "", "--redis", srv.URL(), "--format", "json", "sweep", "--yes")
	r.expect(t, 0)
	var out struct {
		Removed   int64    `json:"removed"`
		ClockSkew *float64 `json:"clock_skew_seconds"`
	}
	r.decode(t, &out)
	if out.Removed != 10 {
		t.Errorf("removed %d, want the 10 expired", out.Removed)
	}
	if out.ClockSkew == nil || *out.ClockSkew > -3590 || *out.ClockSkew < -3610 {
		t.Errorf("clock_skew_seconds %v, want about -3600", out.ClockSkew)
	}
	if !strings.Contains(r.stderr, "clock") {
		t.Errorf("no warning about the clock on stderr:\n%s", r.stderr)
	}
	left := rdb.LRange(t.Context(), defaultLayout.Queue("mail"), 0, -1).Val()
	if len(left) != len(live) {
		t.Fatalf("%d jobs left, want the %d live ones", len(left), len(live))
	}
	for i, p := range left {
		if !strings.Contains(p, live[i]) {
			t.Errorf("job %d left is %s, want %s", i, p, live[i])
		}
	}
	insp := runEnv(t, env, "", "--redis", srv.URL(), "--format", "json", "inspect")
	insp.expect(t, 0)
	var sum struct {
		Totals struct {
			Expired int64 `json:"expired"`
			Live    int64 `json:"live"`
		} `json:"totals"`
	}
	insp.decode(t, &sum)
	if sum.Totals.Expired != 0 || sum.Totals.Live != 10 {
		t.Errorf("inspect after: expired %d live %d, want 0 and 10 (judged by Redis's clock)", sum.Totals.Expired, sum.Totals.Live)
	}
}

// TestSweepWithoutAPermissionChangesNothing: a user lacking one command a
// sweep needs: exit 1, one line naming it, and the database as it was.
func TestSweepWithoutAPermissionChangesNothing(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"lrem", "lset", "del", "rpush", "hset"} {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			rdb := redistest.Client(t, srv)
			wpSeed(t, rdb, 10)
			if err := rdb.Do(t.Context(), "ACL", "SETUSER", "t", "on", ">pw", "~*", "+@all", "-"+cmd).Err(); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, rdb)
			url := "redis://t:pw@" + srv.Addr() + "/0"
			r := runEnv(t, nil, "", "--redis", url, "sweep", "--yes", "--to-failed")
			r.expect(t, 1)
			if !strings.Contains(r.stderr, strings.ToUpper(cmd)) || strings.Contains(r.stderr, "pw@") {
				t.Errorf("stderr does not name %s (or shows the password):\n%s", strings.ToUpper(cmd), r.stderr)
			}
			sameSnapshot(t, "a sweep refused for a missing permission", before, snapshot(t, rdb))
		})
	}
}
