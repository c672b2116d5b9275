package sweep

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/orphan"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// OrphanResult counts expiration keys whose job is in no queue and no
// delayed bucket. No orphan is ever deleted: each is given a Redis TTL (see
// orphan_expire.lua), because its job may only have been between two lists
// while the run read them.
type OrphanResult struct {
	Keys    int64 `json:"keys_scanned"`
	Orphans int64 `json:"orphans"`
	// Expired: orphans whose deadline had passed, now set to vanish within
	// the hold (HoldSeconds) from now: given that TTL, or already expiring
	// sooner (would be, in a dry run). A sweep within the hold still finds
	// a job that was between lists, deadline and all, and removes it.
	Expired int64 `json:"expired"`
	// Expiring: future-dated orphans set to vanish at the latest the hold
	// after their deadline, since their job may be queued again or running
	// right now.
	Expiring int64 `json:"expiring"`
	// Invalid: orphans whose value is not a deadline; left alone.
	Invalid int64 `json:"invalid"`
	// Changed: keys that changed (or went) between the read and the write.
	Changed int64 `json:"changed"`
	// HoldSeconds is the hold: --orphan-grace, at least inspect.OrphanHold.
	HoldSeconds float64 `json:"hold_seconds"`
}

// idSet remembers the ids of the jobs a sweep saw, as 64-bit hashes (8
// bytes of key per job rather than the id). A hash collision can only make
// an orphan look owned, which keeps a key; it never deletes one.
type idSet map[uint64]struct{}

func idHash(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return h.Sum64()
}

func (s idSet) addChunk(c *inspect.Chunk) {
	for i := range c.Jobs {
		if id := c.Jobs[i].ID; id != "" {
			s[idHash(id)] = struct{}{}
		}
	}
}

// orphanHold is how long an orphaned deadline key is kept past its deadline
// (or past now, when that has passed): grace, but at least
// inspect.OrphanHold.
func orphanHold(grace time.Duration) time.Duration { return max(grace, inspect.OrphanHold) }

// sweepOrphans scans every expiration key and handles those whose id was
// not seen in any list during the run.
func (r *run) sweepOrphans(ctx context.Context, seen idSet, hold time.Duration) (*OrphanResult, error) {
	res := &OrphanResult{HoldSeconds: hold.Seconds()}
	layout := r.s.layout
	var cursor uint64
	for {
		if err := r.checkStop(); err != nil {
			return res, err
		}
		keys, next, err := r.s.rdb.Scan(ctx, cursor, layout.ExpirationPattern(), 1000).Result()
		if err != nil {
			return res, fmt.Errorf("scan expiration keys: %w", err)
		}
		var orphans []string
		for _, k := range keys {
			id, ok := layout.ExpirationID(k)
			if !ok || layout.Reserved(k) {
				continue
			}
			res.Keys++
			if _, owned := seen[idHash(id)]; !owned {
				orphans = append(orphans, k)
			}
		}
		if err := r.handleOrphans(ctx, orphans, hold, res); err != nil {
			return res, err
		}
		if cursor = next; cursor == 0 {
			return res, nil
		}
	}
}

func (r *run) handleOrphans(ctx context.Context, keys []string, hold time.Duration, res *OrphanResult) error {
	if len(keys) == 0 {
		return nil
	}
	pipe := r.s.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		gets[i] = pipe.Get(ctx, k)
	}
	_, _ = pipe.Exec(ctx) // per-command errors are read below
	now := r.opts.Now()
	for i, k := range keys {
		val, err := gets[i].Result()
		if err == redis.Nil {
			continue // gone since the scan
		}
		if err != nil && !inspect.IsWrongType(err) {
			return fmt.Errorf("read %s: %w", k, err)
		}
		res.Orphans++
		deadline, perr := resque.ParseDeadline(val)
		if err != nil || perr != nil {
			res.Invalid++
			r.problem(inspect.Problem{Key: k, Kind: "orphan-invalid-deadline",
				Detail: "orphaned expiration key with an unreadable value; left alone"})
			continue
		}
		// Never DEL: the key vanishes by itself after the hold, unless a
		// sweep meanwhile finds its job and removes both.
		expired := !deadline.After(now)
		ttl := hold
		if !expired {
			ttl += deadline.Sub(now)
		}
		if !r.opts.DryRun {
			n, err := orphan.Expire(k, val, ttl).Run(ctx, r.s.rdb).Int()
			if err != nil {
				if redis.IsReadOnlyError(err) {
					return ErrReadOnly
				}
				return fmt.Errorf("orphan %s: %w", k, err)
			}
			if n != 1 {
				res.Changed++
				continue
			}
		}
		if expired {
			res.Expired++
		} else {
			res.Expiring++
		}
	}
	return nil
}
