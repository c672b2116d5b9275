package redistest

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// Job is a payload to seed, with the deadline key of its job id.
type Job struct {
	Payload string
	// ID and Deadline set the deadline key of ID to Deadline; either one
	// empty sets none (a "missing" or unidentified job).
	ID       string
	Deadline string
}

// Seeder writes Resque, resque-scheduler and failure structures the way
// those libraries do, with every key name taken from one Layout. Each call
// writes at once (in MULTI/EXEC chunks of seedChunk commands) and fails the
// test on an error.
type Seeder struct {
	t      testing.TB
	rdb    redis.Cmdable
	layout resque.Layout
}

// seedChunk is how many commands one MULTI/EXEC of a Seeder holds at most.
const seedChunk = 5000

// Seed returns a Seeder writing through rdb with the key names of l.
func Seed(t testing.TB, rdb redis.Cmdable, l resque.Layout) *Seeder {
	return &Seeder{t: t, rdb: rdb, layout: l}
}

// Register adds queues to <ns>:queues, as Resque.watch_queue does.
func (s *Seeder) Register(queues ...string) *Seeder {
	s.t.Helper()
	if len(queues) == 0 {
		return s
	}
	members := make([]any, len(queues))
	for i, q := range queues {
		members[i] = q
	}
	s.exec(func(p redis.Pipeliner, _ int) int {
		p.SAdd(context.Background(), s.layout.Queues(), members...)
		return 1
	}, 1)
	return s
}

// Enqueue registers queue and appends jobs to it, as Resque.push does (in
// one MULTI/EXEC unless there are many jobs).
func (s *Seeder) Enqueue(queue string, jobs ...Job) *Seeder {
	s.t.Helper()
	s.push(queue, true, jobs)
	return s
}

// Push appends jobs to queue's list without registering the queue: a list
// Resque itself does not know about.
func (s *Seeder) Push(queue string, jobs ...Job) *Seeder {
	s.t.Helper()
	s.push(queue, false, jobs)
	return s
}

func (s *Seeder) push(queue string, register bool, jobs []Job) {
	s.t.Helper()
	if len(jobs) == 0 {
		if register {
			s.Register(queue)
		}
		return
	}
	ctx := context.Background()
	key := s.layout.Queue(queue)
	s.exec(func(p redis.Pipeliner, i int) int {
		n := 1
		if i == 0 && register {
			p.SAdd(ctx, s.layout.Queues(), queue)
			n++
		}
		p.RPush(ctx, key, jobs[i].Payload)
		return n + s.deadline(p, jobs[i])
	}, len(jobs))
}

// Delay puts jobs in resque-scheduler's bucket for Unix second ts, as its
// delayed_push does: the bucket list, the payload's timestamps set and the
// schedule.
func (s *Seeder) Delay(ts int64, jobs ...Job) *Seeder {
	s.t.Helper()
	ctx := context.Background()
	s.exec(func(p redis.Pipeliner, i int) int {
		p.RPush(ctx, s.layout.Delayed(ts), jobs[i].Payload)
		p.SAdd(ctx, s.layout.Timestamps(jobs[i].Payload), resque.DelayedMember(ts))
		p.ZAdd(ctx, s.layout.DelayedSchedule(), redis.Z{Score: float64(ts), Member: strconv.FormatInt(ts, 10)})
		return 3 + s.deadline(p, jobs[i])
	}, len(jobs))
	return s
}

// Deadline sets the deadline key of job id to value, with no job for it
// unless one is seeded too (an orphan).
func (s *Seeder) Deadline(id, value string) *Seeder {
	s.t.Helper()
	s.exec(func(p redis.Pipeliner, _ int) int {
		return s.deadline(p, Job{ID: id, Deadline: value})
	}, 1)
	return s
}

// Fail appends failure entries to Resque's default failed list (<ns>:failed).
func (s *Seeder) Fail(entries ...string) *Seeder {
	s.t.Helper()
	return s.FailTo("failed", entries...)
}

// FailTo appends failure entries to the failed list name: "failed", or
// "<queue>_failed" of the multi-queue backend, which is registered in
// <ns>:failed_queues the way that backend does.
func (s *Seeder) FailTo(name string, entries ...string) *Seeder {
	s.t.Helper()
	ctx := context.Background()
	s.exec(func(p redis.Pipeliner, i int) int {
		n := 1
		if i == 0 && name != "failed" {
			p.SAdd(ctx, s.layout.FailedQueues(), name)
			n++
		}
		p.RPush(ctx, s.layout.FailedList(name), entries[i])
		return n
	}, len(entries))
	return s
}

func (s *Seeder) deadline(p redis.Pipeliner, j Job) int {
	if j.ID == "" || j.Deadline == "" {
		return 0
	}
	p.Set(context.Background(), s.layout.Expiration(j.ID), j.Deadline, 0)
	return 1
}

// exec queues add(p, i) for i in [0, n), each returning how many commands
// it queued, and runs them in MULTI/EXEC chunks of about seedChunk.
func (s *Seeder) exec(add func(p redis.Pipeliner, i int) int, n int) {
	s.t.Helper()
	ctx := context.Background()
	p := s.rdb.TxPipeline()
	queued := 0
	run := func() {
		s.t.Helper()
		if queued == 0 {
			return
		}
		if _, err := p.Exec(ctx); err != nil {
			s.t.Fatalf("seed: %v", err)
		}
		queued = 0
	}
	for i := 0; i < n; i++ {
		queued += add(p, i)
		if queued >= seedChunk {
			run()
		}
	}
	run()
}

// Payloads is one Job for each payload, with no deadline key.
func Payloads(payloads ...string) []Job {
	jobs := make([]Job, len(payloads))
	for i, p := range payloads {
		jobs[i] = Job{Payload: p}
	}
	return jobs
}
