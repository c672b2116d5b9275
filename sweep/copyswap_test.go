package sweep

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
)

// copyLayouts are the expiry layouts the copy engine is tested on: which
// of n jobs (by push order) are expired.
var copyLayouts = map[string]func(i, n int) bool{
	"random":   func(i, n int) bool { return (i*7+i/3)%13 < 6 },
	"head":     func(i, n int) bool { return i < n/2 },
	"tail":     func(i, n int) bool { return i >= n/2 },
	"twoclass": func(i, n int) bool { return i%5 < 3 && i < n*83/100 },
}

// copyJob is one job a copy test pushed.
type copyJob struct {
	payload string
	expired bool
	initial bool
}

// copyFixture is a sweep fixture with one queue of generated jobs.
type copyFixture struct {
	*sweepFixture
	queue string
	mu    sync.Mutex
	jobs  map[string]copyJob // by id
	order []string           // ids of the initial jobs, in push order
	next  int
	pad   string // in every payload's args
}

func newCopyFixture(t *testing.T, serverArgs ...string) *copyFixture {
	return &copyFixture{sweepFixture: newSweepFixture(t, serverArgs...), queue: "deep", jobs: map[string]copyJob{}}
}

func (f *copyFixture) key() string { return f.layout.Queue(f.queue) }

func copyID(payload string) string {
	var p struct{ ID string }
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return "?" + payload
	}
	return p.ID
}

// newJob makes the next job (not pushed yet), expired or not; its deadline
// key is set by the caller's pipeline.
func (f *copyFixture) newJob(expired, initial bool) (id, payload, deadline string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id = fmt.Sprintf("j%06d", f.next)
	payload = fmt.Sprintf(`{"class":"CopyJob","args":[%d,"pad-pad-pad-pad%s"],"id":%q}`, f.next, f.pad, id)
	f.next++
	f.jobs[id] = copyJob{payload: payload, expired: expired, initial: initial}
	if initial {
		f.order = append(f.order, id)
	}
	deadline = f.at(time.Hour)
	if expired {
		deadline = f.at(-time.Hour)
	}
	return id, payload, deadline
}

