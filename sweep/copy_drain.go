package sweep

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/resque-expire/resque-expire/internal/once"
)

var (
	//go:embed drain_keys.lua
	drainKeysSrc    string
	drainKeysScript = registerOnce(once.New(drainKeysSrc))

	//go:embed drain_move.lua
	drainMoveSrc    string
	drainMoveScript = registerOnce(once.New(drainMoveSrc))
)

// Batches of the drain: deadline-key pairs per drain_keys.lua, entries
// per drain_move.lua.
const (
	drainPairs   = 500
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
			n, err := r.requests.Run(ctx, r.s.rdb, drainMoveScript, []string{m.src, m.dst}, drainEntries).Int()
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
		done, err := r.drainKeys(ctx, k.cStage)
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

// drainKeys runs drain_keys.lua on the next batch of the committed pairs;
// done is true when there were none left.
func (r *run) drainKeys(ctx context.Context, list string) (done bool, err error) {
	items, err := r.s.rdb.LRange(ctx, list, 0, 2*drainPairs-1).Result()
	if err != nil {
		return false, fmt.Errorf("read %s: %w", list, err)
	}
	if len(items) == 0 {
		return true, nil
	}
	items = items[:len(items)/2*2]
	keys := []string{list}
	args := []any{len(items), sha1hex(items[0]), sha1hex(items[len(items)-1])}
	for i := 0; i < len(items); i += 2 {
		if items[i] != "" {
			keys = append(keys, items[i])
			args = append(args, items[i+1])
		}
	}
	if err := r.requests.Run(ctx, r.s.rdb, drainKeysScript, keys, args...).Err(); err != nil {
		return false, fmt.Errorf("delete the deadline keys staged in %s: %w", list, err)
	}
	return false, nil
}
