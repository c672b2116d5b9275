package e2e

// SIGKILL through the binary while the copy engine (its thresholds lowered
// by RESQUE_EXPIRE_TEST_COPY_THRESHOLDS) sweeps a deep queue that a worker
// pops and a producer pushes: mid-copy, just after the cutover, and mid-drain,
// with plain removal, --archive and --to-failed. After the reruns the queue
// must be exactly what the traffic and the deadlines leave, every removed job
// archived or failed once, and nothing of the copy left behind.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// ckEnv sends queues of more than 1000 jobs with a victim deeper than 200
// to the copy engine.
var ckEnv = []string{"RESQUE_EXPIRE_TEST_COPY_THRESHOLDS=200:1000"}

const ckQueue = "ckdeep"

// ckTraffic is a worker popping the queue's head and a producer pushing
// jobs (every other one expired) at its tail, in the background.
type ckTraffic struct {
	rdb    *redis.Client
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	popped map[string]bool
	pushed []string // payloads in push order
	exp    map[string]bool
	errs   []error
}

func ckStart(rdb *redis.Client, exp map[string]bool) *ckTraffic {
	tr := &ckTraffic{rdb: rdb, stop: make(chan struct{}), popped: map[string]bool{}, exp: exp}
	ctx := context.Background()
	key := defaultLayout.Queue(ckQueue)
	tr.wg.Add(2)
	go func() {
		defer tr.wg.Done()
		for {
			select {
			case <-tr.stop:
				return
			default:
			}
			v, err := rdb.LPop(ctx, key).Result()
			tr.mu.Lock()
			switch {
			case err == nil:
				if tr.popped[v] {
					tr.errs = append(tr.errs, fmt.Errorf("popped twice: %s", v))
				}
				tr.popped[v] = true
			case err != redis.Nil:
				tr.errs = append(tr.errs, err)
			}
			tr.mu.Unlock()
			time.Sleep(400 * time.Microsecond)
		}
	}()
	go func() {
		defer tr.wg.Done()
		now := time.Now().Unix()
		for i := 0; ; i++ {
			select {
			case <-tr.stop:
				return
			default:
			}
			id := fmt.Sprintf("pushed-%06d", i)
			p := fmt.Sprintf(`{"class":"CopyKillJob","args":[%d,"pushed"],"id":%q}`, i, id)
			deadline := now + 7200
			if i%2 == 0 {
				deadline = now - 7200
			}
			_, err := rdb.TxPipelined(ctx, func(pl redis.Pipeliner) error {
				pl.Set(ctx, defaultLayout.Expiration(id), strconv.FormatInt(deadline, 10), 0)
				pl.RPush(ctx, key, p)
				return nil
			})
			tr.mu.Lock()
			if err != nil {
				tr.errs = append(tr.errs, err)
			} else {
				tr.pushed = append(tr.pushed, p)
				tr.exp[id] = i%2 == 0
			}
			tr.mu.Unlock()
			time.Sleep(300 * time.Microsecond)
		}
	}()
	return tr
}

func (tr *ckTraffic) halt(t *testing.T) {
	t.Helper()
	close(tr.stop)
	tr.wg.Wait()
	for _, err := range tr.errs {
		t.Errorf("traffic: %v", err)
	}
}

// ckSweepJSON is the part of the summary read here.
type ckSweepJSON struct {
	Removed         int64 `json:"removed"`
	RecoveredCopies int   `json:"recovered_copies"`
}

// ckPhase reads what a copy of the queue has in Redis now: the keys of
// copies registered, by kind, with their lengths.
func ckPhase(ctx context.Context, rdb *redis.Client) map[string]int64 {
	out := map[string]int64{}
	reg := strings.TrimSuffix(defaultLayout.Stats(), "stats") + "copies"
	for _, m := range rdb.SMembers(ctx, reg).Val() {
		token, list, ok := strings.Cut(m, ":")
		if !ok {
			continue
		}
		for _, kind := range []string{"copy", "stage", "committed", "committed-journal", "committed-failures"} {
			k := "{" + list + "}:resque-expire:" + kind + ":" + token
			if n := rdb.LLen(ctx, k).Val(); n > 0 {
				out[kind] += n
			}
		}
	}
	return out
}

