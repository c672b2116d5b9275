// Package sample generates realistic Resque data, deterministically from a
// seed: plain and ActiveJob payloads, deadlines in every state, delayed jobs
// and idempotency keys. The demo fills its throwaway Redis with it, the tests
// seed from it, and the benchmark builds its data sets with it.
package sample

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// Spec describes a data set. Fractions are of Jobs and should sum to <= 1;
// what is left over is live.
type Spec struct {
	Seed   int64
	Now    time.Time
	Queues []string
	Jobs   int
	// Fractions of jobs in each state.
	Expired, Missing, Unidentified, Invalid float64
	// ActiveJob is the fraction of payloads in Rails' ActiveJob wrapper.
	ActiveJob float64
	// MinPayload and MaxPayload bound payload sizes in bytes (padding is
	// added to reach a size drawn between them).
	MinPayload, MaxPayload int
	// Delayed jobs on resque-scheduler's schedule, spread over a few
	// buckets; half of them expired.
	Delayed int
	// IdempotencyKeys of the design note's families: email_sent:*,
	// payment:* (some stuck in_progress, some without TTL).
	IdempotencyKeys int
	// Failed entries on the failed list.
	Failed int
	// Layout places the expired jobs in each queue: "" or "random" (drawn
	// with the other states), "head" (the oldest Expired fraction: one TTL
	// for every job), "tail" (the newest), "twoclass" (every other job: two
	// TTL classes interleaved, Expired taken as one half).
	Layout string
}

// Demo is the data set `make demo` shows.
func Demo(now time.Time) Spec {
	return Spec{Seed: 42, Now: now, Queues: []string{"mailers", "default", "critical", "reports"}, Jobs: 60,
		Expired: 0.35, Missing: 0.15, Unidentified: 0.05, Invalid: 0.05, ActiveJob: 0.4,
		MinPayload: 120, MaxPayload: 260, Delayed: 8, IdempotencyKeys: 12, Failed: 2}
}

// Bench is the benchmark's data set: n jobs over 2 queues, 50% expired, 40%
// live, 10% missing, a third ActiveJob, payloads of 150-300 bytes.
func Bench(n int, now time.Time) Spec {
	return Spec{Seed: 1, Now: now, Queues: []string{"bench_a", "bench_b"}, Jobs: n,
		Expired: 0.5, Missing: 0.1, ActiveJob: 1.0 / 3, MinPayload: 150, MaxPayload: 300}
}

// Job is one generated job.
type Job struct {
	Queue   string
	ID      string
	Payload string
	// State is the state the job is meant to have ("expired", "live",
	// "missing", "unidentified", "invalid").
	State string
	// Deadline is the value of the expiration key ("" = none).
	Deadline string
	// DelayedAt is the bucket of a delayed job (0 for queued jobs).
	DelayedAt int64
}

// Generate calls fn for every job of spec, in the order Fill pushes them.
func Generate(spec Spec, fn func(Job)) {
	r := rand.New(rand.NewSource(spec.Seed))
	now := spec.Now.Unix()
	classes := []string{"SendEmailJob", "ProcessPaymentJob", "Reports::Daily", "UpdateStatusJob", "CreateUserJob"}
	for i := 0; i < spec.Jobs; i++ {
		q := spec.Queues[i%len(spec.Queues)]
		fn(makeJob(r, spec, i, q, classes, now, 0))
	}
	for i := 0; i < spec.Delayed; i++ {
		at := now + int64(60*(1+i%4))
		q := spec.Queues[i%len(spec.Queues)]
		j := makeJob(r, Spec{Seed: spec.Seed, Expired: 0.5, ActiveJob: spec.ActiveJob, MinPayload: spec.MinPayload, MaxPayload: spec.MaxPayload},
			spec.Jobs+i, q, classes, now, at)
		fn(j)
	}
}

// expiredByLayout says whether job i (spread round robin over the queues)
// is expired under spec's Layout.
func expiredByLayout(spec Spec, i int) bool {
	pos, per := i/len(spec.Queues), spec.Jobs/len(spec.Queues)
	switch spec.Layout {
	case "head":
		return float64(pos) < spec.Expired*float64(per)
	case "tail":
		return float64(pos) >= (1-spec.Expired)*float64(per)
	default: // twoclass
		return pos%2 == 0
	}
}

