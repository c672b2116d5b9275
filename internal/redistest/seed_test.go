package redistest

import (
	"context"
	"reflect"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// TestSeeder checks every structure the seeder writes, key by key, in a
// namespace other than the default so that no key name is hard-wired.
func TestSeeder(t *testing.T) {
	rdb := Client(t, Start(t))
	ctx := context.Background()
	l := resque.MustLayout("app", "{ns}:exp:{id}")
	jobs := make([]Job, seedChunk) // more than one chunk with the deadlines
	for i := range jobs {
		jobs[i] = Job{Payload: "p", ID: "big", Deadline: "1"}
	}
	Seed(t, rdb, l).
		Register("idle").
		Enqueue("q", Job{Payload: "a", ID: "a", Deadline: "10"}, Job{Payload: "b", ID: "b"}, Job{Payload: "c", Deadline: "5"}).
		Enqueue("big", jobs...).
		Push("stray", Job{Payload: "s", ID: "s", Deadline: "20"}).
		Delay(100, Job{Payload: "d", ID: "d", Deadline: "30"}, Job{Payload: "e"}).
		Deadline("orphan", "40").
		Fail("f1").
		FailTo("q_failed", "f2", "f3")

	want := map[string]any{
		"app:queues":                 []string{"big", "idle", "q"},
		"app:queue:q":                []string{"a", "b", "c"},
		"app:queue:stray":            []string{"s"},
		"app:exp:a":                  "10",
		"app:exp:big":                "1",
		"app:exp:s":                  "20",
		"app:exp:d":                  "30",
		"app:exp:orphan":             "40",
		"app:delayed:100":            []string{"d", "e"},
		"app:timestamps:d":           []string{"delayed:100"},
		"app:timestamps:e":           []string{"delayed:100"},
		"app:delayed_queue_schedule": []redis.Z{{Score: 100, Member: "100"}},
		"app:failed":                 []string{"f1"},
		"app:q_failed":               []string{"f2", "f3"},
		"app:failed_queues":          []string{"q_failed"},
		"app:queue:big":              int64(seedChunk),
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(want) {
		t.Errorf("seeded keys %q, want %d keys", keys, len(want))
	}
	for k, w := range want {
		var got any
		switch rdb.Type(ctx, k).Val() {
		case "string":
			got = rdb.Get(ctx, k).Val()
		case "list":
			if _, ok := w.(int64); ok {
				got = rdb.LLen(ctx, k).Val()
			} else {
				got = rdb.LRange(ctx, k, 0, -1).Val()
			}
		case "set":
			got = rdb.Sort(ctx, k, &redis.Sort{Alpha: true}).Val()
		case "zset":
			got = rdb.ZRangeWithScores(ctx, k, 0, -1).Val()
		default:
			got = "missing"
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %v, want %v", k, got, w)
		}
	}
}
