package sweep

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
)

// TestSweepUnderLoad runs a real sweep while workers LPOP at the head and
// producers RPUSH at the tail of the same queues, then accounts for every
// job: each id was popped by a worker, removed by the sweep, or is still
// queued — exactly one of the three. No live job is removed, no expired job
// that was there from the start is missed unless a worker took it, the
// survivors keep their order, and no marker is ever seen.
func TestSweepUnderLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		layout  string
		expired func(q, i int) bool
	}{
		{"interleaved", func(q, i int) bool { return (i*7+q)%13 < 6 || i%2 == 0 && i%5 != 0 }},
		// One TTL: the oldest half expired, at the head, where the run
		// goes with head_trim.lua's LTRIM.
		{"head", func(q, i int) bool { return i < 6000 }},
	} {
		t.Run(tc.layout, func(t *testing.T) {
			t.Parallel()
			sweepUnderLoad(t, tc.layout, tc.expired)
		})
	}
}

func sweepUnderLoad(t *testing.T, layout string, expiredAt func(q, i int) bool) {
	f := newSweepFixture(t)
	const (
		queues       = 2
		initial      = 10000
		workersPerQ  = 2
		producerWait = 150 * time.Microsecond
		workerWait   = 150 * time.Microsecond
	)
	type jobInfo struct {
		queue   int
		ordinal int // push order within its queue
		expired bool
		initial bool
	}
	var mu sync.Mutex
	jobs := map[string]jobInfo{}
	payloadOf := func(q, ordinal int, expired bool) (string, string) {
		id := fmt.Sprintf("q%d-%06d", q, ordinal)
		return id, fmt.Sprintf(`{"class":"StressJob","args":[%d,"%t"],"id":%q}`, ordinal, expired, id)
	}
	idOf := func(payload string) string {
		var p struct{ ID string }
		if err := json.Unmarshal([]byte(payload), &p); err != nil {
			return "?" + payload
		}
		return p.ID
	}

	// Seed: half expired, half live, interleaved irregularly.
	pipe := f.rdb.Pipeline()
	for q := 0; q < queues; q++ {
		name := fmt.Sprintf("stress%d", q)
		pipe.SAdd(f.ctx, f.layout.Queues(), name)
		for i := 0; i < initial; i++ {
			expired := expiredAt(q, i)
			id, p := payloadOf(q, i, expired)
			jobs[id] = jobInfo{queue: q, ordinal: i, expired: expired, initial: true}
			pipe.RPush(f.ctx, f.layout.Queue(name), p)
			d := f.at(time.Hour)
			if expired {
				d = f.at(-time.Hour)
			}
			pipe.Set(f.ctx, f.layout.Expiration(id), d, 0)
			if pipe.Len() > 2000 {
				if _, err := pipe.Exec(f.ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := pipe.Exec(f.ctx); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	popped := make([][]string, queues*workersPerQ)
	for q := 0; q < queues; q++ {
		key := f.layout.Queue(fmt.Sprintf("stress%d", q))
		for w := 0; w < workersPerQ; w++ {
			slot := q*workersPerQ + w
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					v, err := f.rdb.LPop(f.ctx, key).Result()
					if err == nil {
						popped[slot] = append(popped[slot], v)
					} else if err != redis.Nil {
						t.Errorf("worker: %v", err)
						return
					}
					time.Sleep(workerWait)
				}
			}()
		}
		wg.Add(1)
		go func(q int) { // producer: half of the new jobs already expired
			defer wg.Done()
			name := fmt.Sprintf("stress%d", q)
			for n := initial; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				expired := n%2 == 0
				id, p := payloadOf(q, n, expired)
				mu.Lock()
				jobs[id] = jobInfo{queue: q, ordinal: n, expired: expired}
				mu.Unlock()
				d := f.at(time.Hour)
				if expired {
					d = f.at(-time.Hour)
				}
				_, err := f.rdb.TxPipelined(f.ctx, func(p2 redis.Pipeliner) error {
					p2.Set(f.ctx, f.layout.Expiration(id), d, 0)
					p2.RPush(f.ctx, f.layout.Queue(name), p)
					return nil
				})
				if err != nil {
					t.Errorf("producer: %v", err)
					return
				}
				time.Sleep(producerWait)
			}
		}(q)
	}

	var removed []Removal
	start := time.Now()
	res, err := New(f.scanner(func(c *inspect.Config) { c.Batch = 200 })).Run(f.ctx, Options{
		Now: f.clock, OnRemoved: func(r Removal) { removed = append(removed, r) },
	})
	took := time.Since(start)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	t.Logf("sweep took %v: %+v", took, res.Queues)

	const marker = "\x00resque-expire:marker:"
	where := map[string]string{}
	note := func(id, place string) {
		if prev, dup := where[id]; dup {
			t.Errorf("job %s is both %s and %s", id, prev, place)
		}
		where[id] = place
	}
	var nPopped int
	for _, vs := range popped {
		for _, v := range vs {
			if strings.HasPrefix(v, marker) {
				t.Fatalf("a worker popped a marker: %q", v)
			}
			nPopped++
			note(idOf(v), "popped")
		}
	}
	for _, r := range removed {
		info, ok := jobs[r.ID]
		if !ok {
			t.Errorf("removed unknown job %q", r.Payload)
			continue
		}
		if !info.expired {
			t.Errorf("removed live job %s", r.ID)
		}
		note(r.ID, "removed")
	}
	for q := 0; q < queues; q++ {
		left := f.list(f.layout.Queue(fmt.Sprintf("stress%d", q)))
		last := -1
		for _, v := range left {
			if strings.HasPrefix(v, marker) {
				t.Fatalf("marker left in queue %d", q)
			}
			id := idOf(v)
			info, ok := jobs[id]
			if !ok || info.queue != q {
				t.Errorf("queue %d holds unknown job %q", q, v)
				continue
			}
			if info.ordinal <= last {
				t.Errorf("queue %d: job %s (ordinal %d) after ordinal %d: order broken", q, id, info.ordinal, last)
			}
			last = info.ordinal
			note(id, "queued")
		}
	}
	missed := 0
	for id, info := range jobs {
		place, ok := where[id]
		if !ok {
			t.Errorf("job %s vanished: not popped, not removed, not queued", id)
			continue
		}
		if info.initial && info.expired && place == "queued" {
			missed++
		}
	}
	if missed > 0 {
		t.Errorf("%d expired jobs present from the start were neither popped nor removed", missed)
	}
	if len(where) != len(jobs) {
		t.Errorf("accounted for %d ids, %d jobs exist", len(where), len(jobs))
	}
	if res.Removed != int64(len(removed)) {
		t.Errorf("result says %d removed, OnRemoved saw %d", res.Removed, len(removed))
	}
	produced := len(jobs) - queues*initial
	t.Logf("%d jobs: %d popped, %d removed (already gone %d, changed %d), %d produced during the sweep",
		len(jobs), nPopped, len(removed), res.AlreadyGone, res.Changed, produced)
	if nPopped == 0 || produced == 0 {
		t.Errorf("no concurrency: %d popped, %d produced", nPopped, produced)
	}
	if took > 10*time.Second {
		t.Errorf("sweep took %v", took)
	}
	if trims := commandCalls(t, f.rdb, "lpos"); layout == "head" && trims == 0 {
		t.Error("no run at the head went by head_trim.lua")
	}
}

// commandCalls is how many times Redis ran cmd (INFO commandstats).
func commandCalls(t *testing.T, rdb *redis.Client, cmd string) int {
	t.Helper()
	info := rdb.Info(context.Background(), "commandstats").Val()
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}