// seed pushes n jobs, expired where layout says.
func (f *copyFixture) seed(n int, layout func(i, n int) bool) {
	f.t.Helper()
	pipe := f.rdb.Pipeline()
	pipe.SAdd(f.ctx, f.layout.Queues(), f.queue)
	for i := 0; i < n; i++ {
		id, p, d := f.newJob(layout(i, n), true)
		pipe.RPush(f.ctx, f.key(), p)
		pipe.Set(f.ctx, f.layout.Expiration(id), d, 0)
		if pipe.Len() > 2000 {
			if _, err := pipe.Exec(f.ctx); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	if _, err := pipe.Exec(f.ctx); err != nil {
		f.t.Fatal(err)
	}
}

// produce pushes one new job (half of them expired) at the tail.
func (f *copyFixture) produce() error {
	f.mu.Lock()
	expired := f.next%2 == 0
	f.mu.Unlock()
	id, p, d := f.newJob(expired, false)
	_, err := f.rdb.TxPipelined(f.ctx, func(p2 redis.Pipeliner) error {
		p2.Set(f.ctx, f.layout.Expiration(id), d, 0)
		p2.RPush(f.ctx, f.key(), p)
		return nil
	})
	return err
}

// copyOpts are options with thresholds that send small lists to the copy
// engine.
func (f *copyFixture) copyOpts() Options {
	return Options{Now: f.clock, headReach: 200, copyMinLen: 1000, cutoverTail: 300}
}

func (f *copyFixture) sweepCopy(opts Options) (*Result, []Removal, error) {
	return f.sweep(opts, func(c *inspect.Config) { c.Batch = 100 })
}

// noLeftovers fails unless the copy left nothing behind: no key in a
// list's hash slot of the tool's, an empty registry.
func (f *copyFixture) noLeftovers() {
	f.t.Helper()
	keys, err := f.rdb.Keys(f.ctx, "{*").Result()
	if err != nil {
		f.t.Fatal(err)
	}
	if len(keys) > 0 {
		f.t.Errorf("copy keys left: %v", keys)
	}
	if n := f.rdb.SCard(f.ctx, copiesRegistry(f.layout)).Val(); n != 0 {
		f.t.Errorf("%d copies left in the registry", n)
	}
}

// engine returns the engine the result names for the fixture's queue.
func (f *copyFixture) engine(res *Result) string {
	for _, q := range res.Queues {
		if q.Queue == f.queue {
			return q.Engine
		}
	}
	return ""
}

// checkKeys fails unless every removed job's key is gone and every other
// job's key is there.
func (f *copyFixture) checkKeys(removed map[string]bool) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	bad := 0
	for id := range f.jobs {
		has := f.exists(f.layout.Expiration(id))
		if removed[id] == has {
			if bad++; bad <= 5 {
				f.t.Errorf("job %s: removed %t, deadline key there %t", id, removed[id], has)
			}
		}
	}
}

func idSetOf(rs []Removal) map[string]bool {
	out := map[string]bool{}
	for _, r := range rs {
		out[r.ID] = true
	}
	return out
}

// TestCopyEngineRemovesExactlyTheExpired: on a quiet server, every layout
// goes by the copy engine and leaves exactly the live jobs, in order, with
// their keys; the removed jobs' keys are gone; nothing else is left.
// TestHeadRunWithLargeEntriesStaysInPlace: a one-TTL queue whose head run
// is too large for one head_trim.lua's arguments (archive records and
// failure entries of 3 KB payloads) is a run all the same, trimmed in
// several scripts, not jobs spread through the page for the copy engine.
func TestHeadRunWithLargeEntriesStaysInPlace(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.pad = strings.Repeat("x", 3000)
	f.seed(3000, copyLayouts["head"])
	opts := f.copyOpts()
	opts.ToFailed, opts.Archive = true, f.archiveFile()
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.engine(res); got != engineInPlace {
		t.Errorf("engine %q, want %s; problems %v", got, engineInPlace, res.Problems)
	}
	var want []string
	for _, id := range f.order {
		if j := f.jobs[id]; !j.expired {
			want = append(want, j.payload)
		}
	}
	if got := f.list(f.key()); !slices.Equal(got, want) || len(removed) != 3000-len(want) {
		t.Errorf("queue holds %d jobs, want the %d live ones in order; %d removed", len(got), len(want), len(removed))
	}
}

func TestCopyEngineRemovesExactlyTheExpired(t *testing.T) {
	t.Parallel()
	for name, layout := range copyLayouts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newCopyFixture(t)
			f.seed(3000, layout)
			res, removed, err := f.sweepCopy(f.copyOpts())
			if err != nil {
				t.Fatal(err)
			}
			// One TTL: the head phase trims the run off the head as it
			// reads, and no victim is ever deep.
			wantEngine := engineCopy
			if name == "head" {
				wantEngine = engineInPlace
			}
			if got := f.engine(res); got != wantEngine {
				t.Errorf("engine %q, want %s; problems %v", got, wantEngine, res.Problems)
			}
			var want []string
			wantGone := 0
			for _, id := range f.order {
				if j := f.jobs[id]; !j.expired {
					want = append(want, j.payload)
				} else {
					wantGone++
				}
			}
			if got := f.list(f.key()); !slices.Equal(got, want) {
				t.Errorf("queue holds %d jobs, want the %d live ones in order", len(got), len(want))
			}
			if res.Removed != int64(wantGone) || len(removed) != wantGone {
				t.Errorf("removed %d (reported %d), want %d", res.Removed, len(removed), wantGone)
			}
			if res.Scanned != 3000 {
				t.Errorf("scanned %d, want 3000", res.Scanned)
			}
			// The run reads a job's class once it is judged a victim.
			for _, rm := range removed {
				if rm.Class != "CopyJob" {
					t.Fatalf("removal of %s reported class %q, want CopyJob", rm.ID, rm.Class)
				}
			}
			f.checkKeys(idSetOf(removed))
			f.noLeftovers()
		})
	}
}

