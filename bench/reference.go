package main

import (
	"context"
	"encoding/json"
	"strings"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// The two reference implementations below are the ways the benchmark
// compares against. They are written here, in the benchmark, only; the tool
// never uses them.

// progress says how far a reference run got before its time limit.
type progress struct {
	Removed  int64
	Finished bool
}

// floorPass is the least work any sweep must do: read every job in pages
// (LRANGE), find its id, and read every deadline (MGET), one pipelined round
// trip per page each. It changes nothing.
func floorPass(ctx context.Context, rdb *redis.Client, layout resque.Layout, queues []string, batch int) (int64, error) {
	paths := []resque.Path{{"id"}, {"jid"}, {"args", "0", "job_id"}}
	return pagePass(ctx, rdb, layout, queues, batch, func(items []string) []string {
		ids := make([]string, 0, len(items))
		p := &resque.Payload{} // one for the page, as the tool's scanner does
		for _, raw := range items {
			if err := p.Decode(unsafe.Slice(unsafe.StringData(raw), len(raw))); err != nil {
				continue
			}
			if id, ok := p.ID(paths); ok {
				ids = append(ids, id)
			}
		}
		return ids
	})
}

// jsonFloorPass is floorPass decoding each payload with encoding/json
// into a map and looking the id up in it: the same work with a slower
// decoder, to show how much of the floor the decoder is. (The deep-queue
// study's floor, the yardstick of its ratios, decoded with encoding/json;
// into what is not recorded.)
func jsonFloorPass(ctx context.Context, rdb *redis.Client, layout resque.Layout, queues []string, batch int) (int64, error) {
	return pagePass(ctx, rdb, layout, queues, batch, func(items []string) []string {
		ids := make([]string, 0, len(items))
		for _, raw := range items {
			if id := mapID(raw); id != "" {
				ids = append(ids, id)
			}
		}
		return ids
	})
}

// pagePass reads every job of queues in pages of batch (LRANGE), and the
// deadlines of the ids that ids finds in each page (MGET). It returns how
// many jobs it read.
func pagePass(ctx context.Context, rdb *redis.Client, layout resque.Layout, queues []string, batch int, ids func(items []string) []string) (int64, error) {
	var jobs int64
	for _, q := range queues {
		key := layout.Queue(q)
		for start := int64(0); ; start += int64(batch) {
			items, err := rdb.LRange(ctx, key, start, start+int64(batch)-1).Result()
			if err != nil {
				return jobs, err
			}
			keys := ids(items)
			for i, id := range keys {
				keys[i] = layout.Expiration(id)
			}
			if len(keys) > 0 {
				if err := rdb.MGet(ctx, keys...).Err(); err != nil {
					return jobs, err
				}
			}
			jobs += int64(len(items))
			if len(items) < batch {
				break
			}
		}
	}
	return jobs, nil
}

// mapID decodes raw with encoding/json and returns its id, jid or
// args.0.job_id, or "".
func mapID(raw string) string {
	var m map[string]any
	if json.Unmarshal([]byte(raw), &m) != nil {
		return ""
	}
	for _, k := range []string{"id", "jid"} {
		if id, ok := m[k].(string); ok {
			return id
		}
	}
	if args, ok := m["args"].([]any); ok && len(args) > 0 {
		if a, ok := args[0].(map[string]any); ok {
			if id, ok := a["job_id"].(string); ok {
				return id
			}
		}
	}
	return ""
}

// naiveSeed is the algorithm of the expiration design note
// (shared/seeds/000_*): SCAN the deadline keys; for each expired one, LRANGE
// every whole queue, decode every job, and LREM the one with that id.
func naiveSeed(ctx context.Context, rdb *redis.Client, layout resque.Layout, queues []string, limit time.Duration) (progress, error) {
	var pr progress
	deadline := time.Now().Add(limit)
	paths := []resque.Path{{"id"}, {"jid"}, {"args", "0", "job_id"}}
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, layout.ExpirationPattern(), 100).Result()
		if err != nil {
			return pr, err
		}
		for _, key := range keys {
			if time.Now().After(deadline) {
				return pr, nil
			}
			v, err := rdb.Get(ctx, key).Result()
			if err != nil {
				continue
			}
			t, err := resque.ParseDeadline(v)
			if err != nil || t.After(time.Now()) {
				continue
			}
			id, _ := layout.ExpirationID(key)
			rdb.Del(ctx, key)
			for _, q := range queues {
				all, err := rdb.LRange(ctx, layout.Queue(q), 0, -1).Result()
				if err != nil {
					return pr, err
				}
				for _, raw := range all {
					if !strings.Contains(raw, id) {
						continue
					}
					p, err := resque.DecodePayload([]byte(raw))
					if err != nil {
						continue
					}
					if jid, ok := p.ID(paths); ok && jid == id {
						rdb.LRem(ctx, layout.Queue(q), 1, raw)
						pr.Removed++
						break
					}
				}
			}
		}
		if cursor = next; cursor == 0 {
			pr.Finished = true
			return pr, nil
		}
	}
}

// sidekiqWay is how Sidekiq's API walks a queue (lib/sidekiq/api.rb,
// Queue#each): pages of 50 with LRANGE, the page start moved back by the
// number deleted so far, and one LREM per expired job (JobRecord#delete).
func sidekiqWay(ctx context.Context, rdb *redis.Client, layout resque.Layout, queues []string, limit time.Duration) (progress, error) {
	var pr progress
	deadline := time.Now().Add(limit)
	paths := []resque.Path{{"id"}, {"jid"}, {"args", "0", "job_id"}}
	const pageSize = 50
	for _, q := range queues {
		key := layout.Queue(q)
		deleted := int64(0)
		for page := int64(0); ; page++ {
			if time.Now().After(deadline) {
				return pr, nil
			}
			start := page*pageSize - deleted
			items, err := rdb.LRange(ctx, key, start, start+pageSize-1).Result()
			if err != nil {
				return pr, err
			}
			if len(items) == 0 {
				break
			}
			for _, raw := range items {
				p, err := resque.DecodePayload([]byte(raw))
				if err != nil {
					continue
				}
				id, ok := p.ID(paths)
				if !ok {
					continue
				}
				v, err := rdb.Get(ctx, layout.Expiration(id)).Result()
				if err != nil {
					continue
				}
				if t, err := resque.ParseDeadline(v); err == nil && !t.After(time.Now()) {
					rdb.LRem(ctx, key, 1, raw)
					rdb.Del(ctx, layout.Expiration(id))
					deleted++
					pr.Removed++
				}
			}
		}
	}
	pr.Finished = true
	return pr, nil
}
