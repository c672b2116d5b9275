package e2e

// Faults: the binary against a Redis that goes away, stalls, is full, is a
// replica, refuses the password or presents a certificate from the wrong CA,
// and a sweep that is SIGKILLed. Each failure must be one line on stderr
// starting with "resque-expire: " and the documented exit code, never a
// panic, and must lose nothing live nor leave anything behind (markers,
// unarchived removals) that a rerun does not finish.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/redistest"
)

// fltMarkerPrefix starts every marker the removal script writes.
const fltMarkerPrefix = "\x00resque-expire:marker:"

// fltData is what fltSeed wrote: payload by id, split by what each job is.
type fltData struct {
	queues          []string
	expired, live   map[string]string // id -> payload (queued jobs)
	dExpired, dLive map[string]string // id -> payload (delayed jobs)
	buckets         []int64
}

// expiredAll returns every expired job, queued or delayed.
func (d *fltData) expiredAll() map[string]string {
	out := map[string]string{}
	for k, v := range d.expired {
		out[k] = v
	}
	for k, v := range d.dExpired {
		out[k] = v
	}
	return out
}

func (d *fltData) liveAll() map[string]string {
	out := map[string]string{}
	for k, v := range d.live {
		out[k] = v
	}
	for k, v := range d.dLive {
		out[k] = v
	}
	return out
}

// fltSeed writes n queued jobs spread over queues (every job whose index
// satisfies expired is expired, the others live) and delayed jobs, half
// expired, spread over 4 buckets.
func fltSeed(t *testing.T, rdb *redis.Client, prefix string, queues []string, n int, expired func(i int) bool, delayed int) *fltData {
	t.Helper()
	d := &fltData{queues: queues, expired: map[string]string{}, live: map[string]string{},
		dExpired: map[string]string{}, dLive: map[string]string{}}
	now := time.Now().Unix()
	deadline := func(expired bool) string {
		if expired {
			return strconv.FormatInt(now-7200, 10)
		}
		return strconv.FormatInt(now+7200, 10)
	}
	queued := map[string][]redistest.Job{}
	for i := 0; i < n; i++ {
		q := queues[i%len(queues)]
		id := fmt.Sprintf("%s-%06d", prefix, i)
		p := fmt.Sprintf(`{"class":"FaultJob","args":[%d,"padding-padding-padding-padding"],"id":%q}`, i, id)
		queued[q] = append(queued[q], redistest.Job{Payload: p, ID: id, Deadline: deadline(expired(i))})
		if expired(i) {
			d.expired[id] = p
		} else {
			d.live[id] = p
		}
	}
	inBucket := map[int64][]redistest.Job{}
	for i := 0; i < delayed; i++ {
		at := now + int64(60*(1+i%4))
		if inBucket[at] == nil {
			d.buckets = append(d.buckets, at)
		}
		q := queues[i%len(queues)]
		id := fmt.Sprintf("%s-delayed-%05d", prefix, i)
		p := fmt.Sprintf(`{"class":"FaultDelayedJob","args":[%d],"id":%q,"queue":%q}`, i, id, q)
		inBucket[at] = append(inBucket[at], redistest.Job{Payload: p, ID: id, Deadline: deadline(i%2 == 0)})
		if i%2 == 0 {
			d.dExpired[id] = p
		} else {
			d.dLive[id] = p
		}
	}
	s := redistest.Seed(t, rdb, defaultLayout)
	for _, q := range queues {
		s.Enqueue(q, queued[q]...)
	}
	for _, at := range d.buckets {
		s.Delay(at, inBucket[at]...)
	}
	return d
}

// fltNoCrash fails the test if a run panicked or printed a Go stack.
func fltNoCrash(t *testing.T, r result) {
	t.Helper()
	for _, s := range []string{r.stderr, r.stdout} {
		for _, bad := range []string{"panic:", "goroutine ", "runtime error", "[signal "} {
			if strings.Contains(s, bad) {
				t.Fatalf("run crashed (%q in output):\n%s", bad, r)
			}
		}
	}
}

// fltExpectError checks a failed run: exit code, no crash, and stderr made
// of JSON log lines and exactly one error line, the last, which starts with
// "resque-expire: " (or, under --log-format json, is a JSON log line with
// an exit_code field) and mentions at least one of anyOf
// (case-insensitive). It returns the error line.
func fltExpectError(t *testing.T, r result, code int, anyOf ...string) string {
	t.Helper()
	fltNoCrash(t, r)
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
	lines := splitLines(r.stderr)
	var errLines []string
	for _, l := range lines {
		if strings.HasPrefix(l, "resque-expire: ") {
			errLines = append(errLines, l)
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			t.Errorf("stderr line is neither a JSON log line nor the error line: %q", l)
		} else if _, ok := m["exit_code"]; ok && m["level"] == "error" {
			errLines = append(errLines, l)
		}
	}
	if len(errLines) != 1 {
		t.Fatalf("want exactly one error line on stderr, got %d:\n%s", len(errLines), r)
	}
	if lines[len(lines)-1] != errLines[0] {
		t.Errorf("the error line is not the last line of stderr:\n%s", r)
	}
	if len(anyOf) > 0 {
		low := strings.ToLower(errLines[0])
		ok := false
		for _, s := range anyOf {
			if strings.Contains(low, strings.ToLower(s)) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("error line %q mentions none of %q", errLines[0], anyOf)
		}
	}
	return errLines[0]
}

