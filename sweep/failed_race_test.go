package sweep

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
)

// The failed list as resque-web and Resque's API change it, command for
// command as resque 3.0's lib/resque/data_store.rb and
// lib/resque/failure/redis.rb do. Both address an entry by its index.

// resqueRemove is Resque::Failure.remove(i): LSET failed i "" and then
// LREM failed 1 "" (remove_from_failed_queue). Ruby raises when LSET's
// index is out of range; so does this.
func resqueRemove(ctx context.Context, rdb redis.Cmdable, key string, i int64) (int64, error) {
	if err := rdb.LSet(ctx, key, i, "").Err(); err != nil {
		return 0, err
	}
	return rdb.LRem(ctx, key, 1, "").Result()
}

// resqueRequeue is Resque::Failure.requeue(i): item = LINDEX failed i,
// item["retried_at"] = now, LSET failed i item (update_item_in_failed_queue),
// then Job.create: RPUSH queue:<q> {"class","args"} with SADD queues. It
// fails (Ruby: NoMethodError on nil) when the index is past the end.
func resqueRequeue(ctx context.Context, rdb redis.Cmdable, ns, key string, i int64, between func()) (string, error) {
	item, err := rdb.LIndex(ctx, key, i).Result()
	if err != nil {
		return "", err
	}
	if between != nil {
		between()
	}
	retried := strings.TrimSuffix(item, "}") + `,"retried_at":"` + time.Now().UTC().Format("2006/01/02 15:04:05 UTC") + `"}`
	if err := rdb.LSet(ctx, key, i, retried).Err(); err != nil {
		return "", err
	}
	rdb.SAdd(ctx, ns+":queues", "q")
	return retried, rdb.RPush(ctx, ns+":queue:q", `{"class":"X","args":[]}`).Err()
}

