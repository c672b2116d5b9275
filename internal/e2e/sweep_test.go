package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/sample"
)

// sweepJSON is the part of `sweep --format json` these tests read.
type sweepJSON struct {
	DryRun      bool   `json:"dry_run"`
	Scanned     int64  `json:"scanned"`
	Expired     int64  `json:"expired"`
	Removed     int64  `json:"removed"`
	AlreadyGone int64  `json:"already_gone"`
	Changed     int64  `json:"changed"`
	Skipped     int64  `json:"skipped"`
	Destination string `json:"destination"`
	Queues      []struct {
		Queue   string `json:"queue"`
		Removed int64  `json:"removed"`
	} `json:"queues"`
	Delayed *struct {
		Removed int64 `json:"removed"`
	} `json:"delayed"`
	Stopped   string `json:"stopped"`
	Recovered int    `json:"recovered"`
}

// removalLogs returns "queue/id" of every log line with message msg.
func removalLogs(t *testing.T, r result, msg string) []string {
	t.Helper()
	var out []string
	for _, l := range r.logs(t) {
		if l["message"] == msg {
			out = append(out, fmt.Sprintf("%v/%v", l["queue"], l["id"]))
		}
	}
	sort.Strings(out)
	return out
}

// sweepSpec is the data the sweep tests remove from.
func sweepSpec() sample.Spec {
	return sample.Spec{Seed: 23, Now: time.Now(), Queues: []string{"mailers", "default"}, Jobs: 400,
		Expired: 0.4, Missing: 0.15, Unidentified: 0.05, Invalid: 0.05, ActiveJob: 0.4,
		MinPayload: 80, MaxPayload: 200, Delayed: 16}
}

// TestSweepDryRunThenReal: a dry run reports, job for job, what the real
// run then removes (the generator's expired jobs), and writes nothing.
func TestSweepDryRunThenReal(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	spec := sweepSpec()
	fill(t, rdb, spec)
	var want []string
	sample.Generate(spec, func(j sample.Job) {
		if j.State == "expired" {
			want = append(want, j.Queue+"/"+j.ID)
		}
	})
	sort.Strings(want)

	before := snapshot(t, rdb)
	dry := run(t, srv, "sweep", "--dry-run", "--format", "json", "--batch", "50").expect(t, 0)
	sameSnapshot(t, "sweep --dry-run", before, snapshot(t, rdb))
	var dryRes sweepJSON
	dry.decode(t, &dryRes)
	wouldRemove := removalLogs(t, dry, "would remove expired job")

	real := runEnv(t, nil, "", "--redis", srv.URL(), "sweep", "--yes", "--format", "json", "--batch", "50").expect(t, 0)
	var realRes sweepJSON
	real.decode(t, &realRes)
	removed := removalLogs(t, real, "removed expired job")

	if strings.Join(wouldRemove, " ") != strings.Join(removed, " ") {
		t.Errorf("dry run would remove %d jobs, the real run removed %d; they differ", len(wouldRemove), len(removed))
	}
	if strings.Join(removed, " ") != strings.Join(want, " ") {
		t.Errorf("removed %d jobs, %d were expired; they differ", len(removed), len(want))
	}
	if !dryRes.DryRun || realRes.DryRun || dryRes.Removed != realRes.Removed || dryRes.Scanned != realRes.Scanned ||
		realRes.Removed != int64(len(want)) || realRes.Destination != "deleted" || realRes.Stopped != "" {
		t.Errorf("dry %+v\nreal %+v", dryRes, realRes)
	}
	var after inspectJSON
	run(t, srv, "inspect", "--format", "json").expect(t, 0).decode(t, &after)
	if after.Totals.Expired != 0 || after.Totals.Jobs != int64(spec.Jobs+spec.Delayed-len(want)) {
		t.Errorf("after the sweep: %+v", after.Totals)
	}
}

// TestSweepNeverAsksWithoutTerminal: from cron (stdin not a terminal) the
// sweep does not ask, even without --yes and with "n" waiting on stdin.
func TestSweepNeverAsksWithoutTerminal(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	r := runEnv(t, nil, "n\n", "--redis", srv.URL(), "sweep", "--format", "json").expect(t, 0)
	var res sweepJSON
	r.decode(t, &res)
	if res.Removed == 0 || strings.Contains(r.stderr, "[y/N]") {
		t.Errorf("sweep asked or did nothing: %s", r)
	}
}

