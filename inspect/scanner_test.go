package inspect

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redisserver"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// testNow is the fixed "now" every test scanner judges deadlines against.
var testNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// startRedis starts a throwaway redis-server and returns a client for it.
func startRedis(t *testing.T) *redis.Client {
	t.Helper()
	srv := redistest.Start(t)
	return redistest.Client(t, srv)
}

// flush empties the database between subtests sharing one server.
func flush(t *testing.T, rdb redis.UniversalClient) {
	t.Helper()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
}

// newTestScanner builds a scanner with the "resque" namespace, the fixed
// testNow and batch, customised by mod.
func newTestScanner(t *testing.T, rdb redis.UniversalClient, batch int, mod ...func(*Config)) *Scanner {
	t.Helper()
	cfg := Config{Layout: resque.MustLayout("resque", ""), Batch: batch, Now: func() time.Time { return testNow }}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := NewScanner(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// payloads returns n unique job payloads tagged with prefix.
func payloads(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"class":"Job","args":[%d],"id":"%s%d"}`, from+i, prefix, from+i)
	}
	return out
}

// rpush appends items to key, pipelined.
func rpush(t *testing.T, rdb redis.UniversalClient, key string, items []string) {
	t.Helper()
	ctx := context.Background()
	for len(items) > 0 {
		n := min(len(items), 1000)
		args := make([]any, n)
		for i := range args {
			args[i] = items[i]
		}
		if err := rdb.RPush(ctx, key, args...).Err(); err != nil {
			t.Fatal(err)
		}
		items = items[n:]
	}
}

// scanTally records what a scan visited and what others popped. It is safe for
// concurrent use.
type scanTally struct {
	mu      sync.Mutex
	visited map[string]int
	popped  map[string]bool
	pushed  map[string]bool
	order   []string
}

func newTally() *scanTally {
	return &scanTally{visited: map[string]int{}, popped: map[string]bool{}, pushed: map[string]bool{}}
}

func (tl *scanTally) visit(c *Chunk) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, j := range c.Jobs {
		tl.visited[j.Raw]++
		tl.order = append(tl.order, j.Raw)
	}
}

func (tl *scanTally) seen() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.order)
}

func (tl *scanTally) pop(items []string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, p := range items {
		tl.popped[p] = true
	}
}

func (tl *scanTally) push(items []string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, p := range items {
		tl.pushed[p] = true
	}
}

// check asserts the scanner's promise: every initial payload that nobody
// popped was visited exactly once, nothing was visited twice, and nothing
// was visited that was never in the list.
func (tl *scanTally) check(t *testing.T, initial []string) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	inInitial := make(map[string]bool, len(initial))
	skipped, shown := 0, 0
	for _, p := range initial {
		inInitial[p] = true
		if !tl.popped[p] && tl.visited[p] != 1 {
			skipped++
			if shown++; shown <= 5 {
				t.Errorf("payload %s was never popped but was visited %d times", p, tl.visited[p])
			}
		}
	}
	doubled := 0
	for p, n := range tl.visited {
		if n > 1 {
			doubled++
			if shown++; shown <= 10 {
				t.Errorf("payload %s visited %d times (popped meanwhile: %v)", p, n, tl.popped[p])
			}
		}
		if !inInitial[p] && !tl.pushed[p] {
			t.Errorf("visited %s, which was never in the list", p)
		}
	}
	if skipped > 0 || doubled > 0 {
		t.Errorf("%d never-popped payloads not visited exactly once, %d payloads visited more than once (%d visits, %d popped)",
			skipped, doubled, len(tl.order), len(tl.popped))
	}
}

func lpop(t *testing.T, rdb redis.UniversalClient, key string, n int) []string {
	t.Helper()
	if n <= 0 {
		return nil
	}
	vals, err := rdb.LPopCount(context.Background(), key, n).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Error(err)
	}
	return vals
}

func TestNewScannerValidates(t *testing.T) {
	layout := resque.MustLayout("resque", "")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no layout", Config{}, "layout"},
		{"empty id path segment", Config{Layout: layout, IDPaths: []string{"args..id"}}, "empty segment"},
		{"empty id path", Config{Layout: layout, IDPaths: []string{""}}, "empty id path"},
		{"bad queue glob", Config{Layout: layout, Queues: []string{"[abc"}}, "--queue"},
		{"bad class glob", Config{Layout: layout, Classes: []string{`x\`}}, "--class"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewScanner(nil, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewScanner error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestNewScannerDefaults(t *testing.T) {
	layout := resque.MustLayout("resque", "")
	for _, tt := range []struct{ batch, want int }{{0, DefaultBatch}, {-5, DefaultBatch}, {1, 1}, {250, 250}, {MaxBatch + 1, MaxBatch}} {
		s, err := NewScanner(nil, Config{Layout: layout, Batch: tt.batch})
		if err != nil {
			t.Fatal(err)
		}
		if s.batch != tt.want {
			t.Errorf("Batch %d → %d, want %d", tt.batch, s.batch, tt.want)
		}
		if s.QueueFiltered() {
			t.Error("no --queue must not be queue-filtered")
		}
		if d := time.Since(s.Now()); d < 0 || d > time.Minute {
			t.Errorf("default Now is %v, want time.Now", s.Now())
		}
	}
	s, _ := NewScanner(nil, Config{Layout: layout, Queues: []string{"mail*"}, Now: func() time.Time { return testNow }})
	if !s.QueueFiltered() {
		t.Error("--queue must make the scanner queue-filtered")
	}
	if s.Layout() != layout || s.Client() != nil || !s.Now().Equal(testNow) {
		t.Error("accessors do not return the configuration")
	}
}

// TestScanListQuiet scans lists of every size around the page size with
// nobody else touching them: every item once, in list order, with the
// index it has in the list.
func TestScanListQuiet(t *testing.T) {
	rdb := startRedis(t)
	const batch = 10
	for _, m := range scanMethods(scanStrict, scanAhead) {
		for _, n := range []int{0, 1, 2, 3, 4, batch - 1, batch, batch + 1, 2 * batch, 3*batch + 7} {
			t.Run(fmt.Sprint(m.name, "/", n), func(t *testing.T) {
				testScanListQuiet(t, rdb, m.scan, batch, n)
			})
		}
	}
}

// scanMethod is one of a scanner's ways to scan a list, for the tests that
// hold them all to the same promise.
type scanMethod struct {
	name string
	scan func(*Scanner) func(context.Context, ListRef, Visitor) (ListStats, error)
}

func scanMethods(modes ...scanMode) []scanMethod {
	all := map[scanMode]scanMethod{
		scanStrict:   {"ScanList", func(s *Scanner) func(context.Context, ListRef, Visitor) (ListStats, error) { return s.ScanList }},
		scanAhead:    {"ScanListAhead", func(s *Scanner) func(context.Context, ListRef, Visitor) (ListStats, error) { return s.ScanListAhead }},
		scanRemoving: {"ScanListRemoving", func(s *Scanner) func(context.Context, ListRef, Visitor) (ListStats, error) { return s.ScanListRemoving }},
	}
	var out []scanMethod
	for _, m := range modes {
		out = append(out, all[m])
	}
	return out
}

func testScanListQuiet(t *testing.T, rdb *redis.Client, scan func(*Scanner) func(context.Context, ListRef, Visitor) (ListStats, error), batch, n int) {
	flush(t, rdb)
	s := newTestScanner(t, rdb, batch)
	items := payloads("q", 0, n)
	rpush(t, rdb, "resque:queue:q", items)
	tl := newTally()
	var indexes []int64
	st, err := scan(s)(context.Background(), ListRef{Key: "resque:queue:q", Queue: "q"}, func(_ context.Context, c *Chunk) error {
		if len(c.Jobs) == 0 {
			t.Error("visitor called with an empty page")
		}
		if len(c.Jobs) > batch {
			t.Errorf("page of %d jobs, batch is %d", len(c.Jobs), batch)
		}
		if !c.Now.Equal(testNow) {
			t.Errorf("chunk.Now = %v, want %v", c.Now, testNow)
		}
		for _, j := range c.Jobs {
			indexes = append(indexes, j.Index)
			if j.Queue != "q" {
				t.Errorf("job queue %q, want q", j.Queue)
			}
		}
		tl.visit(c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tl.check(t, items)
	if strings.Join(tl.order, "\n") != strings.Join(items, "\n") {
		t.Error("jobs not visited in list order")
	}
	for i, ix := range indexes {
		if ix != int64(i) {
			t.Fatalf("job %d has Index %d", i, ix)
		}
	}
	wantPages := (n + batch - 1) / batch
	if st.Pages != wantPages || st.Resyncs != 0 {
		t.Errorf("stats = %+v, want %d pages, no resync", st, wantPages)
	}
}

// TestScanListDuplicatePayloads: byte-identical payloads are distinct jobs
// and each is visited once when nobody moves them.
func TestScanListDuplicatePayloads(t *testing.T) {
	rdb := startRedis(t)
	s := newTestScanner(t, rdb, 7)
	var items []string
	for i := 0; i < 100; i++ {
		items = append(items, `{"class":"Same","args":[]}`)
		if i%3 == 0 {
			items = append(items, fmt.Sprintf(`{"class":"Other","args":[%d]}`, i%2))
		}
	}
	rpush(t, rdb, "resque:queue:dup", items)
	var got []string
	_, err := s.ScanList(context.Background(), ListRef{Key: "resque:queue:dup"}, func(_ context.Context, c *Chunk) error {
		for _, j := range c.Jobs {
			got = append(got, j.Raw)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(items, "\n") {
		t.Errorf("visited %d jobs, want the %d in the list, in order", len(got), len(items))
	}
}

// TestScanListPopsBetweenPages pops from the head between two pages (from
// inside the visitor, so the timing is exact) by every amount that sends
// the scanner down a different path: the first quarter-page look-back, the
// widened look-backs, the backwards paging of the far look-back, losing
// everything it has seen (resync), and losing all but the tail of its
// anchor.
func TestScanListPopsBetweenPages(t *testing.T) {
	rdb := startRedis(t)
	const batch = 100
	tests := []struct {
		name  string
		total int
		// after page atPage, pop this many (seen is what the scan has
		// visited so far).
		atPage  int
		pop     func(seen int) int
		resyncs int // -1: don't care
	}{
		{"one", 1000, 1, func(int) int { return 1 }, 0},
		{"quarter page", 1000, 3, func(int) int { return batch / 4 }, 0},
		{"just past the first look-back", 1000, 3, func(int) int { return batch/4 + 1 }, 0},
		{"widened look-back", 1000, 5, func(int) int { return 100 }, 0},
		{"widest look-back", 2000, 8, func(int) int { return 390 }, 0},
		{"far look-back: more than four pages, not all", 3000, 10, func(int) int { return 550 }, 0},
		{"far look-back: all but the last page", 3000, 10, func(seen int) int { return seen - batch }, 0},
		{"resync: everything seen", 1000, 4, func(seen int) int { return seen }, 1},
		{"resync: everything seen and some unseen", 1000, 4, func(seen int) int { return seen + 30 }, 1},
		{"resync after the far look-back", 3000, 10, func(seen int) int { return seen + 5 }, 1},
		{"everything seen but the last", 1000, 4, func(seen int) int { return seen - 1 }, -1},
		{"everything seen but the last two", 1000, 4, func(seen int) int { return seen - 2 }, -1},
		{"far: everything seen but the last", 3000, 10, func(seen int) int { return seen - 1 }, -1},
		{"far: everything seen but the last two", 3000, 10, func(seen int) int { return seen - 2 }, -1},
		{"everything", 1000, 2, func(int) int { return 1000 }, -1},
		{"on the first page", 1000, 1, func(seen int) int { return seen - 1 }, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flush(t, rdb)
			const key = "resque:queue:pops"
			s := newTestScanner(t, rdb, batch)
			items := payloads("p", 0, tt.total)
			rpush(t, rdb, key, items)
			tl := newTally()
			page := 0
			st, err := s.ScanList(context.Background(), ListRef{Key: key}, func(_ context.Context, c *Chunk) error {
				tl.visit(c)
				if page++; page == tt.atPage {
					tl.pop(lpop(t, rdb, key, tt.pop(tl.seen())))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			tl.check(t, items)
			if tt.resyncs >= 0 && st.Resyncs != tt.resyncs {
				t.Errorf("Resyncs = %d, want %d", st.Resyncs, tt.resyncs)
			}
		})
	}
}

// TestScanListPushToHead: a job pushed back to the head of the queue (as
// findAnchor explicitly allows for) must not end the scan early.
func TestScanListPushToHead(t *testing.T) {
	rdb := startRedis(t)
	const key, batch = "resque:queue:head", 100
	for _, n := range []int{1, 5, batch - 1, batch} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			flush(t, rdb)
			s := newTestScanner(t, rdb, batch)
			items := payloads("h", 0, 1000)
			rpush(t, rdb, key, items)
			tl := newTally()
			page := 0
			st, err := s.ScanList(context.Background(), ListRef{Key: key}, func(_ context.Context, c *Chunk) error {
				tl.visit(c)
				if page++; page == 2 {
					front := payloads("front", 0, n)
					tl.push(front)
					args := make([]any, len(front))
					for i := range front {
						args[i] = front[i]
					}
					if err := rdb.LPush(context.Background(), key, args...).Err(); err != nil {
						t.Error(err)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			tl.check(t, items)
			if st.Resyncs != 0 {
				t.Errorf("Resyncs = %d, want 0", st.Resyncs)
			}
		})
	}
}

// sweepVisitor returns a visitor that behaves like a sweep: it removes from
// the list (LREM) every job of the page that doom picks, and marks it in
// chunk.Removed, after recording the visit. If the job was popped
// meanwhile, LREM finds nothing, and like the real sweep ("already gone")
// it is still marked removed.
func sweepVisitor(t *testing.T, rdb redis.UniversalClient, key string, tl *scanTally, doom func(raw string) bool, after func()) Visitor {
	return func(ctx context.Context, c *Chunk) error {
		tl.visit(c)
		c.Removed = make([]bool, len(c.Jobs))
		pipe := rdb.Pipeline()
		for i, j := range c.Jobs {
			if doom(j.Raw) {
				pipe.LRem(ctx, key, 1, j.Raw)
				c.Removed[i] = true
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Error(err)
		}
		if after != nil {
			after()
		}
		return nil
	}
}

// TestScanListSweepRemoves: a visitor removing jobs from the pages it has
// seen (every kind of pattern, including whole pages and the page's tail,
// where the anchor would otherwise be), alone and with pops between pages,
// read strictly after each visit (ScanList), read ahead and dropped after a
// visit that removed jobs (ScanListAhead), and with the next page read
// before the visit and decoded during it, or read ahead after a visit that
// removed nothing (ScanListRemoving).
func TestScanListSweepRemoves(t *testing.T) {
	for _, m := range scanMethods(scanStrict, scanAhead, scanRemoving) {
		t.Run(m.name, func(t *testing.T) { testScanListSweepRemoves(t, m.scan) })
	}
}

func testScanListSweepRemoves(t *testing.T, scan func(*Scanner) func(context.Context, ListRef, Visitor) (ListStats, error)) {
	rdb := startRedis(t)
	const key, batch = "resque:queue:sweep", 50
	index := func(raw string) int {
		var i int
		fmt.Sscanf(raw[strings.Index(raw, "[")+1:], "%d", &i)
		return i
	}
	dooms := map[string]func(string) bool{
		"every third":      func(r string) bool { return index(r)%3 == 0 },
		"all":              func(string) bool { return true },
		"whole odd pages":  func(r string) bool { return (index(r)/batch)%2 == 1 },
		"page tails":       func(r string) bool { return index(r)%batch >= batch-4 },
		"all but one/page": func(r string) bool { return index(r)%batch != 7 },
		"none":             func(string) bool { return false },
	}
	pops := map[string]int{"no pops": 0, "pop 3": 3, "pop 40": 40, "pop 260": 260}
	for dname, doom := range dooms {
		for pname, pop := range pops {
			t.Run(dname+"/"+pname, func(t *testing.T) {
				flush(t, rdb)
				s := newTestScanner(t, rdb, batch)
				items := payloads("s", 0, 600)
				rpush(t, rdb, key, items)
				tl := newTally()
				page := 0
				visit := sweepVisitor(t, rdb, key, tl, doom, func() {
					if page++; page%4 == 0 {
						tl.pop(lpop(t, rdb, key, pop))
					}
				})
				_, err := scan(s)(context.Background(), ListRef{Key: key}, func(ctx context.Context, c *Chunk) error {
					// Without pops, every job is where its Index says.
					for _, i := range []int{0, len(c.Jobs) - 1} {
						if got := rdb.LIndex(ctx, key, c.Jobs[i].Index).Val(); pop == 0 && got != c.Jobs[i].Raw {
							t.Errorf("job at index %d is %q, the page says %q", c.Jobs[i].Index, got, c.Jobs[i].Raw)
						}
					}
					return visit(ctx, c)
				})
				if err != nil {
					t.Fatal(err)
				}
				tl.check(t, items)
				// What is left is exactly what nobody removed or popped.
				left, err := rdb.LRange(context.Background(), key, 0, -1).Result()
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range left {
					if doom(p) && tl.visited[p] == 1 {
						t.Errorf("%s survived its removal", p)
					}
				}
			})
		}
	}
}

// lrangeHook calls after with the reply of every LRANGE the scanner sends,
// which lets a test act at the worst possible moment: right after the
// scanner has read, before it reads again.
type lrangeHook struct{ after func(items []string) }

func (h lrangeHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h lrangeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h lrangeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if c, ok := cmd.(*redis.StringSliceCmd); ok && err == nil && cmd.Name() == "lrange" {
			h.after(c.Val())
		}
		return err
	}
}

// hookedClient returns a second client to srv whose LRANGE replies go
// through after.
func hookedClient(t *testing.T, srv *redisserver.Server, after func([]string)) *redis.Client {
	c := redistest.Client(t, srv)
	c.AddHook(lrangeHook{after: after})
	return c
}

// TestScanListPopRightAfterFarLookBack: the far look-back pages backwards
// until it finds its anchor, then reads the next page. Workers popping in
// between must not make it skip the jobs that follow the anchor.
func TestScanListPopRightAfterFarLookBack(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	const key, batch = "resque:queue:gap", 100
	items := payloads("g", 0, 3000)
	rpush(t, rdb, key, items)
	tl := newTally()
	var armed bool
	var lastSeen string
	scanRdb := hookedClient(t, srv, func(reply []string) {
		if !armed {
			return
		}
		for _, r := range reply {
			if r == lastSeen { // the scanner has just found its place
				armed = false
				tl.pop(lpop(t, rdb, key, 10))
				return
			}
		}
	})
	s := newTestScanner(t, scanRdb, batch)
	page := 0
	st, err := s.ScanList(context.Background(), ListRef{Key: key}, func(_ context.Context, c *Chunk) error {
		tl.visit(c)
		if page++; page == 10 {
			tl.pop(lpop(t, rdb, key, 500)) // more than four pages: far look-back
			lastSeen = c.Jobs[len(c.Jobs)-1].Raw
			armed = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if armed {
		t.Fatal("the scanner never re-read its anchor")
	}
	tl.check(t, items)
	if st.Resyncs != 0 {
		t.Errorf("Resyncs = %d, want 0", st.Resyncs)
	}
}

// TestScanListChaos pops a random number of jobs (seeded, so reproducible)
// right after every LRANGE the scanner sends, sometimes many pages at once,
// while a sweep-like visitor removes some of every page and producers push
// at the tail. Whatever the interleaving, nothing unpopped is skipped and
// nothing is visited twice.
func TestScanListChaos(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	const key = "resque:queue:chaos"
	for _, m := range scanMethods(scanStrict, scanAhead, scanRemoving) {
		for seed := int64(1); seed <= 8; seed++ {
			t.Run(fmt.Sprint(m.name, "/seed", seed), func(t *testing.T) {
				testScanListChaos(t, srv, rdb, m.scan, key, seed)
			})
		}
	}
}

func testScanListChaos(t *testing.T, srv *redisserver.Server, rdb *redis.Client, scan func(*Scanner) func(context.Context, ListRef, Visitor) (ListStats, error), key string, seed int64) {
	flush(t, rdb)
	r := rand.New(rand.NewSource(seed))
	batch := []int{5, 20, 64, 100}[seed%4]
	items := payloads("c", 0, 2500)
	rpush(t, rdb, key, items)
	tl := newTally()
	pushed := 0
	scanRdb := hookedClient(t, srv, func([]string) {
		var n int
		switch x := r.Intn(100); {
		case x < 50:
			n = 0
		case x < 85:
			n = r.Intn(batch)
		case x < 97:
			n = batch + r.Intn(6*batch)
		default:
			n = r.Intn(40 * batch)
		}
		tl.pop(lpop(t, rdb, key, n))
		if r.Intn(3) == 0 {
			more := payloads("c-pushed-", pushed, 1+r.Intn(batch))
			pushed += len(more)
			tl.push(more)
			rpush(t, rdb, key, more)
		}
	})
	s := newTestScanner(t, scanRdb, batch)
	doom := func(raw string) bool { return crc32.ChecksumIEEE([]byte(raw))%4 == 0 }
	if _, err := scan(s)(context.Background(), ListRef{Key: key}, sweepVisitor(t, rdb, key, tl, doom, nil)); err != nil {
		t.Fatal(err)
	}
	tl.check(t, items)
}

// TestScanListConcurrentPopPush is the real thing: goroutines LPOP at the
// head and RPUSH at the tail while ScanList reads 20k unique payloads in
// pages of 100, with a plain visitor and with one that removes jobs like a
// sweep; ScanListAhead with a plain visitor, ScanListRemoving with the
// sweep's.
func TestScanListConcurrentPopPush(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	// Producers stop after maxPushed jobs, or the scan would chase the tail
	// for as long as they push faster than it reads.
	const key, total, batch, maxPushed = "resque:queue:busy", 20000, 100, 3000
	tests := []struct {
		name string
		// poppers goroutines LPOP one job at a time, except every
		// burstEvery-th time a burst of up to burst jobs (a fleet of
		// workers waking up).
		poppers, burstEvery, burst int
		sweep                      bool
		mode                       scanMode
	}{
		{"pops and pushes", 1, 64, 250, false, scanStrict},
		{"sweep, pops and pushes", 1, 64, 250, true, scanStrict},
		{"poppers outrun the scan", 3, 1, 12, true, scanStrict},
		{"pops and pushes, read ahead", 1, 64, 250, false, scanAhead},
		{"poppers outrun the scan, read ahead", 3, 1, 12, false, scanAhead},
		{"sweep, pops and pushes, removing scan", 1, 64, 250, true, scanRemoving},
		{"poppers outrun the removing scan", 3, 1, 12, true, scanRemoving},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flush(t, rdb)
			items := payloads("b", 0, total)
			rpush(t, rdb, key, items)
			// Give every job a deadline, so that a page costs one MGET.
			for from := 0; from < total; from += 1000 {
				var kv []any
				for i := from; i < from+1000; i++ {
					kv = append(kv, fmt.Sprintf("resque:job:b%d:expiration", i), "1700000000")
				}
				if err := rdb.MSet(context.Background(), kv...).Err(); err != nil {
					t.Fatal(err)
				}
			}
			tl := newTally()
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for g := 0; g < tt.poppers; g++ {
				wg.Add(1)
				c := redistest.Client(t, srv)
				go func(g int) {
					defer wg.Done()
					r := rand.New(rand.NewSource(int64(g)))
					for n := 1; ctx.Err() == nil; n++ {
						count := 1
						if n%tt.burstEvery == 0 {
							count = 1 + r.Intn(tt.burst)
						}
						vals, err := c.LPopCount(ctx, key, count).Result()
						if err != nil && !errors.Is(err, redis.Nil) && ctx.Err() == nil {
							t.Error(err)
							return
						}
						tl.pop(vals)
					}
				}(g)
			}
			wg.Add(1)
			c := redistest.Client(t, srv)
			go func() {
				defer wg.Done()
				for n := 0; ctx.Err() == nil && n < maxPushed; n += 3 {
					more := payloads("b-pushed-", n, 3)
					tl.push(more) // before the push: the scan may see it at once
					if err := c.RPush(ctx, key, more[0], more[1], more[2]).Err(); err != nil && ctx.Err() == nil {
						t.Error(err)
						return
					}
				}
			}()
			s := newTestScanner(t, redistest.Client(t, srv), batch)
			var visit Visitor = func(_ context.Context, c *Chunk) error { tl.visit(c); return nil }
			if tt.sweep {
				// One in ten: LREM walks the list from the head, and Redis is
				// single-threaded.
				visit = sweepVisitor(t, rdb, key, tl, func(raw string) bool { return crc32.ChecksumIEEE([]byte(raw))%10 == 0 }, nil)
			}
			st, err := scanMethods(tt.mode)[0].scan(s)(context.Background(), ListRef{Key: key}, visit)
			stop()
			wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			tl.check(t, items)
			t.Logf("%d pages, %d resyncs, %d visited, %d popped, %d pushed", st.Pages, st.Resyncs, len(tl.order), len(tl.popped), len(tl.pushed))
		})
	}
}

func TestScanListErrors(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	s := newTestScanner(t, rdb, 10)
	rpush(t, rdb, "resque:queue:list", payloads("e", 0, 50))

	t.Run("wrong type", func(t *testing.T) {
		rdb.HSet(ctx, "resque:queue:hash", "a", "b")
		_, err := s.ScanList(ctx, ListRef{Key: "resque:queue:hash"}, func(context.Context, *Chunk) error {
			t.Error("visitor called for a hash")
			return nil
		})
		if !IsWrongType(err) || !errors.Is(err, ErrWrongType) {
			t.Fatalf("err = %v, want ErrWrongType", err)
		}
		if !strings.Contains(err.Error(), "resque:queue:hash") {
			t.Errorf("error %q does not name the key", err)
		}
	})
	t.Run("missing list", func(t *testing.T) {
		st, err := s.ScanList(ctx, ListRef{Key: "resque:queue:nothing"}, func(context.Context, *Chunk) error {
			t.Error("visitor called for a missing list")
			return nil
		})
		if err != nil || st.Pages != 0 {
			t.Fatalf("ScanList = %+v, %v", st, err)
		}
	})
	t.Run("visitor error stops the scan", func(t *testing.T) {
		boom := errors.New("boom")
		calls := 0
		st, err := s.ScanList(ctx, ListRef{Key: "resque:queue:list"}, func(context.Context, *Chunk) error {
			if calls++; calls == 2 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || calls != 2 || st.Pages != 2 {
			t.Fatalf("err = %v after %d calls (%+v), want boom after 2", err, calls, st)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		calls := 0
		_, err := s.ScanList(cctx, ListRef{Key: "resque:queue:list"}, func(context.Context, *Chunk) error {
			calls++
			cancel()
			return nil
		})
		if !errors.Is(err, context.Canceled) || calls != 1 {
			t.Fatalf("err = %v after %d calls, want context.Canceled after 1", err, calls)
		}
	})
}

// stateCase is one job and what its expiration key holds.
type stateCase struct {
	name    string
	payload string
	// setup writes the expiration key (nil: none).
	setup     func(ctx context.Context, rdb redis.UniversalClient)
	state     State
	id        string // expected id ("" for none)
	reason    string // substring of the expected reason
	deadline  time.Time
	class     string // expected class, when set
	enqueued  time.Time
	hasKey    bool // HasDeadline
	rawDeadln string
}

func setDeadline(id, v string) func(context.Context, redis.UniversalClient) {
	return func(ctx context.Context, rdb redis.UniversalClient) {
		rdb.Set(ctx, "resque:job:"+id+":expiration", v, 0)
	}
}

func obj(id string) string { return `{"class":"Job","args":[],"id":` + jsonString(id) + `}` }

func jsonString(s string) string {
	b := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
	return `"` + b + `"`
}

// TestJobStates puts one job of every state and every deadline format in
// one list, scans it in small pages, and checks what the scanner concluded
// about each.
func TestJobStates(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	past := time.Unix(1700000000, 0).UTC()
	future := testNow.Add(time.Hour)
	big := `{"class":"Big","id":"big","args":["` + strings.Repeat("x", 4<<20) + `"]}`
	cases := []stateCase{
		// Deadline formats.
		{name: "expired, integer seconds", payload: obj("s1"), setup: setDeadline("s1", "1700000000"), state: StateExpired, id: "s1", deadline: past, hasKey: true, rawDeadln: "1700000000"},
		{name: "live, integer seconds", payload: obj("s2"), setup: setDeadline("s2", fmt.Sprint(future.Unix())), state: StateLive, id: "s2", deadline: future},
		{name: "expired exactly now", payload: obj("s3"), setup: setDeadline("s3", fmt.Sprint(testNow.Unix())), state: StateExpired, id: "s3", deadline: testNow},
		{name: "live one second ahead", payload: obj("s4"), setup: setDeadline("s4", fmt.Sprint(testNow.Unix()+1)), state: StateLive, id: "s4", deadline: testNow.Add(time.Second)},
		{name: "expired, milliseconds", payload: obj("m1"), setup: setDeadline("m1", "1700000000123"), state: StateExpired, id: "m1", deadline: time.UnixMilli(1700000000123).UTC()},
		{name: "live, milliseconds", payload: obj("m2"), setup: setDeadline("m2", fmt.Sprint(future.UnixMilli())), state: StateLive, id: "m2", deadline: future},
		{name: "expired, decimal seconds", payload: obj("d1"), setup: setDeadline("d1", "1700000000.25"), state: StateExpired, id: "d1", deadline: past.Add(250 * time.Millisecond)},
		{name: "live, decimal seconds", payload: obj("d2"), setup: setDeadline("d2", fmt.Sprint(future.Unix())+".5"), state: StateLive, id: "d2", deadline: future.Add(500 * time.Millisecond)},
		{name: "expired, RFC 3339", payload: obj("r1"), setup: setDeadline("r1", "2023-11-14T22:13:20Z"), state: StateExpired, id: "r1", deadline: past},
		{name: "live, RFC 3339 with offset", payload: obj("r2"), setup: setDeadline("r2", "2024-06-01T14:30:00+02:00"), state: StateLive, id: "r2", deadline: testNow.Add(30 * time.Minute)},
		{name: "deadline with surrounding space", payload: obj("w1"), setup: setDeadline("w1", " 1700000000\n"), state: StateExpired, id: "w1", deadline: past},
		// Rejected deadlines.
		{name: "empty deadline", payload: obj("x1"), setup: setDeadline("x1", ""), state: StateInvalid, id: "x1", reason: "empty", hasKey: true},
		{name: "zero deadline", payload: obj("x2"), setup: setDeadline("x2", "0"), state: StateInvalid, id: "x2", reason: "positive"},
		{name: "negative deadline", payload: obj("x3"), setup: setDeadline("x3", "-1700000000"), state: StateInvalid, id: "x3", reason: "positive"},
		{name: "NaN deadline", payload: obj("x4"), setup: setDeadline("x4", "NaN"), state: StateInvalid, id: "x4", reason: "unparseable"},
		{name: "Inf deadline", payload: obj("x5"), setup: setDeadline("x5", "+Inf"), state: StateInvalid, id: "x5", reason: "unparseable"},
		{name: "hex deadline", payload: obj("x6"), setup: setDeadline("x6", "0x6553f100"), state: StateInvalid, id: "x6", reason: "unparseable"},
		{name: "exponent deadline", payload: obj("x7"), setup: setDeadline("x7", "1.7e9"), state: StateInvalid, id: "x7", reason: "unparseable"},
		{name: "deadline after 9999", payload: obj("x8"), setup: setDeadline("x8", "10000-01-01T00:00:00Z"), state: StateInvalid, id: "x8", reason: "unparseable"},
		{name: "milliseconds after 9999", payload: obj("x9"), setup: setDeadline("x9", "253402300800000"), state: StateInvalid, id: "x9", reason: "9999"},
		{name: "garbage deadline", payload: obj("xa"), setup: setDeadline("xa", "tomorrow-ish"), state: StateInvalid, id: "xa", reason: "tomorrow-ish", rawDeadln: "tomorrow-ish", hasKey: true},
		{name: "binary deadline", payload: obj("xb"), setup: setDeadline("xb", "\x00\xff\xfe"), state: StateInvalid, id: "xb", reason: "unparseable"},
		// Expiration keys of the wrong type.
		{name: "expiration key is a hash", payload: obj("h1"), setup: func(ctx context.Context, rdb redis.UniversalClient) {
			rdb.HSet(ctx, "resque:job:h1:expiration", "at", "1700000000")
		}, state: StateInvalid, id: "h1", reason: "hash"},
		{name: "expiration key is a list", payload: obj("h2"), setup: func(ctx context.Context, rdb redis.UniversalClient) {
			rdb.RPush(ctx, "resque:job:h2:expiration", "1700000000")
		}, state: StateInvalid, id: "h2", reason: "list"},
		{name: "expiration key is a set", payload: obj("h3"), setup: func(ctx context.Context, rdb redis.UniversalClient) {
			rdb.SAdd(ctx, "resque:job:h3:expiration", "1700000000")
		}, state: StateInvalid, id: "h3", reason: "set"},
		{name: "expiration key is a zset", payload: obj("h4"), setup: func(ctx context.Context, rdb redis.UniversalClient) {
			rdb.ZAdd(ctx, "resque:job:h4:expiration", redis.Z{Score: 1, Member: "1700000000"})
		}, state: StateInvalid, id: "h4", reason: "zset"},
		// Missing and unidentified.
		{name: "missing", payload: obj("n1"), state: StateMissing, id: "n1"},
		{name: "no id at all", payload: `{"class":"Job","args":[1]}`, state: StateUnidentified, reason: "no id"},
		{name: "empty id", payload: `{"class":"Job","args":[2],"id":""}`, state: StateUnidentified},
		{name: "null id", payload: `{"class":"Job","args":[3],"id":null}`, state: StateUnidentified},
		{name: "object id", payload: `{"class":"Job","args":[4],"id":{"v":1}}`, state: StateUnidentified},
		{name: "boolean id", payload: `{"class":"Job","args":[5],"id":true}`, state: StateUnidentified},
		{name: "array id", payload: `{"class":"Job","args":[6],"id":["a"]}`, state: StateUnidentified},
		// Default id paths, in order.
		{name: "jid", payload: `{"class":"Job","args":[],"jid":"j1"}`, setup: setDeadline("j1", "1700000000"), state: StateExpired, id: "j1"},
		{name: "id wins over jid", payload: `{"class":"Job","args":[],"jid":"j2","id":"i2"}`, setup: setDeadline("i2", "1700000000"), state: StateExpired, id: "i2"},
		{name: "empty id falls back to jid", payload: `{"class":"Job","args":[],"jid":"j3","id":""}`, state: StateMissing, id: "j3"},
		{name: "numeric id", payload: `{"class":"Job","args":[],"id":42}`, setup: setDeadline("42", "1700000000"), state: StateExpired, id: "42"},
		{name: "ActiveJob job_id", payload: `{"class":"` + resque.ActiveJobWrapper + `","args":[{"job_class":"SendEmailJob","job_id":"aj1","enqueued_at":"2024-06-01T11:00:00.123Z"}]}`,
			setup: setDeadline("aj1", fmt.Sprint(future.Unix())), state: StateLive, id: "aj1", class: "SendEmailJob", enqueued: time.Date(2024, 6, 1, 11, 0, 0, 123e6, time.UTC)},
		{name: "ActiveJob without job_id", payload: `{"class":"` + resque.ActiveJobWrapper + `","args":[{"job_class":"SendEmailJob"}]}`, state: StateUnidentified, class: "SendEmailJob"},
		{name: "enqueued_at in seconds", payload: `{"class":"Job","args":[],"id":"e1","enqueued_at":1717236000}`, state: StateMissing, id: "e1", enqueued: time.Unix(1717236000, 0).UTC()},
		{name: "created_at in milliseconds", payload: `{"class":"Job","args":[],"id":"e2","created_at":1717236000500}`, state: StateMissing, id: "e2", enqueued: time.UnixMilli(1717236000500).UTC()},
		// Ids with glob and separator characters are literal: the keys a
		// glob would match are decoys.
		{name: "id *", payload: obj("*"), state: StateMissing, id: "*"},
		{name: "id a*", payload: obj("a*"), state: StateMissing, id: "a*"},
		{name: "id a?c", payload: obj("a?c"), state: StateMissing, id: "a?c"},
		{name: "id [ab]c", payload: obj("[ab]c"), setup: setDeadline("[ab]c", "1700000000"), state: StateExpired, id: "[ab]c"},
		{name: "id with [", payload: obj("a[b"), setup: setDeadline("a[b", fmt.Sprint(future.Unix())), state: StateLive, id: "a[b"},
		{name: "id with colons", payload: obj("x:y:z"), setup: setDeadline("x:y:z", "1700000000"), state: StateExpired, id: "x:y:z"},
		{name: "id with spaces", payload: obj("a b c"), setup: setDeadline("a b c", "1700000000"), state: StateExpired, id: "a b c"},
		{name: "id with newline", payload: obj("a\nb"), setup: setDeadline("a\nb", "1700000000"), state: StateExpired, id: "a\nb"},
		{name: "id with backslash", payload: obj(`a\*`), state: StateMissing, id: `a\*`},
		{name: "unicode id", payload: obj("jöb-✓"), setup: setDeadline("jöb-✓", "1700000000"), state: StateExpired, id: "jöb-✓"},
		// Malformed payloads.
		{name: "not JSON", payload: `{"class":"Job","args":[`, state: StateInvalid, reason: "not valid JSON"},
		{name: "JSON array", payload: `["Job", 1]`, state: StateInvalid, reason: "not a JSON object"},
		{name: "JSON string", payload: `"Job"`, state: StateInvalid, reason: "not a JSON object"},
		{name: "JSON null", payload: `null`, state: StateInvalid, reason: "not a JSON object"},
		{name: "empty payload", payload: ``, state: StateInvalid},
		{name: "binary payload", payload: "\x00\x01\xff\xfe{\"id\":\"bin\"}", state: StateInvalid},
		{name: "object then garbage", payload: `{"id":"tg"} trailing`, state: StateInvalid},
		{name: "several-MB payload", payload: big, setup: setDeadline("big", "1700000000"), state: StateExpired, id: "big", class: "Big"},
		{name: "several-MB garbage", payload: "{" + big, state: StateInvalid},
	}
	// Decoys that a glob in an id would match.
	for _, k := range []string{"resque:job:abc:expiration", "resque:job:ac:expiration", "resque:job:bc:expiration", "resque:job:a\\*:exp"} {
		rdb.Set(ctx, k, fmt.Sprint(future.Unix()), 0)
	}
	var list []string
	for _, c := range cases {
		if c.setup != nil {
			c.setup(ctx, rdb)
		}
		list = append(list, c.payload)
	}
	rpush(t, rdb, "resque:queue:states", list)
	s := newTestScanner(t, rdb, 7)
	var jobs []Job
	_, err := s.ScanList(ctx, ListRef{Key: "resque:queue:states", Queue: "states"}, func(_ context.Context, c *Chunk) error {
		jobs = append(jobs, c.Jobs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != len(cases) {
		t.Fatalf("scanned %d jobs, want %d", len(jobs), len(cases))
	}
	for i, c := range cases {
		j := jobs[i]
		t.Run(c.name, func(t *testing.T) {
			if j.State != c.state {
				t.Errorf("state = %s (reason %q), want %s", j.State, j.Reason, c.state)
			}
			if j.ID != c.id {
				t.Errorf("id = %q, want %q", j.ID, c.id)
			}
			if c.reason != "" && !strings.Contains(j.Reason, c.reason) {
				t.Errorf("reason = %q, want it to mention %q", j.Reason, c.reason)
			}
			if c.id != "" && j.ExpirationKey != "resque:job:"+c.id+":expiration" {
				t.Errorf("expiration key = %q", j.ExpirationKey)
			}
			if c.id == "" && j.ExpirationKey != "" {
				t.Errorf("job without id has expiration key %q", j.ExpirationKey)
			}
			if !c.deadline.IsZero() && !j.Deadline.Equal(c.deadline) {
				t.Errorf("deadline = %v, want %v", j.Deadline, c.deadline)
			}
			if (j.State == StateExpired || j.State == StateLive) != !j.Deadline.IsZero() {
				t.Errorf("state %s with deadline %v", j.State, j.Deadline)
			}
			if (j.State == StateExpired || j.State == StateLive || c.hasKey) && !j.HasDeadline {
				t.Error("HasDeadline is false")
			}
			if j.State == StateMissing && (j.HasDeadline || j.DeadlineRaw != "") {
				t.Errorf("missing job with deadline %q", j.DeadlineRaw)
			}
			if c.rawDeadln != "" && j.DeadlineRaw != c.rawDeadln {
				t.Errorf("DeadlineRaw = %q, want %q", j.DeadlineRaw, c.rawDeadln)
			}
			if c.class != "" && j.Class != c.class {
				t.Errorf("class = %q, want %q", j.Class, c.class)
			}
			if !c.enqueued.IsZero() && !j.EnqueuedAt.Equal(c.enqueued) {
				t.Errorf("EnqueuedAt = %v, want %v", j.EnqueuedAt, c.enqueued)
			}
			if j.Raw != c.payload || j.Queue != "states" || j.Index != int64(i) || j.Skipped {
				t.Errorf("job %d: raw/queue/index/skipped = %.40q/%q/%d/%v", i, j.Raw, j.Queue, j.Index, j.Skipped)
			}
			if j.State == StateExpired && j.OverdueBy(testNow) < 0 || j.State == StateLive && j.OverdueBy(testNow) >= 0 {
				t.Errorf("OverdueBy = %v for a %s job", j.OverdueBy(testNow), j.State)
			}
		})
	}
}

// TestCustomIDPathsAndLayout: configured id paths replace the default ones
// (tried in order), and the namespace and template shape the key read.
func TestCustomIDPathsAndLayout(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	layout := resque.MustLayout("", "exp:{id}")
	s := newTestScanner(t, rdb, 2, func(c *Config) {
		c.Layout = layout
		c.IDPaths = []string{"meta.uuid", "args.1.id", "args.0"}
	})
	items := []string{
		`{"class":"A","id":"ignored","meta":{"uuid":"u1"}}`,
		`{"class":"A","args":[0,{"id":"a1"}]}`,
		`{"class":"A","args":["first",{"x":1}]}`,
		`{"class":"A","id":"only-default-path","args":[{"job_id":"no"}]}`,
		`{"class":"A","meta":{"uuid":""},"args":[7,{"id":9}]}`,
	}
	rdb.Set(ctx, "exp:u1", "1700000000", 0)
	rdb.Set(ctx, "exp:a1", "99999999999999", 0) // ms, year 5138
	rdb.Set(ctx, "exp:9", "garbage", 0)
	rpush(t, rdb, "queue:custom", items)
	want := []struct {
		id    string
		state State
	}{{"u1", StateExpired}, {"a1", StateLive}, {"first", StateMissing}, {"", StateUnidentified}, {"9", StateInvalid}}
	got := scanJobs(t, s, ListRef{Key: "queue:custom", Queue: "custom"})
	for i, w := range want {
		if got[i].ID != w.id || got[i].State != w.state {
			t.Errorf("job %d: id %q state %s, want %q %s", i, got[i].ID, got[i].State, w.id, w.state)
		}
		if w.id != "" && got[i].ExpirationKey != "exp:"+w.id {
			t.Errorf("job %d: expiration key %q", i, got[i].ExpirationKey)
		}
	}
}

// TestClassFilterAndDelayedQueue: jobs outside --class are Skipped (matched
// on the wrapped ActiveJob class or the Resque class), and delayed jobs take
// their queue from the payload.
func TestClassFilterAndDelayedQueue(t *testing.T) {
	rdb := startRedis(t)
	s := newTestScanner(t, rdb, 10, func(c *Config) { c.Classes = []string{"Send*"} })
	items := []string{
		`{"class":"SendEmailJob","args":[],"id":"1","queue":"mailers"}`,
		`{"class":"` + resque.ActiveJobWrapper + `","args":[{"job_class":"SendSmsJob","job_id":"2"}],"queue":"sms"}`,
		`{"class":"` + resque.ActiveJobWrapper + `","args":[{"job_class":"Reports::Daily","job_id":"3"}]}`,
		`{"class":"Other","args":[],"id":"4"}`,
		`not json`,
	}
	rpush(t, rdb, "resque:delayed:1717236000", items)
	got := scanJobs(t, s, ListRef{Key: "resque:delayed:1717236000", DelayedAt: 1717236000})
	wantSkipped := []bool{false, false, true, true, true}
	wantQueue := []string{"mailers", "sms", "", "", ""}
	for i := range items {
		if got[i].Skipped != wantSkipped[i] || got[i].Queue != wantQueue[i] {
			t.Errorf("job %d: skipped %v queue %q, want %v %q", i, got[i].Skipped, got[i].Queue, wantSkipped[i], wantQueue[i])
		}
	}
	// The wrapper's own class matches too.
	s2 := newTestScanner(t, rdb, 10, func(c *Config) { c.Classes = []string{"ActiveJob::*"} })
	got = scanJobs(t, s2, ListRef{Key: "resque:delayed:1717236000", DelayedAt: 1717236000})
	for i, want := range []bool{true, false, false, true, true} {
		if got[i].Skipped != want {
			t.Errorf("ActiveJob::* job %d: skipped %v, want %v", i, got[i].Skipped, want)
		}
	}
}

// TestWithDetailsOf: a scanner WithDetailsOf reads the enqueue time only of
// the jobs in the states it wants it of, and every job's class; with a
// class filter, filter matches are recorded for the scanner it came from.
func TestWithDetailsOf(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	items := []string{
		`{"class":"` + resque.ActiveJobWrapper + `","args":[{"job_class":"SendSmsJob","job_id":"e1","enqueued_at":"2024-06-01T10:00:00Z"}]}`,
		`{"class":"Reports::Daily","args":[],"id":"l1","enqueued_at":1717236000}`,
		`{"class":"Reports::Weekly","args":[],"id":"m1","enqueued_at":1717236000}`,
	}
	rpush(t, rdb, "resque:queue:q", items)
	rdb.Set(ctx, "resque:job:e1:expiration", "1700000000", 0)
	rdb.Set(ctx, "resque:job:l1:expiration", fmt.Sprint(testNow.Add(time.Hour).Unix()), 0)
	enqueued := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)
	classes := []string{"SendSmsJob", "Reports::Daily", "Reports::Weekly"}
	for _, tc := range []struct {
		name    string
		of      Details // of the expired job
		classes []string
		at      []bool // per job: EnqueuedAt read
		skipped []bool
	}{
		{name: "enqueue time", of: DetailEnqueuedAt, at: []bool{true, false, false}, skipped: []bool{false, false, false}},
		{name: "none", of: 0, at: []bool{false, false, false}, skipped: []bool{false, false, false}},
		{name: "class filter", of: DetailEnqueuedAt, classes: []string{"Reports::*"}, at: []bool{true, false, false}, skipped: []bool{true, false, false}},
	} {
		base := newTestScanner(t, rdb, 10, func(c *Config) { c.Classes = tc.classes })
		of := func(st State) Details {
			if st == StateExpired {
				return tc.of
			}
			return 0
		}
		got := scanJobs(t, base.WithDetailsOf(of), ListRef{Key: "resque:queue:q", Queue: "q"})
		for i, j := range got {
			if j.Class != classes[i] || !j.EnqueuedAt.IsZero() != tc.at[i] || j.Skipped != tc.skipped[i] {
				t.Errorf("%s: job %d (%s): class %q enqueued_at %v skipped %v, want %q %v %v", tc.name, i, j.State, j.Class, j.EnqueuedAt, j.Skipped, classes[i], tc.at[i], tc.skipped[i])
			}
			if i == 0 && tc.at[0] && !j.EnqueuedAt.Equal(enqueued) {
				t.Errorf("%s: job %d enqueued at %v, want %v", tc.name, i, j.EnqueuedAt, enqueued)
			}
		}
		if tc.classes != nil && len(base.Unmatched()) != 0 {
			t.Errorf("%s: the filter's match was not recorded on the scanner it came from: %v", tc.name, base.Unmatched())
		}
	}
}

// TestWithKnown: the jobs known names come unjudged, in place and in
// order, and their deadlines are not read (a key of another type would
// make one invalid); the others are judged as ever.
func TestWithKnown(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	items := []string{
		`{"class":"A","args":[],"id":"k1"}`,
		`{"class":"A","args":[],"id":"j1"}`,
		`{"class":"A","args":[],"id":"k1"}`, // the same job again: known once only
		`not json`,
	}
	rpush(t, rdb, "resque:queue:q", items)
	rdb.HSet(ctx, "resque:job:k1:expiration", "f", "v") // read, it makes k1 invalid
	rdb.Set(ctx, "resque:job:j1:expiration", "1700000000", 0)
	k := &testKnown{left: map[string]int{items[0]: 1, items[3]: 1}}
	s := newTestScanner(t, rdb, 2).WithKnown(k)
	got := scanJobs(t, s, ListRef{Key: "resque:queue:q", Queue: "q"})
	if !slices.Equal(k.asked, items) {
		t.Errorf("known asked of %q, want every job once in order", k.asked)
	}
	want := []struct {
		known bool
		state State
		id    string
	}{{true, "", ""}, {false, StateExpired, "j1"}, {false, StateInvalid, "k1"}, {true, "", ""}}
	if len(got) != len(want) {
		t.Fatalf("got %d jobs, want %d", len(got), len(want))
	}
	for i, w := range want {
		j := got[i]
		if j.Known != w.known || j.State != w.state || j.ID != w.id || j.Raw != items[i] || j.Index != int64(i) || j.Queue != "q" {
			t.Errorf("job %d: known %v state %q id %q raw %q index %d queue %q, want known %v state %q id %q",
				i, j.Known, j.State, j.ID, j.Raw, j.Index, j.Queue, w.known, w.state, w.id)
		}
	}
}

// scanJobs scans ref with s (ScanList) and returns every job it visited.
func scanJobs(t *testing.T, s *Scanner, ref ListRef) []Job {
	t.Helper()
	var got []Job
	if _, err := s.ScanList(context.Background(), ref, func(_ context.Context, c *Chunk) error {
		got = append(got, c.Jobs...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// testKnown is an inspect.Known over payloads.
type testKnown struct {
	left  map[string]int
	asked []string
	given []string
}

func (k *testKnown) Take(raw string) bool {
	k.asked = append(k.asked, raw)
	if k.left[raw] > 0 {
		k.left[raw]--
		return true
	}
	return false
}

func (k *testKnown) Give(raw string) {
	k.given = append(k.given, raw)
	k.left[raw]++
}

// TestWithKnownPageReadAgain: a removing scan drops the page it read
// during a visit that removed a job sharing a deadline key with it, and
// reads it again; that page's known jobs are given back first, so they
// come Known the second time too.
func TestWithKnownPageReadAgain(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	a := `{"class":"A","args":[1],"id":"a"}`
	items := []string{a, `{"class":"A","args":[],"id":"b"}`, `{"class":"A","args":[],"id":"k"}`, `{"class":"A","args":[2],"id":"a"}`}
	rpush(t, rdb, "resque:queue:q", items)
	rdb.Set(ctx, "resque:job:a:expiration", "1700000000", 0)
	rdb.Set(ctx, "resque:job:k:expiration", "1700000000", 0)
	k := &testKnown{left: map[string]int{items[2]: 1}}
	s := newTestScanner(t, rdb, 2).WithKnown(k)
	var got []Job
	_, err := s.ScanListRemoving(ctx, ListRef{Key: "resque:queue:q", Queue: "q"}, func(ctx context.Context, c *Chunk) error {
		got = append(got, c.Jobs...)
		c.Removed = make([]bool, len(c.Jobs))
		for i, j := range c.Jobs {
			if j.ID == "a" && j.Index == 0 { // the first a: the page after holds its key
				if err := rdb.LRem(ctx, "resque:queue:q", 1, j.Raw).Err(); err != nil {
					return err
				}
				c.Removed[i] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(k.given, []string{items[2]}) {
		t.Errorf("given back %q, want the known job of the dropped page", k.given)
	}
	var known []string
	for _, j := range got {
		if j.Known {
			known = append(known, j.Raw)
		}
		if j.Raw == items[2] && !j.Known {
			t.Errorf("the known job came judged (%s)", j.State)
		}
	}
	if len(got) != 4 || len(known) != 1 {
		t.Errorf("visited %d jobs, %d of them known; want 4, 1", len(got), len(known))
	}
}

func TestParseState(t *testing.T) {
	for _, st := range States {
		if got, ok := ParseState(string(st)); !ok || got != st {
			t.Errorf("ParseState(%q) = %q, %v", st, got, ok)
		}
	}
	for _, bad := range []string{"", "Expired", "dead", "expired "} {
		if _, ok := ParseState(bad); ok {
			t.Errorf("ParseState(%q) accepted", bad)
		}
	}
	if len(States) != 5 {
		t.Errorf("States has %d states, want 5", len(States))
	}
}

// cmdHook calls after with every command the scanner's client completes.
type cmdHook struct{ after func(cmd redis.Cmder) }

func (h cmdHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h cmdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h cmdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.after(cmd)
		return err
	}
}

// TestDeadlineWrittenAfterMGET: a producer that pushes a job and then sets
// its deadline can do so between the page's MGET (nil: no deadline yet)
// and the TYPE check that follows. The job then has a perfectly good string
// deadline; it must not be reported as invalid ("expiration key is a
// string, not a string").
func TestDeadlineWrittenAfterMGET(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	rpush(t, rdb, "resque:queue:race", []string{obj("late-1"), obj("late-2"), obj("hash-1")})
	rdb.HSet(ctx, "resque:job:hash-1:expiration", "at", "1700000000")
	scanRdb := redistest.Client(t, srv)
	scanRdb.AddHook(cmdHook{after: func(cmd redis.Cmder) {
		if cmd.Name() == "mget" {
			rdb.Set(ctx, "resque:job:late-1:expiration", "1700000000", 0)
			rdb.Set(ctx, "resque:job:late-2:expiration", fmt.Sprint(testNow.Add(time.Hour).Unix()), 0)
		}
	}})
	s := newTestScanner(t, scanRdb, 10)
	var jobs []Job
	if _, err := s.ScanList(ctx, ListRef{Key: "resque:queue:race"}, func(_ context.Context, c *Chunk) error {
		jobs = append(jobs, c.Jobs...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs[:2] {
		if j.State == StateInvalid {
			t.Errorf("job %s: invalid (%s), want missing (as MGET read it) or its new deadline's state", j.ID, j.Reason)
		}
	}
	if jobs[2].State != StateInvalid || !strings.Contains(jobs[2].Reason, "hash") {
		t.Errorf("hash expiration key: %s (%s), want invalid", jobs[2].State, jobs[2].Reason)
	}
}

// TestPagesAreBoundedInBytes: large payloads are read a few at a time (the
// first page sized by the first payload), so
// that no LRANGE moves more than about MaxPageBytes; small ones a whole
// page at a time.
func TestPagesAreBoundedInBytes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		size, want int
	}{{100, DefaultBatch}, {10 << 10, 51}, {100 << 10, 5}, {1 << 20, 4}, {4 << 20, 4}} {
		items := []string{strings.Repeat("x", tc.size), strings.Repeat("y", tc.size)}
		if got := pageFor(DefaultBatch, items); got != tc.want {
			t.Errorf("payloads of %d bytes: page of %d, want %d", tc.size, got, tc.want)
		}
	}
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	layout := resque.MustLayout("resque", "")
	pad := strings.Repeat("p", 100<<10)
	for i := 0; i < 60; i++ {
		rdb.RPush(ctx, layout.Queue("big"), fmt.Sprintf(`{"class":"X","args":[%q],"id":"b%d"}`, pad, i))
	}
	s, err := NewScanner(rdb, Config{Layout: layout})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	_, err = s.ScanList(ctx, ListRef{Key: layout.Queue("big"), Queue: "big"}, func(_ context.Context, c *Chunk) error {
		if bytes := len(c.Jobs) * len(pad); bytes > MaxPageBytes+len(pad)*2 {
			t.Errorf("a page of %d jobs, %d bytes", len(c.Jobs), bytes)
		}
		seen += len(c.Jobs)
		return nil
	})
	if err != nil || seen != 60 {
		t.Fatalf("scanned %d of 60: %v", seen, err)
	}
}

// TestScanListAheadDropsAndStops: a visit that removes jobs drops the pages
// read ahead of it, and their known jobs are given back first, so that each
// job comes Known when it is visited; a visit's error stops the scan with
// no read left running.
func TestScanListAheadDropsAndStops(t *testing.T) {
	rdb := startRedis(t)
	ctx := context.Background()
	const key = "resque:queue:q"
	items := payloads("k", 0, 60)
	rpush(t, rdb, key, items)
	k := &testKnown{left: map[string]int{}}
	for _, it := range items {
		k.left[it] = 1
	}
	s := newTestScanner(t, rdb, 4).WithKnown(k)
	var got []string
	page := 0
	_, err := s.ScanListAhead(ctx, ListRef{Key: key, Queue: "q"}, func(ctx context.Context, c *Chunk) error {
		c.Removed = make([]bool, len(c.Jobs))
		for i, j := range c.Jobs {
			got = append(got, j.Raw)
			if !j.Known {
				t.Errorf("job %s came judged", j.Raw)
			}
			if page%3 == 1 && i == 0 {
				if err := rdb.LRem(ctx, key, 1, j.Raw).Err(); err != nil {
					return err
				}
				c.Removed[i] = true
			}
		}
		page++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, items) {
		t.Errorf("visited %d jobs, want the %d in order", len(got), len(items))
	}
	if len(k.given) == 0 {
		t.Error("no known job given back: no page read ahead was dropped")
	}

	before := runtime.NumGoroutine()
	stopAt := errors.New("stop here")
	page = 0
	_, err = newTestScanner(t, rdb, 4).ScanListAhead(ctx, ListRef{Key: key, Queue: "q"}, func(context.Context, *Chunk) error {
		if page++; page == 3 {
			return stopAt
		}
		return nil
	})
	if !errors.Is(err, stopAt) || page != 3 {
		t.Errorf("scan ended with %v after %d pages, want the visit's error after 3", err, page)
	}
	// A goroutine that has closed its channels may take a moment to be
	// gone: look again for a while, as goleak does.
	n := runtime.NumGoroutine()
	for wait := time.Millisecond; n > before && wait < time.Second; wait *= 2 {
		time.Sleep(wait)
		n = runtime.NumGoroutine()
	}
	if n > before {
		t.Errorf("%d goroutines after the scan, %d before: a read-ahead outlived it", n, before)
	}
}

// failMGET fails every MGET, as a Redis error would.
type failMGET struct{}

func (failMGET) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failMGET) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (failMGET) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "mget" {
			err := errors.New("ERR injected")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

// TestWithKnownPageLost: a page whose deadlines cannot be read is lost
// (a read-ahead drops the error with the page), so the known jobs it took
// are given back, to come Known when the page is read again.
func TestWithKnownPageLost(t *testing.T) {
	rdb := startRedis(t)
	rdb.AddHook(failMGET{})
	items := []string{`{"class":"A","args":[],"id":"k"}`, `{"class":"A","args":[],"id":"j"}`}
	k := &testKnown{left: map[string]int{items[0]: 1}}
	s := newTestScanner(t, rdb, 10).WithKnown(k)
	if _, err := s.buildChunk(context.Background(), ListRef{Key: "resque:queue:q", Queue: "q"}, 0, items); err == nil {
		t.Fatal("the page was built without its deadlines")
	}
	if !slices.Equal(k.given, items[:1]) || k.left[items[0]] != 1 {
		t.Errorf("given back %q (left %d), want the known job back", k.given, k.left[items[0]])
	}
}