// sweepUnderTraffic runs a sweep while a worker pops the queue's head
// (LPOP and BLPOP in turn, so that its pops are in order) and a producer
// pushes at its tail, then checks popped ++ final == original ++ pushed -
// removed, in order, that only expired jobs were removed, that every
// expired job there from the start was popped or removed, and the keys.
func sweepUnderTraffic(t *testing.T, f *copyFixture, opts Options) *Result {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var popped []string
	wg.Add(2)
	go func() {
		defer wg.Done()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			var v string
			var err error
			if n%2 == 0 {
				v, err = f.rdb.LPop(f.ctx, f.key()).Result()
			} else {
				var kv []string
				kv, err = f.rdb.BLPop(f.ctx, time.Second, f.key()).Result()
				if err == nil {
					v = kv[1]
				}
			}
			if err == nil {
				popped = append(popped, v)
			} else if err != redis.Nil {
				t.Errorf("worker: %v", err)
				return
			}
			time.Sleep(300 * time.Microsecond)
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := f.produce(); err != nil {
				t.Errorf("producer: %v", err)
				return
			}
			time.Sleep(300 * time.Microsecond)
		}
	}()
	res, removed, err := f.sweepCopy(opts)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	gone := idSetOf(removed)
	for id := range gone {
		if j, ok := f.jobs[id]; !ok || !j.expired {
			t.Errorf("removed job %s, not an expired one", id)
		}
	}
	// Every job ever pushed, in push order (ids are in push order).
	ids := make([]string, 0, len(f.jobs))
	for id := range f.jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var want []string
	for _, id := range ids {
		if !gone[id] {
			want = append(want, f.jobs[id].payload)
		}
	}
	got := append(slices.Clone(popped), f.list(f.key())...)
	if !slices.Equal(got, want) {
		t.Errorf("popped (%d) ++ final: %d jobs; want original ++ pushed - removed: %d", len(popped), len(got), len(want))
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference at %d: %s, want %s", i, copyID(got[i]), copyID(want[i]))
				break
			}
		}
	}
	poppedSet := map[string]bool{}
	for _, p := range popped {
		poppedSet[copyID(p)] = true
	}
	for _, id := range f.order {
		if f.jobs[id].expired && !gone[id] && !poppedSet[id] {
			t.Errorf("expired job %s, there from the start, was neither popped nor removed", id)
			break
		}
	}
	if res.Removed != int64(len(removed)) {
		t.Errorf("result says %d removed, OnRemoved saw %d", res.Removed, len(removed))
	}
	if len(popped) == 0 || f.next == len(f.order) {
		t.Errorf("no traffic: %d popped, %d pushed", len(popped), f.next-len(f.order))
	}
	f.checkKeys(gone)
	f.noLeftovers()
	t.Logf("%d popped, %d removed, %d already gone, %d pushed; engine %s; problems %v",
		len(popped), len(removed), res.AlreadyGone, f.next-len(f.order), f.engine(res), res.Problems)
	return res
}

// TestCopyEngineUnderTraffic is the exact accounting of the copy engine on
// every layout while a worker pops and a producer pushes throughout.
func TestCopyEngineUnderTraffic(t *testing.T) {
	t.Parallel()
	for name, layout := range copyLayouts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newCopyFixture(t)
			f.seed(4000, layout)
			res := sweepUnderTraffic(t, f, f.copyOpts())
			if got := f.engine(res); got != engineCopy && name != "head" {
				t.Errorf("engine %q, want copy", got)
			}
		})
	}
}

// TestInPlaceEngineUnderTraffic is the same accounting with the copy
// engine out of reach (the list is too short for it).
func TestInPlaceEngineUnderTraffic(t *testing.T) {
	t.Parallel()
	for name, layout := range copyLayouts {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newCopyFixture(t)
			f.seed(3000, layout)
			opts := f.copyOpts()
			opts.copyMinLen = 1 << 40
			res := sweepUnderTraffic(t, f, opts)
			if got := f.engine(res); got != engineInPlace {
				t.Errorf("engine %q, want in-place", got)
			}
		})
	}
}

