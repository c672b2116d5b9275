package sweep

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCopyLargePayloads: the copy engine on a queue of 1,400 40 KB payloads,
// with failure entries (which hold whole payloads) to drain and, just
// before the cutover, a producer's tail of 600 KB: more than a script may
// move, so the cutover answers retry and the client copies it first. Every
// read and script of the engine is bounded in bytes; the queue must still
// end exactly as the live jobs plus what was pushed, in order, with one
// failure entry per expired job and nothing of the copy left.
func TestCopyLargePayloads(t *testing.T) {
	t.Parallel()
	f := newCopyFixture(t)
	pad := strings.Repeat("x", 40<<10)
	job := func(i int) (id, payload string) {
		id = fmt.Sprintf("big%05d", i)
		return id, fmt.Sprintf(`{"class":"Big","args":[%q],"id":%q}`, pad, id)
	}
	var live []string
	expired := 0
	pipe := f.rdb.Pipeline()
	pipe.SAdd(f.ctx, f.layout.Queues(), f.queue)
	for i := 0; i < 1400; i++ {
		id, p := job(i)
		pipe.RPush(f.ctx, f.key(), p)
		if i%2 == 1 {
			pipe.Set(f.ctx, f.layout.Expiration(id), f.at(-time.Hour), 0)
			expired++
			continue
		}
		pipe.Set(f.ctx, f.layout.Expiration(id), f.at(time.Hour), 0)
		live = append(live, p)
	}
	if _, err := pipe.Exec(f.ctx); err != nil {
		t.Fatal(err)
	}
	opts := f.copyOpts()
	opts.ToFailed = true
	pushed := false
	opts.copyHook = func(phase, _ string) error {
		if phase != "before-cutover" || pushed {
			return nil
		}
		pushed = true
		for i := 1400; i < 1415; i++ {
			id, p := job(i)
			f.rdb.Set(f.ctx, f.layout.Expiration(id), f.at(time.Hour), 0)
			if err := f.rdb.RPush(f.ctx, f.key(), p).Err(); err != nil {
				t.Error(err)
			}
			live = append(live, p)
		}
		return nil
	}
	res, removed, err := f.sweepCopy(opts)
	if err != nil {
		t.Fatal(err)
	}
	if e := f.engine(res); e != "copy" {
		t.Fatalf("engine %q, want copy (%s): %+v", e, problemKinds(res), res.Queues)
	}
	if got := f.list(f.key()); !slices.Equal(got, live) {
		t.Errorf("queue holds %d jobs, want the %d live ones in order", len(got), len(live))
	}
	if len(removed) != expired || res.Removed != int64(expired) {
		t.Errorf("removed %d (summary %d), want %d", len(removed), res.Removed, expired)
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Failed()).Val(); n != int64(expired) {
		t.Errorf("%d failure entries, want %d", n, expired)
	}
	f.noLeftovers()
}
