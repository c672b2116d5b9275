package sample_test

import (
	"context"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/sample"
)

var now = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func generate(spec sample.Spec) []sample.Job {
	var out []sample.Job
	sample.Generate(spec, func(j sample.Job) { out = append(out, j) })
	return out
}

func bigSpec() sample.Spec {
	return sample.Spec{Seed: 99, Now: now, Queues: []string{"mailers", "default", "with space", "ünï✓"}, Jobs: 4000,
		Expired: 0.3, Missing: 0.2, Unidentified: 0.1, Invalid: 0.1, ActiveJob: 0.5,
		MinPayload: 100, MaxPayload: 400, Delayed: 40, IdempotencyKeys: 20, Failed: 3}
}

func TestGenerateIsDeterministic(t *testing.T) {
	for _, spec := range []sample.Spec{sample.Demo(now), sample.Bench(500, now), bigSpec()} {
		a, b := generate(spec), generate(spec)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("seed %d: two runs differ", spec.Seed)
		}
		other := spec
		other.Seed++
		if reflect.DeepEqual(a, generate(other)) {
			t.Errorf("seed %d and %d give the same jobs", spec.Seed, other.Seed)
		}
		// Moving now moves every deadline by the same amount and changes
		// nothing else.
		later := spec
		later.Now = now.Add(time.Hour)
		c := generate(later)
		for i := range a {
			if a[i].ID != c[i].ID || a[i].State != c[i].State || a[i].Queue != c[i].Queue {
				t.Fatalf("seed %d job %d: now changed more than the times", spec.Seed, i)
			}
			if a[i].Deadline != "" && a[i].State != "invalid" {
				x, _ := strconv.ParseInt(a[i].Deadline, 10, 64)
				y, _ := strconv.ParseInt(c[i].Deadline, 10, 64)
				if y-x != 3600 {
					t.Fatalf("seed %d job %d: deadline %d then %d", spec.Seed, i, x, y)
				}
			}
		}
	}
}

// TestGenerateShape checks each job against what its State promises.
func TestGenerateShape(t *testing.T) {
	spec := bigSpec()
	jobs := generate(spec)
	if len(jobs) != spec.Jobs+spec.Delayed {
		t.Fatalf("%d jobs, want %d", len(jobs), spec.Jobs+spec.Delayed)
	}
	layout := resque.MustLayout("resque", "")
	paths, _ := resque.ParsePaths(resque.DefaultIDPaths)
	byState := map[string]int{}
	ids := map[string]bool{}
	for i, j := range jobs {
		if j.DelayedAt == 0 {
			byState[j.State]++
			if want := spec.Queues[i%len(spec.Queues)]; j.Queue != want {
				t.Fatalf("job %d in queue %q, want %q", i, j.Queue, want)
			}
		} else if j.DelayedAt < now.Unix()+60 || j.DelayedAt > now.Unix()+240 || (j.State != "expired" && j.State != "live") {
			t.Errorf("delayed job %d: at %d, state %s", i, j.DelayedAt, j.State)
		}
		if j.ID != "" {
			if ids[j.ID] {
				t.Errorf("id %s generated twice", j.ID)
			}
			ids[j.ID] = true
			if strings.ContainsAny(j.ID, "*?[]\\") || layout.Expiration(j.ID) == "" {
				t.Errorf("id %q", j.ID)
			}
		}
		p, err := resque.DecodePayload([]byte(j.Payload))
		switch {
		case j.State == "invalid" && j.Deadline == "":
			if err == nil {
				t.Errorf("job %d: invalid without a bad deadline, but the payload decodes", i)
			}
			continue
		case err != nil:
			t.Errorf("job %d (%s): %v", i, j.State, err)
			continue
		}
		id, ok := p.ID(paths)
		if j.State == "unidentified" {
			if ok || j.ID != "" {
				t.Errorf("unidentified job %d has id %q/%q", i, id, j.ID)
			}
			continue
		}
		if id != j.ID {
			t.Errorf("job %d: payload id %q, job id %q", i, id, j.ID)
		}
		if j.DelayedAt != 0 {
			var v struct{ Queue string }
			if json.Unmarshal([]byte(j.Payload), &v) != nil || v.Queue != j.Queue {
				t.Errorf("delayed job %d: payload queue %q, want %q", i, v.Queue, j.Queue)
			}
		}
		if n := len(j.Payload); n < spec.MinPayload-len(`,"meta":""`) {
			t.Errorf("job %d: payload of %d bytes, spec says at least %d", i, n, spec.MinPayload)
		}
		d, derr := resque.ParseDeadline(j.Deadline)
		switch j.State {
		case "expired":
			if derr != nil || d.After(now) {
				t.Errorf("expired job %d: deadline %q", i, j.Deadline)
			}
		case "live":
			if derr != nil || !d.After(now) {
				t.Errorf("live job %d: deadline %q", i, j.Deadline)
			}
		case "missing":
			if j.Deadline != "" {
				t.Errorf("missing job %d has deadline %q", i, j.Deadline)
			}
		case "invalid":
			if derr == nil {
				t.Errorf("invalid job %d has a good deadline %q", i, j.Deadline)
			}
		}
	}
	// The fractions, within sampling noise.
	fr := map[string]float64{"expired": spec.Expired, "missing": spec.Missing, "unidentified": spec.Unidentified,
		"invalid": spec.Invalid, "live": 1 - spec.Expired - spec.Missing - spec.Unidentified - spec.Invalid}
	for st, f := range fr {
		got := float64(byState[st]) / float64(spec.Jobs)
		if math.Abs(got-f) > 0.03 {
			t.Errorf("%s: %.3f of jobs, spec says %.3f", st, got, f)
		}
	}
}