// ckFailed counts the failure entries in the failed list by job id.
func ckFailed(t *testing.T, rdb *redis.Client) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, e := range rdb.LRange(context.Background(), defaultLayout.Failed(), 0, -1).Val() {
		var f struct {
			Payload struct {
				ID string `json:"id"`
			} `json:"payload"`
		}
		if err := json.Unmarshal([]byte(e), &f); err != nil || f.Payload.ID == "" {
			t.Errorf("failure entry does not parse: %v: %q", err, e)
			continue
		}
		out[f.Payload.ID]++
	}
	return out
}

// TestCopyKillMatrix: see the file's comment.
func TestCopyKillMatrix(t *testing.T) {
	t.Parallel()
	points := []struct {
		name string
		// due says, from the copy's keys in Redis and the output so far,
		// that the run is where it is to be killed.
		due func(ph map[string]int64, drained bool) bool
	}{
		{"mid-copy", func(ph map[string]int64, _ bool) bool { return ph["copy"] >= 4000 }},
		{"after cutover", func(ph map[string]int64, _ bool) bool {
			return ph["committed"]+ph["committed-journal"]+ph["committed-failures"] > 0
		}},
		{"mid-drain", func(ph map[string]int64, drained bool) bool {
			return drained && ph["committed"] > 0
		}},
	}
	modes := []string{"plain", "archive", "to-failed"}
	for _, mode := range modes {
		for _, pt := range points {
			t.Run(mode+"/"+pt.name, func(t *testing.T) {
				t.Parallel()
				ckOne(t, mode, pt.due)
			})
		}
	}
}