// TestSweepStdoutIsPureJSON: with --format json (after the subcommand)
// stdout is one JSON document and nothing else, whatever the logging;
// every log line goes to stderr.
func TestSweepStdoutIsPureJSON(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	for _, logArgs := range [][]string{
		{"--log-format", "json", "--log-level", "debug"},
		{"--log-format", "console"},
		{"--log-format", "json", "--quiet"},
	} {
		args := append([]string{"--redis", srv.URL(), "sweep", "--dry-run", "--format", "json"}, logArgs...)
		r := runEnv(t, nil, "", args...).expect(t, 0)
		var res sweepJSON
		r.decode(t, &res)
		if res.Removed == 0 || !res.DryRun {
			t.Errorf("%v: %+v", logArgs, res)
		}
		if logArgs[1] == "json" {
			logs := r.logs(t)
			if len(logArgs) == 4 && len(logs) == 0 {
				t.Errorf("%v: no logs on stderr", logArgs)
			}
			if logArgs[2] == "--quiet" && len(removalLogs(t, r, "would remove expired job")) != 0 {
				t.Errorf("--quiet still logs every job:\n%s", r.stderr)
			}
		} else if !strings.Contains(r.stderr, "would remove expired job") {
			t.Errorf("console logs missing from stderr:\n%s", r)
		}
	}
	// jsonl: one line; csv: a header row.
	r := run(t, srv, "sweep", "--dry-run", "--format", "jsonl").expect(t, 0)
	if lines := r.lines(); len(lines) != 1 || !json.Valid([]byte(lines[0])) {
		t.Errorf("jsonl output:\n%s", r.stdout)
	}
	r = run(t, srv, "sweep", "-o", "csv", "--dry-run").expect(t, 0)
	if lines := r.lines(); len(lines) < 2 || !strings.HasPrefix(lines[0], "queue,") {
		t.Errorf("csv output:\n%s", r.stdout)
	}
	// The real run's stdout too.
	r = run(t, srv, "sweep", "--format", "json", "--log-format", "json").expect(t, 0)
	var res sweepJSON
	r.decode(t, &res)
	if res.Removed == 0 || len(removalLogs(t, r, "removed expired job")) != int(res.Removed) {
		t.Errorf("real run: %+v, logs\n%s", res, r.stderr)
	}
}

// TestSweepArchiveAndRestore: the command-line round trip. sweep --archive
// writes a record per removed job; restore --dry-run writes nothing;
// restore puts them back once; restore again puts back nothing.
func TestSweepArchiveAndRestore(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	fill(t, rdb, sweepSpec())
	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	var res sweepJSON
	run(t, srv, "sweep", "--archive", archive, "--format", "json").expect(t, 0).decode(t, &res)
	if res.Removed == 0 || res.Destination != "archive "+archive {
		t.Fatalf("sweep: %+v", res)
	}
	if n := len(archiveIDs(t, archive)); n != int(res.Removed) {
		t.Errorf("archive has %d records, %d removed", n, res.Removed)
	}
	if st, err := os.Stat(archive); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v %v", st.Mode(), err)
	}

	type restoreJSON struct {
		DryRun          bool           `json:"dry_run"`
		Records         int            `json:"records"`
		Restored        int            `json:"restored"`
		AlreadyRestored int            `json:"already_restored"`
		Queues          map[string]int `json:"queues"`
	}
	before := snapshot(t, rdb)
	var dry restoreJSON
	run(t, srv, "restore", "--dry-run", archive, "--format", "json").expect(t, 0).decode(t, &dry)
	sameSnapshot(t, "restore --dry-run", before, snapshot(t, rdb))
	if !dry.DryRun || dry.Restored != int(res.Removed) {
		t.Errorf("restore --dry-run: %+v", dry)
	}
	var rr restoreJSON
	run(t, srv, "restore", archive, "--format", "json").expect(t, 0).decode(t, &rr)
	if rr.Restored != int(res.Removed) || rr.AlreadyRestored != 0 {
		t.Errorf("restore: %+v", rr)
	}
	var again restoreJSON
	run(t, srv, "restore", "--format", "json", archive).expect(t, 0).decode(t, &again)
	if again.Restored != 0 || again.AlreadyRestored != int(res.Removed) {
		t.Errorf("second restore: %+v", again)
	}
	// The restored jobs have no deadline: missing, and the next sweep leaves them.
	var after inspectJSON
	run(t, srv, "inspect", "--format", "json").expect(t, 0).decode(t, &after)
	if after.Totals.Expired != 0 {
		t.Errorf("after restore: %+v", after.Totals)
	}
}