// TestFillMatchesGenerate fills a real Redis and has inspect.Inspect count
// it: per queue and per state, the counts are exactly what Generate said.
func TestFillMatchesGenerate(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := context.Background()
	specs := map[string]sample.Spec{
		"demo":          sample.Demo(now),
		"bench":         sample.Bench(1500, now),
		"big, glob ns":  bigSpec(),
		"no namespace":  {Seed: 5, Now: now, Queues: []string{"q"}, Jobs: 50, Expired: 0.5, Invalid: 0.2, Delayed: 6, MinPayload: 50, MaxPayload: 60},
		"everything ok": {Seed: 6, Now: now, Queues: []string{"a", "b"}, Jobs: 30},
	}
	namespaces := map[string]string{"demo": "resque", "bench": "bench", "big, glob ns": "re[s]que*", "no namespace": "", "everything ok": "app:jobs"}
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			if err := rdb.FlushDB(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			layout := resque.MustLayout(namespaces[name], "")
			want := map[string]map[string]int64{} // queue (or "(delayed)") → state → count
			wantTotal := map[string]int{}
			sample.Generate(spec, func(j sample.Job) {
				q := j.Queue
				if j.DelayedAt != 0 {
					q = "(delayed)"
				}
				if want[q] == nil {
					want[q] = map[string]int64{}
				}
				want[q][j.State]++
				wantTotal[j.State]++
			})
			st, err := sample.Fill(ctx, rdb, layout, spec)
			if err != nil {
				t.Fatal(err)
			}
			if st.Jobs != spec.Jobs || st.Delayed != spec.Delayed || !reflect.DeepEqual(st.ByState, wantTotal) {
				t.Errorf("Fill stats %+v, want %d jobs, %d delayed, %v", st, spec.Jobs, spec.Delayed, wantTotal)
			}
			s, err := inspect.NewScanner(rdb, inspect.Config{Layout: layout, Batch: 100, Now: func() time.Time { return spec.Now }})
			if err != nil {
				t.Fatal(err)
			}
			sum, err := s.Inspect(ctx, inspect.Options{Delayed: true})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]map[string]int64{}
			add := func(q string, c inspect.Counts) {
				// The counts by state name, as their JSON names them.
				b, _ := json.Marshal(c)
				var byName map[string]int64
				_ = json.Unmarshal(b, &byName)
				for _, state := range inspect.States {
					if n := byName[string(state)]; n > 0 {
						if got[q] == nil {
							got[q] = map[string]int64{}
						}
						got[q][string(state)] = n
					}
				}
			}
			for _, q := range sum.Queues {
				add(q.Queue, q.Counts)
			}
			add("(delayed)", sum.Delayed.Counts)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Inspect counts\n %v\nGenerate said\n %v", got, want)
			}
			if len(sum.Queues) != len(spec.Queues) {
				t.Errorf("%d queues, want %d", len(sum.Queues), len(spec.Queues))
			}
			if len(sum.Problems) != 0 {
				t.Errorf("problems: %+v", sum.Problems)
			}
			if sum.Failed != int64(spec.Failed) {
				t.Errorf("failed = %d, want %d", sum.Failed, spec.Failed)
			}
			if spec.Delayed > 0 && (sum.Delayed.Buckets < 1 || sum.Delayed.Buckets > 4) {
				t.Errorf("%d delayed buckets, want 1-4", sum.Delayed.Buckets)
			}
			// resque-scheduler's bookkeeping: each delayed payload knows
			// its bucket.
			sample.Generate(spec, func(j sample.Job) {
				if j.DelayedAt == 0 {
					return
				}
				ok, err := rdb.SIsMember(ctx, layout.Timestamps(j.Payload), resque.DelayedMember(j.DelayedAt)).Result()
				if err != nil || !ok {
					t.Errorf("timestamps set of a delayed job lacks %s: %v", resque.DelayedMember(j.DelayedAt), err)
				}
			})
			var idem int
			for _, pattern := range []string{"email_sent:*", "payment:*"} {
				keys, err := rdb.Keys(ctx, pattern).Result()
				if err != nil {
					t.Fatal(err)
				}
				idem += len(keys)
			}
			if idem > spec.IdempotencyKeys || (spec.IdempotencyKeys > 0 && idem < spec.IdempotencyKeys/2) {
				t.Errorf("%d idempotency keys, spec says %d", idem, spec.IdempotencyKeys)
			}
		})
	}
}

func TestDemoAndBenchSpecs(t *testing.T) {
	for _, spec := range []sample.Spec{sample.Demo(now), sample.Bench(10, now)} {
		if sum := spec.Expired + spec.Missing + spec.Unidentified + spec.Invalid; sum > 1 {
			t.Errorf("seed %d: fractions sum to %v", spec.Seed, sum)
		}
		if !spec.Now.Equal(now) || len(spec.Queues) == 0 || spec.MinPayload > spec.MaxPayload {
			t.Errorf("spec %+v", spec)
		}
	}
	if b := sample.Bench(1234, now); b.Jobs != 1234 {
		t.Errorf("Bench(1234).Jobs = %d", b.Jobs)
	}
}