// fltExpectErrorLog is fltExpectError that also logs the error line.
func fltExpectErrorLog(t *testing.T, r result, code int, anyOf ...string) string {
	t.Helper()
	line := fltExpectError(t, r, code, anyOf...)
	t.Logf("exit %d: %s", r.code, line)
	return line
}

// fltRecord is one archive line, as documented for restore.
type fltRecord struct {
	RemovedAt time.Time `json:"removed_at"`
	Queue     string    `json:"queue"`
	List      string    `json:"list"`
	DelayedAt int64     `json:"delayed_at"`
	ID        string    `json:"id"`
	Class     string    `json:"class"`
	ExpiresAt string    `json:"expires_at"`
	Deadline  string    `json:"deadline"`
	Payload   string    `json:"payload"`
}

func fltParseRecord(line string) (fltRecord, error) {
	var rec fltRecord
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		return rec, err
	}
	if rec.ID == "" || rec.Payload == "" || rec.List == "" || rec.RemovedAt.IsZero() {
		return rec, fmt.Errorf("incomplete record %q", line)
	}
	return rec, nil
}

// fltArchive reads an archive file; every line must be a whole record,
// except a torn one: a SIGKILL can cut an append short (Linux stops a large
// write(2) at a fatal signal), and the next run ends that line and writes
// the records again from the journal, which keeps them until they are
// fsynced. So a line that does not parse is allowed only as a prefix of a
// whole record that follows it or still waits in the journal.
func fltArchive(t *testing.T, path string, journal ...string) []fltRecord {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var out []fltRecord
	for n, l := range lines {
		rec, err := fltParseRecord(l)
		if err == nil {
			out = append(out, rec)
			continue
		}
		if !fltRewritten(l, lines[n+1:], journal) {
			t.Errorf("archive line %d does not parse and was not written again whole: %v", n+1, err)
		}
	}
	return out
}

// fltRewritten says whether a torn archive line is the start of a record
// written whole later or still in the journal.
func fltRewritten(torn string, later, journal []string) bool {
	if torn == "" {
		return false
	}
	for _, l := range append(append([]string{}, later...), journal...) {
		if len(l) > len(torn) && strings.HasPrefix(l, torn) {
			return true
		}
	}
	return false
}

// fltLists returns every payload in the queues and delayed buckets, by
// count, failing on any marker.
func fltLists(t *testing.T, rdb *redis.Client, d *fltData) map[string]int {
	t.Helper()
	ctx := context.Background()
	keys := []string{}
	for _, q := range d.queues {
		keys = append(keys, defaultLayout.Queue(q))
	}
	for _, b := range d.buckets {
		keys = append(keys, defaultLayout.Delayed(b))
	}
	out := map[string]int{}
	for _, k := range keys {
		vals, err := rdb.LRange(ctx, k, 0, -1).Result()
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		for _, v := range vals {
			if strings.HasPrefix(v, fltMarkerPrefix) {
				t.Errorf("a removal marker was left in %s", k)
				continue
			}
			out[v]++
		}
	}
	return out
}