// TestCopyKeysShareTheListsSlot: every key of a copy hashes to its list's
// Redis Cluster slot (CRC16 of the hash tag, mod 16384).
func TestCopyKeysShareTheListsSlot(t *testing.T) {
	t.Parallel()
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("crc16 check value %#x, want 0x31c3", got)
	}
	for _, list := range []string{"resque:queue:default", "resque:queue:mailers", "q", "app:queue:a{b}c", "x:queue:{}", "y:queue:}{"} {
		if !copyable(list) {
			if !strings.Contains(list, "}") {
				t.Errorf("%s: not copyable", list)
			}
			continue
		}
		k := newCopyKeys(list, "0123456789abcdef01234567")
		for _, key := range []string{k.copy, k.old, k.stage, k.journal, k.failures, k.cStage, k.cJournal, k.cFailures} {
			if slot(key) != slot(list) {
				t.Errorf("%s: slot %d, its list %s slot %d", key, slot(key), list, slot(list))
			}
			if strings.Contains(key, k.token) == false {
				t.Errorf("%s does not name the run", key)
			}
		}
	}
}

// slot is the key's cluster slot, as Redis computes it (cluster.c keyHashSlot).
func slot(key string) int {
	k := []byte(key)
	s := slices.Index(k, '{')
	if s >= 0 {
		if e := slices.Index(k[s+1:], '}'); e > 0 {
			k = k[s+1 : s+1+e]
		}
	}
	return int(crc16(k) & 16383)
}

// crc16 is CRC16-CCITT (XMODEM), as Redis Cluster hashes keys.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for i := 0; i < 8; i++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// TestCopyTwoDeepQueues: two deep queues swept at once are copied (at once
// when Redis has the memory, as here), both exactly.
func TestCopyTwoDeepQueues(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	other := &copyFixture{sweepFixture: f.sweepFixture, queue: "deep2", jobs: map[string]copyJob{}, next: 100000}
	other.seed(3000, copyLayouts["twoclass"])
	var most atomic.Int32
	opts := f.copyOpts()
	// A copy is in flight from its first page to its cutover (its drain
	// may overlap the next copy: the old list is gone by then).
	var mu sync.Mutex
	active := map[string]bool{}
	opts.copyHook = func(phase, list string) error {
		mu.Lock()
		defer mu.Unlock()
		switch phase {
		case "copy":
			active[list] = true
		case "after-cutover":
			delete(active, list)
		}
		if n := int32(len(active)); n > most.Load() {
			most.Store(n)
		}
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if n := most.Load(); n < 1 || n > 2 {
		t.Errorf("%d copies at once, want 1 or 2", n)
	}
	for _, q := range res.Queues {
		if q.Engine != engineCopy {
			t.Errorf("queue %s: engine %q, want copy", q.Queue, q.Engine)
		}
	}
	for _, g := range []*copyFixture{f, other} {
		if got, want := g.list(g.key()), g.liveOnly(g.initialPayloads()); !slices.Equal(got, want) {
			t.Errorf("%s holds %d jobs, want %d", g.queue, len(got), len(want))
		}
		g.checkKeys(idSetOf(removed))
	}
	f.noLeftovers()
}

// TestCopyBlockedWorkerServedAfterSwap: the swapped-in list is the queue
// for blocking workers too. A worker blocked (BLPOP) on another, empty
// queue throughout the swap, and one blocked on the swapped queue once
// it is drained, are both served by the next push.
func TestCopyBlockedWorkerServedAfterSwap(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(3000, copyLayouts["random"])
	idle := f.layout.Queue("idle")
	served := make(chan string, 2)
	block := func(key string) {
		c := redis.NewClient(&redis.Options{Addr: f.srv.Addr()})
		defer c.Close()
		kv, err := c.BLPop(f.ctx, 10*time.Second, key).Result()
		if err != nil {
			served <- "error: " + err.Error()
			return
		}
		served <- kv[1]
	}
	go block(idle)
	res, _, err := f.sweepCopy(f.copyOpts())
	if err != nil || f.engine(res) != engineCopy {
		t.Fatalf("sweep: %v, engine %q", err, f.engine(res))
	}
	for f.rdb.LPop(f.ctx, f.key()).Err() == nil {
	}
	go block(f.key())
	time.Sleep(100 * time.Millisecond) // let it block
	for _, key := range []string{idle, f.key()} {
		if err := f.rdb.RPush(f.ctx, key, "job for "+key).Err(); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]bool{<-served: true, <-served: true}
	for _, key := range []string{idle, f.key()} {
		if !got["job for "+key] {
			t.Errorf("the worker blocked on %s was not served: %v", key, got)
		}
	}
}
