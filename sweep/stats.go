package sweep

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// What a sweep did with a job it removed: the action label of
// resque_expire_jobs_removed_total.
const (
	ActionDeleted  = "deleted"
	ActionArchived = "archived"
	ActionFailed   = "failed"
)

// DelayedQueue is the queue name removals from resque-scheduler's delayed
// buckets are counted under.
const DelayedQueue = "(delayed)"

// Action is what a sweep with these options does with the jobs it removes.
func Action(o Options) string {
	switch {
	case o.ToFailed:
		return ActionFailed
	case o.Archive != nil:
		return ActionArchived
	}
	return ActionDeleted
}

// StatsField is the field of the stats hash (Layout.Stats) that counts the
// jobs a sweep with these options removes from list: "<action>:<queue>".
// Actions hold no ':', so the field splits on its first ':' whatever the
// queue is called.
func StatsField(o Options, list inspect.ListRef) string {
	q := list.Queue
	if list.Delayed() {
		q = DelayedQueue
	}
	return Action(o) + ":" + q
}

// RemovedCount is one field of the stats hash: the jobs removed from a
// queue with an action, in total, by every sweep that ever ran.
type RemovedCount struct {
	Action string
	Queue  string
	Count  int64
}

// RemovedTotals reads the stats hash with HSCAN (a hash of many queues
// never blocks Redis). Fields that are not "<action>:<queue>" with an
// integer value are left out.
func RemovedTotals(ctx context.Context, rdb redis.UniversalClient, l resque.Layout) ([]RemovedCount, error) {
	var out []RemovedCount
	var cursor uint64
	for {
		kv, next, err := rdb.HScan(ctx, l.Stats(), cursor, "*", 1000).Result()
		if err != nil {
			return nil, err
		}
		for i := 0; i+1 < len(kv); i += 2 {
			action, queue, ok := strings.Cut(kv[i], ":")
			if !ok || action == "" {
				continue
			}
			n, err := strconv.ParseInt(kv[i+1], 10, 64)
			if err != nil {
				continue
			}
			out = append(out, RemovedCount{Action: action, Queue: queue, Count: n})
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// Needs lists every command a sweep with these options runs, each on a key
// of the family it runs on, for CheckPermissions (doctor asks it before
// any sweep has run).
func Needs(l resque.Layout, o Options) []Need {
	r := &run{s: &Sweeper{layout: l}, opts: o}
	return r.sweepNeeds()
}