// failedRaceFixture: n failure entries alternately expired (ids x..) and
// live (ids l..), in Resque's format.
func (f *sweepFixture) failedRaceFixture(n int) []string {
	f.t.Helper()
	var entries []string
	pipe := f.rdb.Pipeline()
	for i := 0; i < n; i++ {
		id, deadline := fmt.Sprintf("l%04d", i), f.at(time.Hour)
		if i%2 == 0 {
			id, deadline = fmt.Sprintf("x%04d", i), f.at(-time.Hour)
		}
		e := resqueFailure(f.job(id, "X"), "q", "RuntimeError", f.now.Add(-time.Hour))
		entries = append(entries, e)
		pipe.RPush(f.ctx, f.layout.Failed(), e)
		pipe.Set(f.ctx, f.layout.Expiration(id), deadline, 0)
	}
	if _, err := pipe.Exec(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	return entries
}

// TestFailedIndexShift pins down, with the real command sequences, what a
// sweep's removals do to resque-web's remove-by-index and requeue when they
// interleave (docs/sweep.md, "The failed list and resque-web"):
//
//   - remove(i) with an index read before the sweep removes whatever entry
//     is at i now: the entry k places further, k being the number of
//     entries the sweep removed before i (or fails, past the end);
//   - a remove(i) whose LSET ran before the sweep and whose LREM after
//     removes the right entry: the sweep never removes the "" placeholder;
//   - requeue(i) split by the sweep (LINDEX before, LSET after) writes the
//     entry it read over its neighbour: one entry duplicated, one lost.
func TestFailedIndexShift(t *testing.T) {
	t.Parallel()
	onlyFailed := Options{Failed: true, OnlyFailed: true}
	setup := func(t *testing.T) (*sweepFixture, []string) {
		f := newSweepFixture(t)
		return f, f.failedRaceFixture(3) // x0000 (expired), l0001, x0002 (expired)
	}
	t.Run("stale remove hits the next entry", func(t *testing.T) {
		t.Parallel()
		f, e := setup(t)
		f.rdb.Set(f.ctx, f.layout.Expiration("x0002"), f.at(time.Hour), 0) // live now
		// resque-web showed l0001 at index 1; the sweep removes x0000.
		f.mustSweep(onlyFailed, nil)
		if n, err := resqueRemove(f.ctx, f.rdb, f.layout.Failed(), 1); err != nil || n != 1 {
			t.Fatalf("remove(1): %d %v", n, err)
		}
		if got := f.list(f.layout.Failed()); !slices.Equal(got, []string{e[1]}) {
			t.Fatalf("after remove(1): %q; want l0001 kept and x0002 (the entry at index 1 now) removed", got)
		}
		// Past the end, Resque's LSET fails and nothing changes.
		if _, err := resqueRemove(f.ctx, f.rdb, f.layout.Failed(), 2); err == nil {
			t.Fatalf("remove(2) past the end: want Redis's index out of range")
		}
	})
	t.Run("remove split by the sweep", func(t *testing.T) {
		t.Parallel()
		f, e := setup(t)
		key := f.layout.Failed()
		f.rdb.LSet(f.ctx, key, 1, "") // remove(1): LSET ...
		res, _ := f.mustSweep(onlyFailed, nil)
		if res.Removed != 2 {
			t.Fatalf("sweep removed %d, want 2", res.Removed)
		}
		if n := f.rdb.LRem(f.ctx, key, 1, "").Val(); n != 1 { // ... then LREM
			t.Fatalf("resque-web's LREM found %d placeholders", n)
		}
		if got := f.list(key); len(got) != 0 {
			t.Fatalf("left %q", got)
		}
		_ = e
	})
	t.Run("requeue split by the sweep", func(t *testing.T) {
		t.Parallel()
		f, e := setup(t)
		key := f.layout.Failed()
		f.rdb.Set(f.ctx, f.layout.Expiration("x0002"), f.at(time.Hour), 0) // live now
		e2 := resqueFailure(f.job("l0003", "X"), "q", "RuntimeError", f.now)
		f.fail(e2, "q", false)
		f.rdb.Set(f.ctx, f.layout.Expiration("l0003"), f.at(time.Hour), 0)
		// requeue(1): LINDEX 1 (l0001) ... sweep removes x0000 ... LSET 1.
		retried, err := resqueRequeue(f.ctx, f.rdb, "resque", key, 1, func() { f.mustSweep(onlyFailed, nil) })
		if err != nil {
			t.Fatal(err)
		}
		got := f.list(key)
		if want := []string{e[1], retried, e2}; !slices.Equal(got, want) {
			t.Fatalf("after the split requeue:\n%q\nwant l0001, l0001 with retried_at (over x0002, lost), l0003", got)
		}
	})
}

// TestFailedSweepRace runs sweeps while resque-web's remove(i) and
// requeue(i) (the real command sequences) hit random indexes of the same
// list, then checks what must hold whatever the interleaving: the sweep
// removed only expired entries; every remove's LREM found its "" (the
// sweep never removes or strands Resque's placeholder); the length adds up
// (entries before = after + sweep removals + Resque removals); and a last
// sweep leaves no expired entry.
func TestFailedSweepRace(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	const n = 600
	f.failedRaceFixture(n)
	key := f.layout.Failed()
	ctx := f.ctx
	var (
		wg                sync.WaitGroup
		removes, requeues int
		lremMissed        int
		stop              = make(chan struct{})
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(1))
		for {
			select {
			case <-stop:
				return
			default:
			}
			l := f.rdb.LLen(ctx, key).Val()
			if l == 0 {
				return
			}
			i := rng.Int63n(l)
			if rng.Intn(4) == 0 && removes < 120 {
				got, err := resqueRemove(ctx, f.rdb, key, i)
				if err == nil {
					removes++
					if got != 1 {
						lremMissed++
					}
				}
			} else if _, err := resqueRequeue(ctx, f.rdb, "resque", key, i, nil); err == nil {
				requeues++
			}
		}
	}()
	var swept int64
	var bad []string
	scan := func(c *inspect.Config) { c.Batch = 40 }
	for round := 0; round < 20; round++ {
		res, removed, err := f.sweep(Options{Failed: true, OnlyFailed: true, MaxScriptTime: 100 * time.Microsecond}, scan)
		if err != nil {
			t.Fatalf("sweep: %v", err)
		}
		swept += res.Removed
		for _, rm := range removed {
			if !strings.HasPrefix(rm.ID, "x") {
				bad = append(bad, rm.ID)
			}
		}
		// Make more entries expire as it goes: the sweep keeps finding work.
		for i := round * 30; i < round*30+30 && i < n; i++ {
			if i%2 == 1 {
				f.rdb.Set(ctx, f.layout.Expiration(fmt.Sprintf("l%04d", i)), "1", 0)
			}
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("the sweep removed entries that were not expired: %v", bad)
	}
	if lremMissed > 0 {
		t.Errorf("%d of Resque's LREM found no placeholder", lremMissed)
	}
	left := f.list(key)
	if slices.Contains(left, "") {
		t.Errorf("a Resque placeholder was left in the list")
	}
	if int64(len(left))+swept+int64(removes) != n {
		t.Errorf("length does not add up: %d left + %d swept + %d removed by Resque != %d", len(left), swept, removes, n)
	}
	res, _ := f.mustSweep(Options{Failed: true, OnlyFailed: true}, nil)
	sum, _, err := f.scanner(nil).InspectFailed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Expired != 0 {
		t.Errorf("%d expired entries left after a final sweep (which removed %d)", sum.Expired, res.Removed)
	}
	if removes == 0 || requeues == 0 || swept == 0 {
		t.Errorf("the race did not happen: %d removes, %d requeues, %d swept", removes, requeues, swept)
	}
	t.Logf("%d sweep removals, %d Resque removes, %d requeues, %d left", swept, removes, requeues, len(left))
}