// archiveIDs reads an archive file: the ids of its records, in order.
func archiveIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			ID      string `json:"id"`
			Payload string `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("archive line %d is not JSON: %v", len(ids)+1, err)
		}
		ids = append(ids, rec.ID)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestSweepKilled: a sweep killed with SIGKILL in the middle leaves no
// marker in the queue and a lock that expires by itself; a rerun with the
// same archive finishes the job, and the archive then holds every removed
// job — more than once only for records recovered from the journal — and
// nothing else. Restore puts each back once.
func TestSweepKilled(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	const n = 50000
	queue := defaultLayout.Queue("big")
	expired := map[string]bool{}
	var live []string
	pipe := rdb.Pipeline()
	pipe.SAdd(ctx, defaultLayout.Queues(), "big")
	now := time.Now().Unix()
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("big-%06d", i)
		p := fmt.Sprintf(`{"class":"BigJob","args":[%d,"padding-padding-padding"],"id":%q}`, i, id)
		pipe.RPush(ctx, queue, p)
		deadline := now + 3600
		if i%2 == 0 || i%7 == 0 {
			deadline = now - 3600
			expired[id] = true
		} else {
			live = append(live, p)
		}
		pipe.Set(ctx, defaultLayout.Expiration(id), deadline, 0)
		if pipe.Len() >= 5000 {
			if _, err := pipe.Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	args := []string{"--redis", srv.URL(), "sweep", "--archive", archive, "--batch", "100", "--lock-ttl", "1s",
		"--max-script-time", "1ms", "--log-level", "warn", "--format", "json"}
	// The in-place engine's crash safety (markers, journal): the copy
	// engine, which a 50,000-job queue with spread victims goes to at
	// once, has its own kill matrix (copy_kill_test.go).
	inPlace := []string{"RESQUE_EXPIRE_TEST_COPY_THRESHOLDS=1000000:1000000"}
	p := spawn(t, inPlace, args...)
	// Kill it once it has archived a few batches.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := os.Stat(archive); err == nil && st.Size() > 64<<10 {
			break
		}
		if p.exited() {
			t.Fatalf("the sweep finished before it could be killed: %s", p.res)
		}
		if time.Now().After(deadline) {
			t.Fatal("the sweep archived nothing in 30s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := p.wait(t)
	if killed.code != -1 {
		t.Fatalf("the sweep was not killed mid-run: %s", killed)
	}
	left := rdb.LLen(ctx, queue).Val()
	t.Logf("killed with %d of %d jobs left, %d records archived, %d in the journal",
		left, n, len(archiveIDs(t, archive)), rdb.LLen(ctx, defaultLayout.Journal()).Val())
	if left <= int64(len(live)) {
		t.Fatalf("the sweep was killed too late to test anything (%d jobs left)", left)
	}
	for _, v := range rdb.LRange(ctx, queue, 0, -1).Val() {
		if strings.HasPrefix(v, "\x00resque-expire:marker:") {
			t.Fatal("a marker was left in the queue")
		}
	}
	if pttl := rdb.PTTL(ctx, defaultLayout.Lock()).Val(); pttl > time.Second {
		t.Errorf("the dead run's lock lives %v, more than --lock-ttl", pttl)
	}
	waitUntil(t, 5*time.Second, "the dead run's lock to expire", func() bool {
		return rdb.Exists(ctx, defaultLayout.Lock()).Val() == 0
	})

	var res sweepJSON
	runEnv(t, inPlace, "", args...).expect(t, 0).decode(t, &res)
	if res.Stopped != "" {
		t.Errorf("rerun: %+v", res)
	}
	if got := rdb.LRange(ctx, queue, 0, -1).Val(); strings.Join(got, "\n") != strings.Join(live, "\n") {
		t.Errorf("after the rerun the queue holds %d jobs, want the %d live ones in order", len(got), len(live))
	}
	if rdb.Exists(ctx, defaultLayout.Journal(), defaultLayout.Lock()).Val() != 0 {
		t.Error("journal or lock left after the rerun")
	}

	counts := map[string]int{}
	for _, id := range archiveIDs(t, archive) {
		counts[id]++
	}
	dups := 0
	for id, c := range counts {
		if !expired[id] {
			t.Errorf("archive holds %s, which was not removed", id)
		}
		dups += c - 1
	}
	for id := range expired {
		if counts[id] == 0 {
			t.Errorf("removed job %s is not in the archive", id)
		}
	}
	if dups > res.Recovered {
		t.Errorf("%d records written twice, but only %d were recovered from the journal", dups, res.Recovered)
	}
	t.Logf("rerun removed %d, recovered %d; archive: %d records, %d duplicates", res.Removed, res.Recovered, len(counts)+dups, dups)

	// Restore puts each removed job back exactly once.
	type restoreJSON struct {
		Restored        int `json:"restored"`
		AlreadyRestored int `json:"already_restored"`
	}
	var rr restoreJSON
	run(t, srv, "--log-level", "warn", "restore", archive, "--format", "json").expect(t, 0).decode(t, &rr)
	if rr.Restored != len(expired) || rr.AlreadyRestored != dups {
		t.Errorf("restore: %+v, want %d restored, %d already", rr, len(expired), dups)
	}
	if got := rdb.LLen(ctx, queue).Val(); got != int64(n) {
		t.Errorf("after restore the queue holds %d jobs, want %d", got, n)
	}
}

// waitUntil polls cond every 10ms until it holds, failing after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
