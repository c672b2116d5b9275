package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/sample"
)

// checkSwept verifies Redis after a sweep of spec's data set: every queue
// holds exactly the jobs that were not expired, in their original order, and
// no expired job's deadline key is left.
func checkSwept(ctx context.Context, rdb *redis.Client, spec sample.Spec) error {
	want := map[string][]string{}
	var expiredKeys []string
	sample.Generate(spec, func(j sample.Job) {
		if j.State == "expired" {
			expiredKeys = append(expiredKeys, layout.Expiration(j.ID))
			return
		}
		want[j.Queue] = append(want[j.Queue], j.Payload)
	})
	for _, q := range spec.Queues {
		exp := want[q]
		n, err := rdb.LLen(ctx, layout.Queue(q)).Result()
		if err != nil {
			return err
		}
		if n != int64(len(exp)) {
			return fmt.Errorf("queue %s holds %d jobs, want %d", q, n, len(exp))
		}
		for start := 0; start < len(exp); start += 1000 {
			got, err := rdb.LRange(ctx, layout.Queue(q), int64(start), int64(start+999)).Result()
			if err != nil {
				return err
			}
			for i, p := range got {
				if p != exp[start+i] {
					return fmt.Errorf("queue %s position %d differs from the expected survivor", q, start+i)
				}
			}
		}
	}
	for start := 0; start < len(expiredKeys); start += 1000 {
		end := min(start+1000, len(expiredKeys))
		n, err := rdb.Exists(ctx, expiredKeys[start:end]...).Result()
		if err != nil {
			return err
		}
		if n != 0 {
			return fmt.Errorf("%d deadline keys of removed jobs are left", n)
		}
	}
	return nil
}
