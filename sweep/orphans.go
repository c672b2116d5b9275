package sweep

import (
	"context"
	_ "embed"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/resque"
)

//go:embed orphan_expire.lua
var orphanExpireSrc string

var orphanExpireScript = registerScript(redis.NewScript(orphanExpireSrc))

// OrphanResult counts expiration keys whose job is in no queue and no
// delayed bucket.
type OrphanResult struct {
	Keys    int64 `json:"keys_scanned"`
	Orphans int64 `json:"orphans"`
	// Deleted: orphans whose deadline had passed (would be, in a dry run).
	Deleted int64 `json:"deleted"`
	// Expiring: future-dated orphans given a TTL of deadline + grace
	// rather than deleted, since their job may be running right now.
	Expiring int64 `json:"expiring"`
	// Invalid: orphans whose value is not a deadline; left alone.
	Invalid int64 `json:"invalid"`
	// Changed: keys that changed between the read and the write.
	Changed int64 `json:"changed"`
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

// sweepOrphans scans every expiration key and handles those whose id was
// not seen in any list during the run.
func (r *run) sweepOrphans(ctx context.Context, seen idSet, grace time.Duration) (*OrphanResult, error) {
	res := &OrphanResult{}
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
		if err := r.handleOrphans(ctx, orphans, grace, res); err != nil {
			return res, err
		}
		if cursor = next; cursor == 0 {
			return res, nil
		}
	}
}

func (r *run) handleOrphans(ctx context.Context, keys []string, grace time.Duration, res *OrphanResult) error {
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
		action := "del"
		if deadline.After(now) {
			action = strconv.FormatInt(deadline.Add(grace).UnixMilli(), 10)
		}
		if !r.opts.DryRun {
			n, err := orphanExpireScript.Run(ctx, r.s.rdb, []string{k}, val, action).Int()
			if err != nil {
				return fmt.Errorf("orphan %s: %w", k, err)
			}
			if n == 0 {
				res.Changed++
				continue
			}
		}
		if action == "del" {
			res.Deleted++
		} else {
			res.Expiring++
		}
	}
	return nil
}
