package audit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// scanFamily reads every key of one family, page by page, and fills in fr.
// For deadline keys whose orphans can be judged (the job scan completed),
// it judges them on the same pass.
func (a *auditRun) scanFamily(ctx context.Context, f Family, fr *FamilyReport) error {
	acc := newFamilyAcc(f, fr)
	stopped, err := a.scanKeys(ctx, f.Pattern, true, func(ctx context.Context, keys []string) error {
		states, err := a.readKeys(ctx, keys)
		if err != nil {
			return err
		}
		var fs []Finding
		for i, k := range keys {
			if fd, ok := a.judgeKey(acc, k, states[i]); ok {
				fs = append(fs, fd)
			}
		}
		return a.emit(ctx, fs)
	})
	acc.finish()
	if stopped != "" {
		a.partial(fr, stopped)
	}
	return err
}

// judgeKey counts one key of a family and returns its finding, if any.
func (a *auditRun) judgeKey(acc *familyAcc, key string, st keyState) (Finding, bool) {
	fr, f := acc.rep, acc.fam
	if st.typ == "none" {
		fr.Gone++
		return Finding{}, false
	}
	fr.Keys++
	fr.Types[st.typ]++
	fd := Finding{Kind: fr.Kind, Family: fr.Name, Key: key, Type: st.typ, Value: st.value, HasValue: st.hasValue,
		TTL: st.ttl, NoTTL: st.noTTL()}
	flagged := false
	if st.noTTL() {
		fr.NoTTL++
		// A loner marker without TTL is the plugin's default, not rot.
		if fr.Kind != KindLoners {
			a.example(fr, ExampleNoTTL, st.example(key, ""))
			flagged = true
		}
	} else {
		acc.ttl.add(st.ttl)
	}
	if st.typ != f.wantType() {
		fr.WrongType++
		fd.WrongType, flagged = true, true
		a.example(fr, ExampleWrongType, st.example(key, "a "+st.typ+", not a "+f.wantType()))
	}
	if st.hasValue && fr.Kind != KindDeadlines {
		acc.values.add(st.value)
		if len(f.Values) > 0 && !slices.Contains(f.Values, st.value) {
			fr.Unexpected++
			fd.Unexpected, flagged = true, true
			a.example(fr, ExampleUnexpected, st.example(key, ""))
		}
		switch stuck, unknown := f.stuck(st); {
		case stuck:
			fr.Stuck++
			fd.Stuck, flagged = true, true
			a.example(fr, ExampleStuck, st.example(key, stuckDetail(f, st)))
		case unknown:
			fr.StuckUnknownAge++
		}
	}
	switch fr.Kind {
	case KindDeadlines:
		if a.judgeDeadline(fr, key, st, &fd) {
			flagged = true
		}
	case KindLoners:
		if q, _, ok := parseLoner(a.s.Layout(), key); !ok {
			fr.Unreadable++
			a.example(fr, ExampleUnreadable, st.example(key, "not <ns>:loners:queue:<queue>:job:<digest>"))
		} else if a.lonersBefore != nil {
			a.lonersBefore.add(keyHash(key))
			if _, ok := a.lonerQueues[q]; !ok && len(a.lonerQueues) < lonerQueueCap {
				a.lonerQueues[q] = struct{}{}
			} else if !ok {
				a.lonerAllQueues = true
			}
		}
	}
	return fd, flagged
}