func ckOne(t *testing.T, mode string, due func(map[string]int64, bool) bool) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	const n = 12000
	now := time.Now().Unix()
	exp := map[string]bool{} // by id; the producer adds its own
	var jobs []redistest.Job
	var original []string
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("ck-%06d", i)
		p := fmt.Sprintf(`{"class":"CopyKillJob","args":[%d,"padding-padding-padding"],"id":%q}`, i, id)
		e := (i*7+i/3)%13 < 6
		d := now + 7200
		if e {
			d = now - 7200
		}
		exp[id] = e
		jobs = append(jobs, redistest.Job{Payload: p, ID: id, Deadline: strconv.FormatInt(d, 10)})
		original = append(original, p)
	}
	redistest.Seed(t, rdb, defaultLayout).Enqueue(ckQueue, jobs...)

	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	args := []string{"--redis", srv.URL(), "--format", "json", "--log-level", "warn",
		"sweep", "--yes", "--lock-ttl", "1s", "--batch", "200"}
	switch mode {
	case "archive":
		args = append(args, "--archive", archive)
	case "to-failed":
		args = append(args, "--to-failed")
	}

	tr := ckStart(rdb, exp)
	p := spawn(t, ckEnv, args...)
	// drained: the drain has begun (the archive file, the failed list or
	// the deadline keys' staged entries show it).
	var stage0 int64
	killed, sawCopy := false, false
	var at map[string]int64
	deadline := time.Now().Add(20 * time.Second)
	for !killed && !p.exited() && time.Now().Before(deadline) {
		ph := ckPhase(ctx, rdb)
		if ph["copy"] > 0 {
			sawCopy = true
		}
		if stage0 == 0 {
			stage0 = ph["committed"]
		}
		drained := false
		switch mode {
		case "archive":
			st, err := os.Stat(archive)
			drained = err == nil && st.Size() > 0
		case "to-failed":
			drained = rdb.LLen(ctx, defaultLayout.Failed()).Val() > 0
		default:
			drained = stage0 > 0 && ph["committed"] < stage0
		}
		if due(ph, drained) {
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed, at = true, ph
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	r := p.wait(t)
	fltNoCrash(t, r)
	// What the dead run left: the signal lands some time after the
	// observation, and a drain round trip can finish the last thousand
	// entries (and the run) in between.
	left := ckPhase(ctx, rdb)
	if !killed {
		// The point was missed (a fast drain on a quiet machine): the run
		// must still have used the copy engine and ended well.
		t.Logf("the run ended before the kill point (exit %d); checking its outcome instead", r.code)
		if r.code != 0 {
			t.Errorf("unkilled run: %s", r)
		}
	} else {
		t.Logf("killed at %v, leaving %v", at, left)
	}
	if !sawCopy {
		t.Errorf("no copy key was ever seen: the copy engine did not run")
	}

	// A rerun under traffic, then a quiet one: the lock of the dead run
	// turns runs away (75) until it expires by itself.
	rerun := func() ckSweepJSON {
		t.Helper()
		end := time.Now().Add(5 * time.Second)
		for {
			r := runEnv(t, ckEnv, "", args...)
			fltNoCrash(t, r)
			if r.code != 75 {
				r.expect(t, 0)
				var res ckSweepJSON
				r.decode(t, &res)
				return res
			}
			if time.Now().After(end) {
				t.Fatalf("the dead run's lock did not expire: %s", r)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	first := rerun()
	tr.halt(t)
	rerun()
	if killed && left["committed"]+left["committed-journal"]+left["committed-failures"] > 0 && first.RecoveredCopies != 1 {
		t.Errorf("killed after the cutover with committed work left: the rerun recovered %d copies, want 1", first.RecoveredCopies)
	}

	// The queue: original ++ pushed, less the popped and the expired, in
	// order, each once.
	tr.mu.Lock()
	all := append(append([]string{}, original...), tr.pushed...)
	popped := tr.popped
	tr.mu.Unlock()
	idOf := func(p string) string {
		var j struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal([]byte(p), &j)
		return j.ID
	}
	var want []string
	removed := map[string]bool{}
	for _, p := range all {
		id := idOf(p)
		switch {
		case popped[p]:
		case exp[id]:
			removed[id] = true
		default:
			want = append(want, p)
		}
	}
	got := rdb.LRange(ctx, defaultLayout.Queue(ckQueue), 0, -1).Val()
	if !slices.Equal(got, want) {
		in := map[string]int{}
		for _, p := range got {
			in[p]++
		}
		lost, dup, extra := 0, 0, 0
		for _, p := range want {
			switch in[p] {
			case 0:
				lost++
			case 1:
			default:
				dup++
			}
			delete(in, p)
		}
		for range in {
			extra++
		}
		t.Errorf("queue holds %d jobs, want %d: %d lost, %d duplicated, %d that should be gone (popped or expired)",
			len(got), len(want), lost, dup, extra)
	}
	for p := range popped {
		if id := idOf(p); exp[id] && removed[id] {
			t.Errorf("bug in the test: %s both popped and removed", id)
		}
	}

	// Deadline keys: gone exactly for the removed jobs.
	ids := make([]string, 0, len(exp))
	for id := range exp {
		ids = append(ids, id)
	}
	for i := 0; i < len(ids); i += 2000 {
		part := ids[i:min(i+2000, len(ids))]
		keys := make([]string, len(part))
		for k, id := range part {
			keys[k] = defaultLayout.Expiration(id)
		}
		bad := 0
		for k, v := range rdb.MGet(ctx, keys...).Val() {
			if (v == nil) != removed[part[k]] {
				if bad++; bad <= 5 {
					t.Errorf("job %s: removed %t, deadline key there %t", part[k], removed[part[k]], v != nil)
				}
			}
		}
	}

	// Every removed job recorded once (the archive may hold a batch twice
	// after a kill between its fsync and the journal's trim, as
	// docs/sweep.md says; restore skips those).
	switch mode {
	case "archive":
		counts := map[string]int{}
		for _, rec := range fltArchive(t, archive) {
			counts[rec.ID]++
		}
		twice := 0
		for id, c := range counts {
			if !removed[id] {
				t.Errorf("archive holds %s, which was not removed (popped or live)", id)
			}
			if c > 2 {
				t.Errorf("archive holds %s %d times", id, c)
			}
			if c == 2 {
				twice++
			}
		}
		for id := range removed {
			if counts[id] == 0 {
				t.Errorf("removed job %s is not in the archive", id)
			}
		}
		if twice > 1000 {
			t.Errorf("%d jobs archived twice: more than one journal batch", twice)
		}
		t.Logf("%d removed, %d archived twice", len(removed), twice)
	case "to-failed":
		counts := ckFailed(t, rdb)
		for id, c := range counts {
			if !removed[id] || c != 1 {
				t.Errorf("failed list holds %s %d times (removed %t)", id, c, removed[id])
			}
		}
		for id := range removed {
			if counts[id] == 0 {
				t.Errorf("removed job %s is not in the failed list", id)
			}
		}
	}

	// Nothing of the copy left.
	if keys := rdb.Keys(ctx, "{*").Val(); len(keys) > 0 {
		t.Errorf("copy keys left: %v", keys)
	}
	reg := strings.TrimSuffix(defaultLayout.Stats(), "stats") + "copies"
	if n := rdb.SCard(ctx, reg).Val(); n != 0 {
		t.Errorf("%d copies left in %s", n, reg)
	}
	if n := rdb.Exists(ctx, defaultLayout.Journal(), defaultLayout.Lock()).Val(); n != 0 {
		t.Errorf("journal or lock left behind")
	}
}
