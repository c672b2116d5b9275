package sweep

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"time"

	"github.com/resque-expire/resque-expire/inspect"
)

var (
	//go:embed drain_keys.lua
	drainKeysSrc    string
	drainKeysScript = luaScripts.Once(drainKeysSrc)

	//go:embed drain_move.lua
	drainMoveSrc    string
	drainMoveScript = luaScripts.Once(drainMoveSrc)
)

// Batches of the drain: victims per drain_keys.lua, entries per
// drain_move.lua.
const (
	drainVictims = 500
	drainEntries = 200
)

// drainCommitted carries out what a copy's cutover committed, in bounded
// steps that a later run resumes where a dead one stopped: the archive
// records go to the journal (and, with --archive, on to the archive file),
// the failure entries to the failed list, and the deadline keys are deleted
// where they still hold the judged value. step, when set, is called after
// each step (a test's crash point).
func (r *run) drainCommitted(ctx context.Context, k copyKeys, step func() error) error {
	for _, m := range []struct{ src, dst string }{{k.cJournal, r.s.layout.Journal()}, {k.cFailures, r.s.layout.Failed()}} {
		for {
			n, err := r.requests.Run(ctx, r.s.rdb, drainMoveScript, []string{m.src, m.dst}, drainEntries, argBytes).Int()
			if err != nil {
				return fmt.Errorf("drain %s: %w", m.src, err)
			}
			if n == 0 {
				break
			}
			if m.src == k.cJournal && r.opts.Archive != nil {
				r.mu.Lock()
				_, err = r.drainJournal(ctx)
				r.mu.Unlock()
				if err != nil {
					return err
				}
			}
			if step != nil {
				if err := step(); err != nil {
					return err
				}
			}
		}
	}
	for {
		done, err := r.drainKeys(ctx, k)
		if err != nil || done {
			return err
		}
		if step != nil {
			if err := step(); err != nil {
				return err
			}
		}
	}
}

// drainKeys runs drain_keys.lua on the next batch of the committed triples
// of list k and reports their removals; done is true when none were left.
func (r *run) drainKeys(ctx context.Context, k copyKeys) (done bool, err error) {
	items, err := r.s.rdb.LRange(ctx, k.cStage, 0, 3*drainVictims-1).Result()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", k.cStage, err)
	}
	if len(items) == 0 {
		return true, nil
	}
	items = items[:len(items)/3*3]
	keys := []string{k.cStage}
	args := []any{len(items), sha1hex(items[0]), sha1hex(items[len(items)-1])}
	for i := 0; i < len(items); i += 3 {
		if items[i] != "" {
			keys = append(keys, items[i])
			args = append(args, items[i+1])
		}
	}
	n, err := r.requests.Run(ctx, r.s.rdb, drainKeysScript, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("delete the deadline keys staged in %s: %w", k.cStage, err)
	}
	if n >= 0 {
		for i := 2; i < len(items); i += 3 {
			r.reportStaged(k.list, items[i])
		}
	}
	return false, nil
}

// stagedRemoval is what the report of a job the copy engine removes needs,
// staged with its deadline key (so the client keeps nothing per victim).
type stagedRemoval struct {
	ID       string `json:"i"`
	Class    string `json:"c"`
	Deadline int64  `json:"d,omitempty"`
	Enqueued int64  `json:"e,omitempty"`
	Overdue  int64  `json:"o"`
	ByAge    bool   `json:"a,omitempty"`
}

func (r *run) stagedReport(c *inspect.Chunk, cd candidate) string {
	j := cd.job
	s := stagedRemoval{ID: j.ID, Class: j.Class, ByAge: cd.byAge}
	if !j.Deadline.IsZero() {
		s.Deadline = j.Deadline.UnixNano()
	}
	if cd.byAge {
		s.Enqueued = j.EnqueuedAt.UnixNano()
		s.Overdue = int64(c.Now.Sub(j.EnqueuedAt) - r.opts.MaxAge)
	} else {
		s.Overdue = int64(c.Now.Sub(j.Deadline))
	}
	return marshal(s)
}

// reportStaged tells OnRemoved of a job the copy engine removed from list
// (without its payload, which the copy does not keep; the archive has it).
func (r *run) reportStaged(list, entry string) {
	if r.opts.OnRemoved == nil {
		return
	}
	var s stagedRemoval
	if json.Unmarshal([]byte(entry), &s) != nil {
		return
	}
	queue, _ := r.s.layout.QueueName(list)
	rm := Removal{Queue: queue, List: list, ID: s.ID, Class: s.Class, OverdueBy: time.Duration(s.Overdue), ByAge: s.ByAge}
	if s.Deadline != 0 {
		rm.ExpiresAt = time.Unix(0, s.Deadline).UTC()
	}
	if s.ByAge {
		rm.EnqueuedAt = time.Unix(0, s.Enqueued).UTC()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.opts.OnRemoved(rm)
}