// judgeDeadline checks the value of a deadline key and, when orphans can
// be judged, whether its job exists. It reports whether fd is an orphan.
func (a *auditRun) judgeDeadline(fr *FamilyReport, key string, st keyState, fd *Finding) bool {
	var deadline time.Time
	readable := false
	if st.hasValue {
		t, err := resque.ParseDeadline(st.value)
		if err != nil {
			fr.Unreadable++
			a.example(fr, ExampleUnreadable, st.example(key, err.Error()))
		} else {
			deadline, readable = t, true
		}
	}
	o := fr.Orphans
	if !o.Judged {
		return false
	}
	id, ok := a.s.Layout().ExpirationID(key)
	if !ok || a.s.Layout().Reserved(key) {
		return false
	}
	o.Checked++
	if a.jobs.hasID(id) {
		return false
	}
	o.Orphans++
	fd.Orphan = true
	detail := ""
	switch {
	case !readable:
		o.Unreadable++
		detail = "not a deadline; left alone"
	case !deadline.After(a.s.Now()):
		o.Expired++
		fd.Expired = true
		detail = "deadline passed " + deadline.UTC().Format(time.RFC3339)
		if !st.noTTL() && st.ttl <= inspect.OrphanHold {
			// Already on its way out (a sweep or a fix gave it the hold):
			// nothing left to fix.
			o.Held++
			fd.Held = true
			detail += "; vanishes within " + inspect.OrphanHold.String()
		} else {
			o.Fixable++
		}
	default:
		o.Live++
		detail = "deadline ahead " + deadline.UTC().Format(time.RFC3339) + "; its job may be running"
	}
	if len(o.Examples) < a.opts.Examples {
		o.Examples = append(o.Examples, st.example(key, detail))
	}
	return true
}

// stuck tells whether a key holding the family's stuck value is stuck: it
// has no TTL (it will never clear itself), or its age, told from the
// expected TTL, is beyond StuckAfter. With a TTL but no expected TTL its
// age cannot be told (unknown).
func (f Family) stuck(st keyState) (stuck, unknown bool) {
	if f.StuckValue == "" || !st.hasValue || st.value != f.StuckValue {
		return false, false
	}
	if st.noTTL() {
		return true, false
	}
	if f.TTL <= 0 {
		return false, true
	}
	return f.TTL-st.ttl > f.StuckAfter, false
}

func stuckDetail(f Family, st keyState) string {
	if st.noTTL() {
		return "no TTL: never clears itself"
	}
	return "about " + shortDuration(f.TTL-st.ttl) + " old"
}

// familyAcc accumulates the bounded statistics of one family.
type familyAcc struct {
	fam    Family
	rep    *FamilyReport
	ttl    ttlAcc
	values valueCounter
}

func newFamilyAcc(f Family, fr *FamilyReport) *familyAcc {
	return &familyAcc{fam: f, rep: fr, ttl: newTTLAcc(f.Pattern), values: valueCounter{counts: map[string]int64{}}}
}

func (acc *familyAcc) finish() {
	acc.rep.TTL = acc.ttl.stats()
	acc.rep.TopValues, acc.rep.DistinctValues = acc.values.top(topValuesShown)
}

// TTLStats describes remaining TTLs. Min, Max and the histogram count every
// key with a TTL; Median and P90 come from a uniform sample of at most
// 10000 of them (Sampled is set when it is smaller than Count).
type TTLStats struct {
	Count         int64             `json:"keys_with_ttl"`
	MinSeconds    float64           `json:"min_seconds"`
	MedianSeconds float64           `json:"median_seconds"`
	P90Seconds    float64           `json:"p90_seconds"`
	MaxSeconds    float64           `json:"max_seconds"`
	Sampled       bool              `json:"sampled"`
	SampleSize    int               `json:"sample_size"`
	Histogram     []HistogramBucket `json:"histogram"`
}

// HistogramBucket counts the TTLs up to UpToSeconds (and above the previous
// bucket); the last bucket has no upper bound (UpToSeconds 0).
type HistogramBucket struct {
	Label       string  `json:"label"`
	UpToSeconds float64 `json:"up_to_seconds,omitempty"`
	Keys        int64   `json:"keys"`
}

