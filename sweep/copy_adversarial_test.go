package sweep

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
)

// Adversarial tests of the copy engine's cutover: interleavings of other
// clients' commands with a copy that the cutover's checks (the head window,
// the end anchor, T's head, the fence) must catch or handle. The list must
// end as a control run with the same interleaving would leave it: nothing
// popped comes back, nothing pushed is lost, nothing another client deleted
// is restored, no job a worker took is reported removed.

// advPing is an id-less plain Resque job: many queues hold identical
// payloads of it (a heartbeat, a cache refresh), which no id tells apart.
const advPing = `{"class":"Ping","args":[]}`

// advSegment is a run of the test list: n copies of ping, or n new jobs,
// expired or live.
type advSegment struct {
	n       int
	ping    bool
	expired bool
}

// advSeed pushes the segments in order (with the deadline keys of the
// jobs that have ids) and returns the list as pushed.
func (f *copyFixture) advSeed(segs ...advSegment) []string {
	f.t.Helper()
	pipe := f.rdb.Pipeline()
	pipe.SAdd(f.ctx, f.layout.Queues(), f.queue)
	var out []string
	for _, s := range segs {
		for i := 0; i < s.n; i++ {
			if s.ping {
				out = append(out, advPing)
				pipe.RPush(f.ctx, f.key(), advPing)
				continue
			}
			id, p, d := f.newJob(s.expired, true)
			out = append(out, p)
			pipe.RPush(f.ctx, f.key(), p)
			pipe.Set(f.ctx, f.layout.Expiration(id), d, 0)
		}
	}
	if _, err := pipe.Exec(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return out
}

func (f *copyFixture) pushPings(n int) {
	f.t.Helper()
	if n == 0 {
		return
	}
	args := make([]any, n)
	for i := range args {
		args[i] = advPing
	}
	if err := f.rdb.RPush(f.ctx, f.key(), args...).Err(); err != nil {
		f.t.Fatal(err)
	}
}

// advCheck compares the list with want and fails for every removal of a
// job that was not in the list when the sweep reported it (a job a worker
// took, or another client deleted, is not the sweep's removal).
func (f *copyFixture) advCheck(res *Result, removed []Removal, want []string, removable map[string]bool) {
	f.t.Helper()
	got := f.list(f.key())
	if !slices.Equal(got, want) {
		count := func(l []string, p string) (n int) {
			for _, v := range l {
				if v == p {
					n++
				}
			}
			return n
		}
		extra, missing := 0, 0
		for _, p := range got {
			if p != advPing && !slices.Contains(want, p) {
				extra++
			}
		}
		for _, p := range want {
			if p != advPing && !slices.Contains(got, p) {
				missing++
			}
		}
		f.t.Errorf("list holds %d jobs, want %d: %d pings (want %d), %d jobs that should not be there (popped or deleted), %d missing (engine %s; %s)",
			len(got), len(want), count(got, advPing), count(want, advPing), extra, missing, f.engine(res), problemKinds(res))
	}
	wrong := 0
	for _, r := range removed {
		if !removable[r.ID] {
			wrong++
		}
	}
	if wrong > 0 {
		f.t.Errorf("%d jobs reported removed that a worker popped or another client deleted first", wrong)
	}
	f.noLeftovers()
}

// TestCopyAdversarialRepeatedHeadAfterPops: the copied region holds the
// same four id-less payloads twice, workers pop past the second run before
// the cutover, and a producer keeps pushing the same payload. The head the
// client reads (four pings) matches the record at the first run too, and
// the end anchor (the last three copied pings) matches at the shifted end,
// among the pushed pings: a cutover that takes the first match restores the
// jobs popped in between, counts their victims as removed, and drops as
// many pushed pings. It must find the head unambiguously or abort.
func TestCopyAdversarialRepeatedHeadAfterPops(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.advSeed(advSegment{n: 300}, advSegment{n: 4, ping: true}, advSegment{n: 100, expired: true},
		advSegment{n: 100}, advSegment{n: 4, ping: true}, advSegment{n: 689}, advSegment{n: 3, ping: true})
	var want []string
	opts := f.copyOpts()
	opts.copyHook = func(phase, list string) error {
		if phase != "before-cutover" {
			return nil
		}
		// Workers take everything up to the second run of pings (the
		// victims too), a producer pushes 250 pings.
		if err := f.rdb.LPopCount(f.ctx, f.key(), 504).Err(); err != nil {
			t.Error(err)
		}
		f.pushPings(250)
		want = f.list(f.key()) // no victim is left in it
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.advCheck(res, removed, want, map[string]bool{})
}

// TestCopyAdversarialDeletedAndRecreatedWithSamePayload: during the copy,
// another client deletes the queue (Resque.remove_queue) and a producer
// re-creates it with id-less pings, the same payload as four copied
// elements near the head and the last three copied. The cutover's head,
// end anchor and T's head checks all see pings where they expect pings: a
// swap brings the deleted jobs back and loses pushed pings. It must abort.
func TestCopyAdversarialDeletedAndRecreatedWithSamePayload(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.advSeed(advSegment{n: 300}, advSegment{n: 4, ping: true}, advSegment{n: 100, expired: true},
		advSegment{n: 600}, advSegment{n: 3, ping: true})
	var want []string
	opts := f.copyOpts()
	opts.copyHook = func(phase, list string) error {
		if phase != "before-cutover" {
			return nil
		}
		if err := f.rdb.Del(f.ctx, f.key()).Err(); err != nil {
			t.Error(err)
		}
		f.pushPings(1000)
		want = f.list(f.key())
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.advCheck(res, removed, want, map[string]bool{})
}

// TestCopyAdversarialAllSurvivorsPopped: workers pop every survivor of
// the copied region (T is empty after its trim: EXISTS T is 0 and X is only
// unlinked), while nothing is pushed, then with pings pushed meanwhile: the
// queue must hold exactly what was pushed, and the victims left are removed.
func TestCopyAdversarialAllSurvivorsPopped(t *testing.T) {
	t.Parallel()
	for _, pushed := range []int{0, 5} {
		t.Run(fmt.Sprintf("%d pushed", pushed), func(t *testing.T) {
			t.Parallel()
			f := newCopyFixture(t)
			// 1000 live then 300 expired: once workers took the live
			// ones, only victims are left of the copied region.
			seeded := f.advSeed(advSegment{n: 1000}, advSegment{n: 300, expired: true})
			var want []string
			removable := map[string]bool{}
			opts := f.copyOpts()
			opts.copyHook = func(phase, list string) error {
				if phase != "before-cutover" {
					return nil
				}
				if err := f.rdb.LPopCount(f.ctx, f.key(), 1010).Err(); err != nil {
					t.Error(err)
				}
				f.pushPings(pushed)
				for _, p := range seeded[1010:] {
					removable[copyID(p)] = true
				}
				want = f.liveOnly(f.list(f.key()))
				return nil
			}
			res, removed, err := f.sweepCopy(opts)
			if err != nil {
				t.Fatal(err)
			}
			if e := f.engine(res); e != "copy" {
				t.Errorf("engine %q, want copy (%s)", e, problemKinds(res))
			}
			f.advCheck(res, removed, want, removable)
			if len(removed) != len(removable) {
				t.Errorf("%d removed, want the %d victims left", len(removed), len(removable))
			}
			f.checkKeys(idSetOf(removed))
		})
	}
}

// advPushLive pushes n new live jobs (deadline key first) and returns
// their payloads in push order.
func (f *copyFixture) advPushLive(n int) []string {
	f.t.Helper()
	pipe := f.rdb.Pipeline()
	var out []string
	for i := 0; i < n; i++ {
		id, p, d := f.newJob(false, false)
		pipe.Set(f.ctx, f.layout.Expiration(id), d, 0)
		pipe.RPush(f.ctx, f.key(), p)
		out = append(out, p)
	}
	if _, err := pipe.Exec(f.ctx); err != nil {
		f.t.Error(err)
	}
	return out
}

// TestCopyAdversarialPoppedPastCopiedRegion: workers pop every copied job
// (the victims too) before the cutover, and a producer pushes new ones: the
// list's head is in no position of the record. The swap must abort or
// handle it; the queue ends as exactly the pushed jobs, and nothing popped is
// reported removed.
func TestCopyAdversarialPoppedPastCopiedRegion(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(1500, copyLayouts["random"])
	var pushed []string
	// The victims within the head reach went in place before the copy.
	removable := map[string]bool{}
	opts := f.copyOpts()
	opts.copyHook = func(phase, list string) error {
		if phase != "before-cutover" {
			return nil
		}
		there := map[string]bool{}
		for _, p := range f.list(f.key()) {
			there[p] = true
		}
		for _, p := range f.initialPayloads() {
			if !there[p] {
				removable[copyID(p)] = true
			}
		}
		if err := f.rdb.LPopCount(f.ctx, f.key(), 1500).Err(); err != nil {
			t.Error(err)
		}
		pushed = f.advPushLive(50)
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.advCheck(res, removed, pushed, removable)
	if len(removed) != len(removable) {
		t.Errorf("%d removed, want the %d removed before the copy", len(removed), len(removable))
	}
	t.Logf("engine %s; %s", f.engine(res), problemKinds(res))
}

// TestCopyAdversarialProducerBeyondTailBound: from just before the cutover
// until the run ends, a producer pushes far more than the cutover appends
// at once (300 here), without pause. The cutover copies more and tries
// again, or gives up and falls back; either way the queue ends as the live
// seeded jobs followed by every pushed job, in order.
func TestCopyAdversarialProducerBeyondTailBound(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(1500, copyLayouts["random"])
	initial := f.initialPayloads()
	stop := make(chan struct{})
	done := make(chan struct{})
	var pushed []string
	opts := f.copyOpts()
	started := false
	opts.copyHook = func(phase, list string) error {
		if phase != "before-cutover" || started {
			return nil
		}
		started = true
		pushed = append(pushed, f.advPushLive(400)...)
		go func() {
			defer close(done)
			// Bounded, so that the test ends even should the cutover
			// chase the producer (TestCopyAdversarialCatchUpUnbounded).
			for len(pushed) < 8000 {
				select {
				case <-stop:
					return
				default:
				}
				pushed = append(pushed, f.advPushLive(100)...)
			}
		}()
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if started {
		close(stop)
		<-done
	}
	if err != nil {
		t.Fatal(err)
	}
	want := append(f.liveOnly(initial), pushed...)
	removable := map[string]bool{}
	for _, p := range initial {
		if f.jobs[copyID(p)].expired {
			removable[copyID(p)] = true
		}
	}
	f.advCheck(res, removed, want, removable)
	if len(removed) != len(removable) {
		t.Errorf("%d removed, want %d", len(removed), len(removable))
	}
	f.checkKeys(idSetOf(removed))
	t.Logf("%d pushed; engine %s; %s", len(pushed), f.engine(res), problemKinds(res))
}

// TestCopyAdversarialPingsAtTheEnds: the last three copied jobs are
// id-less pings, the producer pushes pings (the end anchor's payload) and
// new jobs, and workers pop a few unique jobs at the head: the anchor is
// found among identical payloads, and the queue must end exact.
func TestCopyAdversarialPingsAtTheEnds(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	seeded := f.advSeed(advSegment{n: 700}, advSegment{n: 500, expired: true}, advSegment{n: 3, ping: true})
	var want []string
	removable := map[string]bool{}
	opts := f.copyOpts()
	opts.copyHook = func(phase, list string) error {
		if phase != "before-cutover" {
			return nil
		}
		if err := f.rdb.LPopCount(f.ctx, f.key(), 10).Err(); err != nil {
			t.Error(err)
		}
		f.pushPings(20)
		f.advPushLive(5)
		f.pushPings(2)
		want = f.liveOnly(f.list(f.key()))
		for _, p := range seeded[10:] {
			if id := copyID(p); f.jobs[id].expired {
				removable[id] = true
			}
		}
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if e := f.engine(res); e != "copy" {
		t.Errorf("engine %q, want copy (%s)", e, problemKinds(res))
	}
	f.advCheck(res, removed, want, removable)
	if len(removed) != len(removable) {
		t.Errorf("%d removed, want %d", len(removed), len(removable))
	}
}

// advPopHook is a go-redis hook on the sweep's own client that, once armed,
// has a worker pop n jobs just before the sweep's next INFO memory: the one
// cutover() sends between reading the list's head (observeHead) and running
// cutover.lua. It makes "workers popped more in the meantime" deterministic.
type advPopHook struct {
	f     *copyFixture
	n     int64
	armed atomic.Bool
}

func (h *advPopHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *advPopHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) == 2 && cmd.Name() == "info" && args[1] == "memory" && h.armed.CompareAndSwap(true, false) {
			if err := h.f.rdb.LPopCount(ctx, h.f.key(), int(h.n)).Err(); err != nil {
				h.f.t.Error(err)
			}
		}
		return next(ctx, cmd)
	}
}

func (h *advPopHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestCopyAdversarialPopsInsideTheHeadWindow: the client finds the head
// right (the first run of four pings is where the list starts), then,
// before cutover.lua runs, workers pop that run, a live job and a victim.
// The list now starts with the second run of pings, which the window (the
// record from the client's head, 256 positions) also holds at its offset 0:
// the script's search takes the first offset whose four hashes match, so
// it restores the popped live job, reports the popped victim removed and
// drops pushed pings. The window search must not accept an ambiguous match.
// (The copy ends with jobs, not pings, so that the client's own search for
// the head, which gives up on pings it could also find at the copy's end,
// is unambiguous and the script's search is what is tested.)
func TestCopyAdversarialPopsInsideTheHeadWindow(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	seeded := f.advSeed(advSegment{n: 300}, advSegment{n: 4, ping: true}, advSegment{n: 1}, advSegment{n: 1, expired: true},
		advSegment{n: 4, ping: true}, advSegment{n: 800}, advSegment{n: 3})
	via := redistest.Client(t, f.srv)
	hook := &advPopHook{f: f, n: 6}
	via.AddHook(hook)
	f.via = via
	opts := f.copyOpts()
	armed := false
	opts.copyHook = func(phase, list string) error {
		if phase != "before-cutover" {
			return nil
		}
		if err := f.rdb.LPopCount(f.ctx, f.key(), 300).Err(); err != nil {
			t.Error(err)
		}
		f.pushPings(10)
		hook.armed.Store(true)
		armed = true
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if !armed || hook.armed.Load() {
		t.Fatalf("the pops between the head's read and the cutover never ran (engine %s)", f.engine(res))
	}
	// What the pops left: the seeded jobs from 306 on and the pushed
	// pings, the victims aside (there are none after 306).
	want := append(slices.Clone(seeded[306:]), slices.Repeat([]string{advPing}, 10)...)
	f.advCheck(res, removed, want, map[string]bool{})
}

// advChaseHook pushes a page of new jobs to the list each time the sweep
// appends to its copy outside a pipeline (catchUp's RPUSH), up to max
// times: a producer exactly as fast as the copy's catch-up.
type advChaseHook struct {
	f         *copyFixture
	page, max int
	rounds    atomic.Int32
	mu        sync.Mutex
	pushed    []string
}

func (h *advChaseHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *advChaseHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if args := cmd.Args(); cmd.Name() == "rpush" && len(args) > 1 && strings.Contains(fmt.Sprint(args[1]), ":resque-expire:copy:") &&
			int(h.rounds.Add(1)) <= h.max {
			p := h.f.advPushLive(h.page)
			h.mu.Lock()
			h.pushed = append(h.pushed, p...)
			h.mu.Unlock()
		}
		return err
	}
}

func (h *advChaseHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestCopyAdversarialCatchUpUnbounded: when the tail outgrows what the
// cutover appends at once (retry-tail), catchUp copies it page by page
// until a read comes back short, with no other bound. A producer that
// pushes a page each time catchUp copies one keeps it going for as long
// as the producer lasts (here 300 pages, then it stops so that the test
// ends; a real one need not stop). The copy must give up (or cut over)
// after a bounded catch-up, and the queue end exact either way.
func TestCopyAdversarialCatchUpUnbounded(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	f.seed(1500, copyLayouts["random"])
	initial := f.initialPayloads()
	via := redistest.Client(t, f.srv)
	hook := &advChaseHook{f: f, page: 100, max: 300}
	via.AddHook(hook)
	f.via = via
	var first []string
	opts := f.copyOpts()
	opts.copyHook = func(phase, list string) error {
		if phase == "before-cutover" {
			first = f.advPushLive(400) // > cutoverTail: the cutover asks to catch up
		}
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(f.liveOnly(initial), first...), hook.pushed...)
	removable := map[string]bool{}
	for _, p := range initial {
		if f.jobs[copyID(p)].expired {
			removable[copyID(p)] = true
		}
	}
	f.advCheck(res, removed, want, removable)
	// Chased to the end: catchUp copied every page the producer pushed.
	if n := int(hook.rounds.Load()); n >= hook.max {
		t.Errorf("catchUp copied %d pages, as long as the producer pushed; want it to stop by itself (engine %s; %s)",
			n, f.engine(res), problemKinds(res))
	}
}