// fltCheck verifies the invariants that hold at any time, even after a
// crash: no marker anywhere, every live job queued exactly once with its
// deadline key, every archived (or journaled) record an expired job that is
// gone. With final it also checks that the work is done: no expired job
// left, each archived at least once, no journal, no lock.
func fltCheck(t *testing.T, rdb *redis.Client, d *fltData, archive string, final bool) {
	t.Helper()
	ctx := context.Background()
	present := fltLists(t, rdb, d)
	live, expired := d.liveAll(), d.expiredAll()
	lost := 0
	for id, p := range live {
		if present[p] != 1 {
			lost++
			if lost <= 5 {
				t.Errorf("live job %s is queued %d times, want once", id, present[p])
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d live jobs lost or duplicated", lost, len(live))
	}
	ekeys := make([]string, 0, len(live))
	for id := range live {
		ekeys = append(ekeys, defaultLayout.Expiration(id))
	}
	for i := 0; i < len(ekeys); i += 5000 {
		vals := rdb.MGet(ctx, ekeys[i:min(i+5000, len(ekeys))]...).Val()
		for k, v := range vals {
			if v == nil {
				t.Errorf("live job's deadline key %s was deleted", ekeys[i+k])
			}
		}
	}

	check := func(where string, recs []fltRecord) map[string]int {
		counts := map[string]int{}
		for _, rec := range recs {
			p, ok := expired[rec.ID]
			switch {
			case !ok:
				t.Errorf("%s holds %s, which is not an expired job", where, rec.ID)
			case p != rec.Payload:
				t.Errorf("%s record of %s has another payload", where, rec.ID)
			case present[p] > 0:
				t.Errorf("%s holds %s, which is still queued", where, rec.ID)
			}
			counts[rec.ID]++
		}
		return counts
	}
	journalLines := rdb.LRange(ctx, defaultLayout.Journal(), 0, -1).Val()
	var archived map[string]int
	if archive != "" {
		archived = check("archive", fltArchive(t, archive, journalLines...))
	}
	var journal []fltRecord
	for _, l := range journalLines {
		rec, err := fltParseRecord(l)
		if err != nil {
			t.Errorf("journal record does not parse: %v", err)
			continue
		}
		journal = append(journal, rec)
	}
	journaled := check("journal", journal)
	// A removed job is archived or still journaled: nothing removed is lost.
	unrecorded := 0
	for id, p := range expired {
		if archive != "" && present[p] == 0 && archived[id] == 0 && journaled[id] == 0 {
			if unrecorded++; unrecorded <= 5 {
				t.Errorf("expired job %s was removed but is neither archived nor journaled", id)
			}
		}
	}
	if unrecorded > 0 {
		t.Errorf("%d removed jobs neither archived nor journaled", unrecorded)
	}
	if !final {
		return
	}
	left, missing := 0, 0
	for id, p := range expired {
		if present[p] > 0 {
			left++
		}
		if archive != "" && archived[id] == 0 {
			if missing++; missing <= 5 {
				t.Errorf("expired job %s is not in the archive", id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d expired jobs are not in the archive", missing)
	}
	if left > 0 {
		t.Errorf("%d expired jobs left after the rerun", left)
	}
	if n := rdb.Exists(ctx, defaultLayout.Journal(), defaultLayout.Lock()).Val(); n != 0 {
		t.Errorf("journal or lock left behind after a complete run")
	}
}

// fltSweepJSON is the part of `sweep --format json` read here.
type fltSweepJSON struct {
	Removed     int64  `json:"removed"`
	AlreadyGone int64  `json:"already_gone"`
	Stopped     string `json:"stopped"`
	Recovered   int    `json:"recovered"`
	// Orphans, with --orphans (docs/sweep.md).
	Orphans *struct {
		Keys        int64   `json:"keys_scanned"`
		Orphans     int64   `json:"orphans"`
		Expired     int64   `json:"expired"`
		Expiring    int64   `json:"expiring"`
		Invalid     int64   `json:"invalid"`
		Changed     int64   `json:"changed"`
		HoldSeconds float64 `json:"hold_seconds"`
	} `json:"orphans"`
}

// fltWaitFile waits until path holds at least size bytes, failing if p
// ends first.
func fltWaitFile(t *testing.T, p *proc, path string, size int64) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for {
		if st, err := os.Stat(path); err == nil && st.Size() >= size {
			return
		}
		if p.exited() {
			t.Fatalf("the sweep ended before the fault could be injected: %s", p.res)
		}
		if time.Now().After(end) {
			t.Fatalf("%s did not reach %d bytes in 30s", path, size)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fltRerun runs args until the run is not turned away by a lock (exit 75)
// left by the faulty run; that lock must go away by itself within wait.
func fltRerun(t *testing.T, wait time.Duration, args ...string) result {
	t.Helper()
	return fltRerunEnv(t, nil, wait, args...)
}

// fltRerunEnv is fltRerun with env added to the binary's environment.
func fltRerunEnv(t *testing.T, env []string, wait time.Duration, args ...string) result {
	t.Helper()
	end := time.Now().Add(wait)
	for {
		r := runEnv(t, env, "", args...)
		fltNoCrash(t, r)
		if r.code != 75 {
			return r
		}
		if time.Now().After(end) {
			t.Fatalf("the lock of the faulty run did not expire within %v: %s", wait, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFaultRedisRestartMidSweep: Redis is killed and restarted on the same
// port (with an fsynced AOF, so the data survives) while an archiving sweep
// runs. The run either retries through it (exit 0) or fails with one line
// and a partial summary (exit 1); either way nothing live is lost, every
// archived job is gone and was expired, and a rerun finishes the job with
// every expired job archived. In place and by the copy engine.
func TestFaultRedisRestartMidSweep(t *testing.T) {
	t.Parallel()
	// Two queues of 30,000 jobs: past the head reach, the copy engine
	// takes them; pinned in place, the removal scripts go as deep.
	for _, engine := range []struct {
		name string
		env  []string
	}{{"in place", []string{"RESQUE_EXPIRE_TEST_COPY_THRESHOLDS=1000000:1000000"}}, {"copy", nil}} {
		t.Run(engine.name, func(t *testing.T) {
			t.Parallel()
			fltRestartMidSweep(t, engine.env)
		})
	}
}

// fltRestartMidSweep is TestFaultRedisRestartMidSweep with env added to
// the binary's environment.
func fltRestartMidSweep(t *testing.T, env []string) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	t0 := time.Now()
	// Seed without an fsync per write (the data is on disk once
	// appendfsync is back to always: the next write fsyncs everything).
	if err := rdb.ConfigSet(ctx, "appendfsync", "no").Err(); err != nil {
		t.Fatal(err)
	}
	d := fltSeed(t, rdb, "rs", []string{"restart_a", "restart_b"}, 60000, func(i int) bool { return i%4 < 2 }, 200)
	if err := rdb.ConfigSet(ctx, "appendfsync", "always").Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded in %v", time.Since(t0))

	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	args := []string{"--redis", srv.URL(), "--format", "json", "--log-level", "warn",
		"sweep", "--yes", "--archive", archive, "--batch", "100", "--lock-ttl", "2s"}
	p := spawn(t, env, args...)
	fltWaitFile(t, p, archive, 200<<10)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
	first := p.wait(t)
	switch first.code {
	case 0:
		fltNoCrash(t, first)
		t.Log("the sweep retried through the restart")
	case 1:
		line := fltExpectError(t, first, 1)
		var partial fltSweepJSON
		first.decode(t, &partial)
		if partial.Stopped != "error" {
			t.Errorf("partial summary says stopped=%q, want \"error\"", partial.Stopped)
		}
		t.Logf("the sweep failed over the restart: %s (removed %d before)", line, partial.Removed)
	default:
		t.Fatalf("want exit 0 or 1, got %s", first)
	}
	if n, err := rdb.LLen(ctx, defaultLayout.Queue("restart_a")).Result(); n == 0 {
		t.Fatalf("the AOF did not bring the data back (%v); the test proves nothing", err)
	}
	fltCheck(t, rdb, d, archive, first.code == 0)

	t.Logf("first run and checks done at %v", time.Since(t0))
	var res fltSweepJSON
	r := fltRerunEnv(t, env, 10*time.Second, args...)
	t.Logf("rerun done at %v", time.Since(t0))
	r.expect(t, 0).decode(t, &res)
	fltCheck(t, rdb, d, archive, true)
	t.Logf("rerun removed %d, recovered %d journal records", res.Removed, res.Recovered)
}

// TestFaultSigkillBetweenBatches: an archiving sweep over queues and delayed
// buckets is SIGKILLed three times at different points. After each kill no
// marker is left in any list, the lock (--lock-ttl 1s) turns a new run
// away with exit 75 and then expires by itself, every archive line parses,
// every archived job is gone; the final rerun completes and every expired
// job is archived.
func TestFaultSigkillBetweenBatches(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	d := fltSeed(t, rdb, "kill", []string{"kill_a", "kill_b", "kill_c"}, 60000, func(i int) bool { return i%3 != 1 }, 3000)

	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	args := []string{"--redis", srv.URL(), "--format", "json", "--log-level", "warn",
		"sweep", "--yes", "--archive", archive, "--batch", "100", "--lock-ttl", "1s", "--max-script-time", "1ms"}
	size := int64(0)
	for kill := 1; kill <= 3; kill++ {
		p := spawn(t, nil, args...)
		size += int64(kill) * (100 << 10)
		fltWaitFile(t, p, archive, size)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if r := p.wait(t); r.code != -1 {
			t.Fatalf("kill %d: the sweep was not killed mid-run: %s", kill, r)
		}
		if st, err := os.Stat(archive); err == nil {
			size = st.Size()
		}
		fltCheck(t, rdb, d, archive, false)

		// The dead run's lock: at most --lock-ttl left, turning a run away
		// until it expires by itself.
		pttl := rdb.PTTL(ctx, defaultLayout.Lock()).Val()
		if pttl > time.Second {
			t.Errorf("kill %d: the dead run's lock lives %v, more than --lock-ttl 1s", kill, pttl)
		}
		if pttl > 400*time.Millisecond {
			r := runEnv(t, nil, "", args...)
			fltExpectErrorLog(t, r, 75, "lock")
		}
		end := time.Now().Add(3 * time.Second)
		for rdb.Exists(ctx, defaultLayout.Lock()).Val() != 0 {
			if time.Now().After(end) {
				t.Fatalf("kill %d: the dead run's lock did not expire by itself", kill)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("kill %d: %d bytes archived, %d records in the journal", kill, size, rdb.LLen(ctx, defaultLayout.Journal()).Val())
	}

	var res fltSweepJSON
	runEnv(t, nil, "", args...).expect(t, 0).decode(t, &res)
	if res.Stopped != "" {
		t.Errorf("rerun stopped early: %+v", res)
	}
	fltCheck(t, rdb, d, archive, true)
}

// TestFaultArchiveTornTail: a sweep killed in the middle of writing the
// archive can leave a last line without its newline. The next run must
// not glue its first record onto it: every record it writes must be a
// line of its own.
func TestFaultArchiveTornTail(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	d := fltSeed(t, rdb, "torn", []string{"torn"}, 50, func(i int) bool { return i%2 == 0 }, 0)
	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	torn := `{"removed_at":"2026-01-02T03:04:05Z","queue":"torn","list":"resque:queue:torn","id":"torn-gone","cla`
	if err := os.WriteFile(archive, []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, srv, "--log-level", "warn", "sweep", "--yes", "--archive", archive).expect(t, 0)
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != torn {
		t.Errorf("the torn line was changed or glued to a new record:\n%.300q", lines[0])
	}
	got := map[string]bool{}
	for i, l := range lines[1:] {
		rec, err := fltParseRecord(l)
		if err != nil {
			t.Errorf("record %d written after the torn line does not parse: %v", i+1, err)
			continue
		}
		got[rec.ID] = true
	}
	for id := range d.expired {
		if !got[id] {
			t.Errorf("expired job %s has no whole record in the archive", id)
		}
	}
}

// TestFaultClientTimeout: --timeout 50ms against a Redis stalled by DEBUG
// SLEEP 2, once before the run connects and once in the middle of an
// archiving sweep (in place and by the copy engine). Both runs fail with one line naming the timeout; the
// sweep leaves no marker and loses nothing, and once Redis is back a rerun
// completes with every expired job archived (including removals a stalled
// script made after the client gave up).
func TestFaultClientTimeout(t *testing.T) {
	t.Parallel()
	stall := func(srv *redisserver.Server) *sync.WaitGroup {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ReadTimeout: 5 * time.Second, MaxRetries: -1})
			defer c.Close()
			if err := c.Do(context.Background(), "DEBUG", "SLEEP", "2").Err(); err != nil {
				t.Errorf("DEBUG SLEEP: %v", err)
			}
		}()
		return &wg
	}

	t.Run("connect", func(t *testing.T) {
		srv := redistest.Start(t, "--enable-debug-command", "local")
		wg := stall(srv)
		time.Sleep(200 * time.Millisecond) // DEBUG SLEEP is running
		start := time.Now()
		r := run(t, srv, "--timeout", "50ms", "inspect")
		took := time.Since(start)
		fltExpectErrorLog(t, r, 1, "timeout")
		wg.Wait()
		if took > 10*time.Second {
			t.Errorf("a 50ms timeout took %v to fail", took)
		}
	})

	// Two queues of 20,000 jobs: past the head reach, the copy engine takes
	// them; pinned in place, the removal scripts go as deep.
	for _, engine := range []struct {
		name string
		env  []string
	}{{"mid-sweep in place", []string{"RESQUE_EXPIRE_TEST_COPY_THRESHOLDS=1000000:1000000"}}, {"mid-sweep copy", nil}} {
		t.Run(engine.name, func(t *testing.T) {
			srv := redistest.Start(t, "--enable-debug-command", "local")
			rdb := redistest.Client(t, srv)
			d := fltSeed(t, rdb, "slow", []string{"slow_a", "slow_b"}, 40000, func(i int) bool { return i%4 < 2 }, 0)
			archive := filepath.Join(t.TempDir(), "removed.jsonl")
			args := func(timeout string) []string {
				return []string{"--redis", srv.URL(), "--format", "json", "--log-level", "warn", "--timeout", timeout,
					"sweep", "--yes", "--archive", archive, "--batch", "100", "--lock-ttl", "1s"}
			}
			p := spawn(t, engine.env, args("50ms")...)
			fltWaitFile(t, p, archive, 100<<10)
			wg := stall(srv)
			r := p.wait(t)
			fltExpectErrorLog(t, r, 1, "timeout")
			var partial fltSweepJSON
			r.decode(t, &partial)
			if partial.Stopped == "" {
				t.Errorf("the partial summary does not say the run stopped: %s", r.stdout)
			}
			wg.Wait()
			fltCheck(t, rdb, d, archive, false)
			fltRerunEnv(t, engine.env, 5*time.Second, args("10s")...).expect(t, 0)
			fltCheck(t, rdb, d, archive, true)
		})
	}
}

// TestFaultClientPauseWrite: under CLIENT PAUSE 3000 WRITE a sweep cannot
// take its lock: it fails within its --timeout with one line and changes
// nothing, while inspect and sweep --dry-run (which never write) work.
func TestFaultClientPauseWrite(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	d := fltSeed(t, rdb, "pause", []string{"pause"}, 500, func(i int) bool { return i%2 == 0 }, 0)
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "3000", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Do(context.Background(), "CLIENT", "UNPAUSE") })
	start := time.Now()
	r := run(t, srv, "--timeout", "200ms", "sweep", "--yes", "--lock-ttl", "1s")
	fltExpectErrorLog(t, r, 1, "timeout", "lock")
	if took := time.Since(start); took > 2900*time.Millisecond {
		t.Fatalf("the paused sweep took %v: it waited for the pause to end instead of timing out", took)
	}
	fltNoCrash(t, run(t, srv, "--timeout", "200ms", "inspect").expect(t, 0))
	var dry fltSweepJSON
	run(t, srv, "--timeout", "200ms", "--format", "json", "sweep", "--dry-run").expect(t, 0).decode(t, &dry)
	if dry.Removed != int64(len(d.expired)) {
		t.Errorf("dry run under pause would remove %d, want %d", dry.Removed, len(d.expired))
	}
	fltCheck(t, rdb, d, "", false)
	if present := fltLists(t, rdb, d); len(present) != len(d.expired)+len(d.live) {
		t.Errorf("a paused sweep removed jobs: %d left of %d", len(present), len(d.expired)+len(d.live))
	}
	if err := rdb.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
		t.Fatal(err)
	}
	// The timed-out SET NX may still run once the pause ends, leaving a lock
	// that no one renews: it must expire by itself (--lock-ttl 1s).
	fltRerun(t, 5*time.Second, "--redis", srv.URL(), "--log-level", "warn", "sweep", "--yes").expect(t, 0)
	fltCheck(t, rdb, d, "", true)
}

// TestFaultMaxMemory: with Redis at maxmemory under noeviction, a sweep
// cannot write its lock and fails with one line naming the OOM; nothing is
// removed or lost. inspect, list and sweep --dry-run still work.
func TestFaultMaxMemory(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--maxmemory-policy", "noeviction")
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	d := fltSeed(t, rdb, "oom", []string{"oom_a", "oom_b"}, 20000, func(i int) bool { return i%4 < 2 }, 100)
	if err := rdb.ConfigSet(ctx, "maxmemory", "1mb").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, "probe", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "OOM") {
		t.Fatalf("Redis is not out of memory (SET answered %v); the test proves nothing", err)
	}

	r := run(t, srv, "--format", "json", "sweep", "--yes")
	fltExpectErrorLog(t, r, 1, "OOM", "maxmemory")
	fltCheck(t, rdb, d, "", false)
	if present := fltLists(t, rdb, d); len(present) != len(d.liveAll())+len(d.expiredAll()) {
		t.Errorf("the failed sweep changed the lists: %d jobs left of %d", len(present), len(d.liveAll())+len(d.expiredAll()))
	}
	if rdb.Exists(ctx, defaultLayout.Lock()).Val() != 0 {
		t.Error("a lock was left behind")
	}

	var sum struct {
		Totals struct {
			Expired int64 `json:"expired"`
			Live    int64 `json:"live"`
		} `json:"totals"`
	}
	run(t, srv, "--format", "json", "inspect").expect(t, 0).decode(t, &sum)
	if sum.Totals.Expired != int64(len(d.expiredAll())) || sum.Totals.Live != int64(len(d.liveAll())) {
		t.Errorf("inspect under OOM: %+v", sum.Totals)
	}
	var dry fltSweepJSON
	run(t, srv, "--format", "json", "sweep", "--dry-run").expect(t, 0).decode(t, &dry)
	if dry.Removed != int64(len(d.expiredAll())) {
		t.Errorf("dry run under OOM would remove %d, want %d", dry.Removed, len(d.expiredAll()))
	}
	if n := len(run(t, srv, "--format", "jsonl", "list", "--state", "expired").expect(t, 0).lines()); n != len(d.expiredAll()) {
		t.Errorf("list under OOM: %d expired, want %d", n, len(d.expiredAll()))
	}

	// Memory runs out in the middle of an archiving sweep: the next removal
	// script is refused before its first write (Redis refuses a script's
	// first write under OOM, then lets it finish), so no marker is left and
	// every removal is archived or journaled; with memory back, a rerun
	// finishes.
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	args := []string{"--redis", srv.URL(), "--format", "json", "--log-level", "warn",
		"sweep", "--yes", "--archive", archive, "--batch", "100", "--lock-ttl", "3s"}
	p := spawn(t, nil, args...)
	fltWaitFile(t, p, archive, 20<<10)
	if err := rdb.ConfigSet(ctx, "maxmemory", "1mb").Err(); err != nil {
		t.Fatal(err)
	}
	mid := p.wait(t)
	if mid.code == 0 {
		t.Log("the sweep finished before memory ran out")
	} else {
		fltExpectErrorLog(t, mid, 1, "OOM", "maxmemory")
	}
	fltCheck(t, rdb, d, archive, false)
	if err := rdb.ConfigSet(ctx, "maxmemory", "0").Err(); err != nil {
		t.Fatal(err)
	}
	fltRerun(t, 5*time.Second, args...).expect(t, 0)
	fltCheck(t, rdb, d, archive, true)
}

// TestFaultReadOnlyReplica: against a replica, sweep refuses with one line
// saying it is a read-only replica and writes nothing (not even on the
// master); inspect and sweep --dry-run work.
func TestFaultReadOnlyReplica(t *testing.T) {
	t.Parallel()
	master := redistest.Start(t, "--repl-diskless-sync-delay", "0")
	mdb := redistest.Client(t, master)
	ctx := context.Background()
	d := fltSeed(t, mdb, "ro", []string{"ro_a", "ro_b"}, 2000, func(i int) bool { return i%4 < 2 }, 40)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	rdb := redistest.Client(t, replica)
	want := mdb.DBSize(ctx).Val()
	end := time.Now().Add(15 * time.Second)
	for {
		info := rdb.Info(ctx, "replication").Val()
		if strings.Contains(info, "master_link_status:up") && rdb.DBSize(ctx).Val() == want {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("replica did not sync: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, args := range [][]string{
		{"sweep", "--yes"},
		{"sweep", "--yes", "--archive", filepath.Join(t.TempDir(), "a.jsonl")},
		{"sweep", "--yes", "--to-failed", "--orphans"},
	} {
		r := run(t, replica, append([]string{"--format", "json"}, args...)...)
		fltExpectErrorLog(t, r, 1, "read-only replica")
	}
	fltCheck(t, mdb, d, "", false)
	if present := fltLists(t, mdb, d); len(present) != len(d.liveAll())+len(d.expiredAll()) {
		t.Errorf("jobs removed through a replica: %d left", len(present))
	}
	if mdb.Exists(ctx, defaultLayout.Lock()).Val() != 0 {
		t.Error("a lock was taken through a replica")
	}

	fltNoCrash(t, run(t, replica, "inspect").expect(t, 0))
	var dry fltSweepJSON
	run(t, replica, "--format", "json", "sweep", "--dry-run").expect(t, 0).decode(t, &dry)
	if dry.Removed != int64(len(d.expiredAll())) {
		t.Errorf("dry run on the replica would remove %d, want %d", dry.Removed, len(d.expiredAll()))
	}
}

// TestFaultWrongPassword: a wrong password, a password given as the user,
// or none, given on the command line or in REDIS_URL: exit 1, one line,
// and neither the server's password nor the wrong one appears anywhere in
// the output, not even with debug JSON logs.
func TestFaultWrongPassword(t *testing.T) {
	t.Parallel()
	const right, wrong = "s3cr3t-pw", "wr0ng-pw"
	srv := redistest.Start(t, "--requirepass", right)
	rdb := redistest.Client(t, srv)
	fltSeed(t, rdb, "pw", []string{"pw"}, 20, func(i int) bool { return i%2 == 0 }, 0)
	addr := srv.Addr()
	urls := map[string]string{
		"wrong password":          "redis://:" + wrong + "@" + addr + "/0",
		"wrong user and password": "redis://default:" + wrong + "@" + addr + "/0",
		"password as user":        "redis://" + wrong + "@" + addr + "/0",
		"escaped password":        "redis://:" + strings.ReplaceAll(wrong, "-", "%2D") + "@" + addr + "/0",
		"no password":             "redis://" + addr + "/0",
	}
	for name, url := range urls {
		for _, via := range []string{"argv", "env"} {
			for _, logs := range [][]string{nil, {"--log-level", "debug", "--log-format", "json"}} {
				for _, cmd := range [][]string{{"inspect"}, {"sweep", "--yes"}, {"list"}} {
					var r result
					args := append(append([]string{}, logs...), cmd...)
					if via == "argv" {
						r = runEnv(t, nil, "", append([]string{"--redis", url}, args...)...)
					} else {
						r = runEnv(t, []string{"REDIS_URL=" + url}, "", args...)
					}
					what := fmt.Sprintf("%s via %s %v %v", name, via, logs, cmd)
					if r.code != 1 {
						t.Errorf("%s: want exit 1, got %s", what, r)
						continue
					}
					fltExpectError(t, r, 1, "WRONGPASS", "NOAUTH", "auth")
					for _, secret := range []string{right, wrong, "wr0ng%2Dpw"} {
						if strings.Contains(r.stdout+r.stderr, secret) {
							t.Errorf("%s: output shows %q:\n%s", what, secret, r)
						}
					}
				}
			}
		}
	}

	// A URL that is not quite a URL (no scheme, stray characters) is a
	// usage error, and its password is not repeated either.
	for _, url := range []string{
		"default:" + wrong + "@" + addr,
		":" + wrong + "@" + addr,
		"redis//:" + wrong + "@" + addr,
		"redis://:" + wrong + "@" + addr + ":notaport/0",
		"redis://:" + wrong + "@[::1/0",
	} {
		for _, via := range []string{"argv", "env"} {
			var r result
			if via == "argv" {
				r = runEnv(t, nil, "", "--redis", url, "inspect")
			} else {
				r = runEnv(t, []string{"REDIS_URL=" + url}, "", "inspect")
			}
			fltNoCrash(t, r)
			if r.code != 1 && r.code != 2 {
				t.Errorf("malformed URL via %s: want exit 2 (or 1), got %s", via, r)
			}
			if strings.Contains(r.stdout+r.stderr, wrong) {
				t.Errorf("malformed URL via %s: output shows the password:\n%s", via, r)
			}
		}
	}

	// The right password in REDIS_URL works, and debug logs do not show it.
	r := runEnv(t, []string{"REDIS_URL=redis://:" + right + "@" + addr + "/0"}, "", "--log-level", "debug", "--log-format", "json", "inspect")
	r.expect(t, 0)
	if strings.Contains(r.stdout+r.stderr, right) {
		t.Errorf("a successful run shows the password:\n%s", r)
	}
}

// fltCA is a throwaway certificate authority written to PEM files.
type fltCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func fltNewCA(t *testing.T, dir, name string) *fltCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &fltCA{cert: cert, key: key, file: file}
}

// issue writes a server certificate for 127.0.0.1 and its key.
func (ca *fltCA) issue(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// fltStartTLS starts a redis-server that also listens with TLS on a free
// port, or skips the test if this redis-server build has no TLS.
func fltStartTLS(t *testing.T, certFile, keyFile, caFile string) (*redisserver.Server, int) {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		srv, err := redisserver.Start(context.Background(), redisserver.Options{ExtraArgs: []string{
			"--tls-port", strconv.Itoa(port), "--tls-cert-file", certFile, "--tls-key-file", keyFile,
			"--tls-ca-cert-file", caFile, "--tls-auth-clients", "no"}})
		if err == nil {
			t.Cleanup(func() { _ = srv.Stop() })
			return srv, port
		}
		lastErr = err
		if msg := err.Error(); strings.Contains(msg, "tls-port") && (strings.Contains(msg, "Bad directive") ||
			strings.Contains(msg, "not supported") || strings.Contains(msg, "TLS is not")) {
			t.Skipf("this redis-server build has no TLS support: %v", err)
		}
	}
	t.Fatalf("start redis-server with TLS: %v", lastErr)
	return nil, 0
}

// TestFaultTLSBadCA: a TLS Redis whose certificate comes from another CA
// than --tls-ca is refused with one line naming the x509 failure (exit 1);
// the right CA and --tls-skip-verify connect. (Unit-level twin without a
// TLS redis-server: internal/redisconn/tls_test.go.)
func TestFaultTLSBadCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	serverCA := fltNewCA(t, dir, "server-ca")
	otherCA := fltNewCA(t, dir, "other-ca")
	certFile, keyFile := serverCA.issue(t, dir, "redis")
	srv, port := fltStartTLS(t, certFile, keyFile, serverCA.file)
	rdb := redistest.Client(t, srv)
	fltSeed(t, rdb, "tls", []string{"tls"}, 10, func(i int) bool { return i%2 == 0 }, 0)
	url := fmt.Sprintf("rediss://127.0.0.1:%d/0", port)

	for _, args := range [][]string{
		{"--redis", url, "--tls-ca", otherCA.file, "inspect"},
		{"--redis", url, "--tls-ca", otherCA.file, "sweep", "--yes"},
		{"--redis", url, "inspect"}, // system roots do not know the throwaway CA
	} {
		r := runEnv(t, nil, "", args...)
		fltExpectErrorLog(t, r, 1, "x509", "certificate")
	}
	r := runEnv(t, []string{"REDIS_TLS_CA=" + otherCA.file}, "", "--redis", url, "inspect")
	fltExpectErrorLog(t, r, 1, "x509", "certificate")

	runEnv(t, nil, "", "--redis", url, "--tls-ca", serverCA.file, "inspect").expect(t, 0)
	runEnv(t, nil, "", "--redis", url, "--tls-skip-verify", "inspect").expect(t, 0)
	// A plain-text client on the TLS port fails clearly too.
	r = runEnv(t, nil, "", "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port), "--timeout", "1s", "inspect")
	fltExpectErrorLog(t, r, 1)
}