var histogramBounds = []struct {
	label string
	upTo  time.Duration
}{
	{"≤ 1m", time.Minute},
	{"≤ 10m", 10 * time.Minute},
	{"≤ 1h", time.Hour},
	{"≤ 6h", 6 * time.Hour},
	{"≤ 1d", 24 * time.Hour},
	{"≤ 7d", 7 * 24 * time.Hour},
	{"≤ 30d", 30 * 24 * time.Hour},
	{"> 30d", 0},
}

// ttlAcc keeps exact min, max and histogram and a reservoir sample.
type ttlAcc struct {
	n        int64
	min, max time.Duration
	sample   []time.Duration
	hist     []int64
	rng      *rand.Rand
}

func newTTLAcc(seed string) ttlAcc {
	// A fixed seed per pattern: the same data gives the same report.
	var s uint64
	for i := 0; i < len(seed); i++ {
		s = s*131 + uint64(seed[i])
	}
	return ttlAcc{hist: make([]int64, len(histogramBounds)), rng: rand.New(rand.NewPCG(s, 0x5eed))}
}

func (t *ttlAcc) add(d time.Duration) {
	t.n++
	if t.n == 1 || d < t.min {
		t.min = d
	}
	if d > t.max {
		t.max = d
	}
	for i, b := range histogramBounds {
		if b.upTo == 0 || d <= b.upTo {
			t.hist[i]++
			break
		}
	}
	if len(t.sample) < ttlSampleSize {
		t.sample = append(t.sample, d)
	} else if j := t.rng.Int64N(t.n); j < ttlSampleSize {
		t.sample[j] = d
	}
}

func (t *ttlAcc) stats() TTLStats {
	st := TTLStats{Count: t.n, SampleSize: len(t.sample), Sampled: int64(len(t.sample)) < t.n, Histogram: []HistogramBucket{}}
	if t.n == 0 {
		return st
	}
	s := slices.Clone(t.sample)
	slices.Sort(s)
	st.MinSeconds, st.MaxSeconds = t.min.Seconds(), t.max.Seconds()
	st.MedianSeconds, st.P90Seconds = percentile(s, 0.5).Seconds(), percentile(s, 0.9).Seconds()
	for i, b := range histogramBounds {
		st.Histogram = append(st.Histogram, HistogramBucket{Label: b.label, UpToSeconds: b.upTo.Seconds(), Keys: t.hist[i]})
	}
	return st
}

// percentile is the nearest-rank percentile of sorted s.
func percentile(s []time.Duration, p float64) time.Duration {
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// valueCounter counts values, telling apart at most valueCap of them.
type valueCounter struct {
	counts map[string]int64
	other  int64
}

func (v *valueCounter) add(s string) {
	s = truncateValue(s)
	if _, ok := v.counts[s]; ok || len(v.counts) < valueCap {
		v.counts[s]++
		return
	}
	v.other++
}

// top returns the n most frequent values (then otherValue, when values
// went uncounted) and the number told apart.
func (v *valueCounter) top(n int) ([]ValueCount, int) {
	out := make([]ValueCount, 0, len(v.counts))
	for val, c := range v.counts {
		out = append(out, ValueCount{Value: val, Count: c})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Value < out[j].Value
	})
	distinct := len(out)
	if len(out) > n {
		out = out[:n]
	}
	if v.other > 0 {
		out = append(out, ValueCount{Value: otherValue, Count: v.other})
	}
	return out, distinct
}

// shortDuration formats d with at most two units ("3d4h", "5m12s").
func shortDuration(d time.Duration) string {
	if d < 0 {
		return "-" + shortDuration(-d)
	}
	secs := int64(d / time.Second)
	switch {
	case secs >= 86400:
		return fmt.Sprintf("%dd%dh", secs/86400, secs%86400/3600)
	case secs >= 3600:
		return fmt.Sprintf("%dh%dm", secs/3600, secs%3600/60)
	case secs >= 60:
		return fmt.Sprintf("%dm%ds", secs/60, secs%60)
	}
	return fmt.Sprintf("%ds", secs)
}
