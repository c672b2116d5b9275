package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/sample"
)

// TestSweepCopyEngine drives the copy engine through the binary, as the
// published write role (docs/acl.md), with its thresholds lowered by the
// test hook: both queues are copied and swapped, exactly the expired jobs go
// (archived once each), the summary names the engine, and no key of the
// copy is left.
func TestSweepCopyEngine(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := t.Context()
	st := fill(t, rdb, sample.Bench(6000, time.Now()))
	if err := rdb.Do(ctx, aclLine(t, "write", "pw-write")...).Err(); err != nil {
		t.Fatal(err)
	}
	url := "redis://resque-expire:pw-write@" + srv.Addr() + "/0"
	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	env := []string{"RESQUE_EXPIRE_TEST_COPY_THRESHOLDS=200:1000"}
	r := runEnv(t, env, "", "--redis", url, "--format", "json", "sweep", "--yes", "--archive", archive)
	r.expect(t, 0)
	var res struct {
		Removed int64 `json:"removed"`
		Queues  []struct {
			Queue  string `json:"queue"`
			Engine string `json:"engine"`
			Memory int64  `json:"copy_memory_bytes"`
		} `json:"queues"`
		Problems []struct{ Kind, Detail string } `json:"problems"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("summary: %v\n%s", err, r.stdout)
	}
	for _, q := range res.Queues {
		if q.Engine != "copy" || q.Memory <= 0 {
			t.Errorf("queue %s: engine %q, copy memory %d; want copy, > 0 (problems %v)", q.Queue, q.Engine, q.Memory, res.Problems)
		}
	}
	if want := int64(st.ByState["expired"]); res.Removed != want {
		t.Errorf("removed %d, want the %d expired", res.Removed, want)
	}
	b, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if n := int64(strings.Count(string(b), "\n")); n != res.Removed {
		t.Errorf("archive holds %d records, want %d", n, res.Removed)
	}
	if keys := rdb.Keys(ctx, "{*").Val(); len(keys) > 0 {
		t.Errorf("copy keys left: %v", keys)
	}
	again := runEnv(t, env, "", "--redis", url, "--format", "json", "sweep", "--dry-run")
	again.expect(t, 0)
	var dry struct {
		Removed int64 `json:"removed"`
	}
	if err := json.Unmarshal([]byte(again.stdout), &dry); err != nil || dry.Removed != 0 {
		t.Errorf("a dry run after the sweep would remove %d more (%v)", dry.Removed, err)
	}
}