func makeJob(r *rand.Rand, spec Spec, i int, queue string, classes []string, now, delayedAt int64) Job {
	x := r.Float64()
	state := "live"
	switch {
	case spec.Layout != "" && spec.Layout != "random" && delayedAt == 0:
		if expiredByLayout(spec, i) {
			state = "expired"
		} else if x < spec.Missing {
			state = "missing"
		}
	case x < spec.Expired:
		state = "expired"
	case x < spec.Expired+spec.Missing:
		state = "missing"
	case x < spec.Expired+spec.Missing+spec.Unidentified:
		state = "unidentified"
	case x < spec.Expired+spec.Missing+spec.Unidentified+spec.Invalid:
		state = "invalid"
	}
	id := fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.Intn(1<<16), r.Intn(1<<12), r.Intn(1<<12), r.Int63n(1<<48))
	class := classes[r.Intn(len(classes))]
	activeJob := r.Float64() < spec.ActiveJob
	size := spec.MinPayload
	if spec.MaxPayload > spec.MinPayload {
		size += r.Intn(spec.MaxPayload - spec.MinPayload + 1)
	}
	enqueued := time.Unix(now-int64(60+r.Intn(6*3600)), int64(r.Intn(1e9))).UTC()

	var payload string
	switch {
	case state == "invalid" && i%2 == 0:
		payload = `{"class":"` + class + `","args":[` // truncated JSON
	case state == "invalid":
		payload = `["` + class + `", "not an object"]`
	case activeJob:
		args := map[string]any{
			"job_class": class, "job_id": id, "provider_job_id": nil, "queue_name": queue,
			"priority": nil, "arguments": []any{i, "user-" + strconv.Itoa(r.Intn(10000))}, "executions": 0,
			"exception_executions": map[string]any{}, "locale": "en", "timezone": "UTC",
			"enqueued_at": enqueued.Format(time.RFC3339Nano), "scheduled_at": nil,
		}
		if state == "unidentified" {
			delete(args, "job_id")
		}
		obj := map[string]any{"class": resque.ActiveJobWrapper, "args": []any{args}}
		if delayedAt != 0 {
			obj["queue"] = queue
		}
		payload = pad(obj, size)
	default:
		obj := map[string]any{"class": class, "args": []any{i, "user-" + strconv.Itoa(r.Intn(10000))}, "id": id,
			"enqueued_at": enqueued.Unix()}
		if state == "unidentified" {
			delete(obj, "id")
		}
		if delayedAt != 0 {
			obj["queue"] = queue
		}
		payload = pad(obj, size)
	}
	j := Job{Queue: queue, ID: id, Payload: payload, State: state, DelayedAt: delayedAt}
	switch state {
	case "expired":
		j.Deadline = strconv.FormatInt(now-int64(1+r.Intn(7200)), 10)
	case "live":
		j.Deadline = strconv.FormatInt(now+int64(600+r.Intn(86400)), 10)
	case "invalid":
		if i%3 == 0 { // a well-formed payload with an unparseable deadline
			obj := map[string]any{"class": class, "args": []any{i}, "id": id}
			j.Payload = pad(obj, size)
			j.Deadline = "tomorrow-ish"
		}
	}
	if state == "unidentified" || (state == "invalid" && j.Deadline == "") {
		j.ID = ""
	}
	return j
}

// pad adds a "meta" string to obj so its JSON is about size bytes.
func pad(obj map[string]any, size int) string {
	b, _ := json.Marshal(obj)
	if missing := size - len(b) - len(`,"meta":""`); missing > 0 {
		obj["meta"] = strings.Repeat("x", missing)
		b, _ = json.Marshal(obj)
	}
	return string(b)
}

// Stats counts what Fill wrote.
type Stats struct {
	Jobs    int            `json:"jobs"`
	ByState map[string]int `json:"by_state"`
	Delayed int            `json:"delayed"`
}

// Fill writes spec's data set into Redis under layout, in pipelined batches.
// It does not flush anything first.
func Fill(ctx context.Context, rdb redis.UniversalClient, layout resque.Layout, spec Spec) (Stats, error) {
	st := Stats{ByState: map[string]int{}}
	pipe := rdb.Pipeline()
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		_, err := pipe.Exec(ctx)
		n = 0
		return err
	}
	var ferr error
	Generate(spec, func(j Job) {
		if ferr != nil {
			return
		}
		if j.DelayedAt != 0 {
			st.Delayed++
			pipe.RPush(ctx, layout.Delayed(j.DelayedAt), j.Payload)
			pipe.SAdd(ctx, layout.Timestamps(j.Payload), resque.DelayedMember(j.DelayedAt))
			pipe.ZAdd(ctx, layout.DelayedSchedule(), redis.Z{Score: float64(j.DelayedAt), Member: strconv.FormatInt(j.DelayedAt, 10)})
		} else {
			st.Jobs++
			pipe.RPush(ctx, layout.Queue(j.Queue), j.Payload)
		}
		st.ByState[j.State]++
		if j.Deadline != "" {
			pipe.Set(ctx, layout.Expiration(j.ID), j.Deadline, 0)
		}
		if n++; n >= 2000 {
			ferr = flush()
		}
	})
	if ferr != nil {
		return st, ferr
	}
	for _, q := range spec.Queues {
		pipe.SAdd(ctx, layout.Queues(), q)
		n++
	}
	r := rand.New(rand.NewSource(spec.Seed + 7))
	for i := 0; i < spec.IdempotencyKeys; i++ {
		user := 1000 + r.Intn(9000)
		switch i % 4 {
		case 0:
			pipe.Set(ctx, fmt.Sprintf("email_sent:%d:welcome", user), "true", 7*24*time.Hour)
		case 1:
			pipe.Set(ctx, fmt.Sprintf("email_sent:%d:password_reset", user), "true", 0) // no TTL: grows forever
		case 2:
			pipe.Set(ctx, fmt.Sprintf("payment:%08x", r.Uint32()), "completed", 24*time.Hour)
		case 3:
			pipe.Set(ctx, fmt.Sprintf("payment:%08x", r.Uint32()), "in_progress", 0) // stuck after a crash
		}
		n++
	}
	for i := 0; i < spec.Failed; i++ {
		entry, _ := json.Marshal(map[string]any{
			"failed_at": spec.Now.UTC().Add(-time.Duration(i+1) * time.Hour).Format("2006/01/02 15:04:05 UTC"),
			"payload":   map[string]any{"class": "SendEmailJob", "args": []any{i}},
			"exception": "Net::ReadTimeout", "error": "execution expired", "backtrace": []string{},
			"worker": "worker-1:4242:mailers", "queue": "mailers",
		})
		pipe.RPush(ctx, layout.Failed(), entry)
		n++
	}
	return st, flush()
}
