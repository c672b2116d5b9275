package audit

import "time"

// Thresholds are the limits `check` holds Redis to; a nil limit is not
// checked.
type Thresholds struct {
	// Jobs by state, over every queue and the delayed schedule.
	MaxExpired, MaxMissing, MaxInvalid *int64
	// MaxOrphans limits Report.Orphans.
	MaxOrphans *int64
	// MaxNoTTL and MaxStuck limit the key families' keys without TTL and
	// stuck keys.
	MaxNoTTL, MaxStuck *int64
	// MaxDuplicates limits JobsReport.DuplicateJobs.
	MaxDuplicates *int64
	// MaxQueueLength limits the longest queue.
	MaxQueueLength *int64
	// MaxOverdue limits how long ago the most overdue job expired.
	MaxOverdue *time.Duration
}

// Any reports whether any limit is set.
func (t Thresholds) Any() bool { return len(t.limits()) > 0 }

// Options returns the options of the audit that the set limits need,
// reading families for the key-family limits and nothing more.
func (t Thresholds) Options(families []Family) Options {
	var o Options
	for _, l := range t.limits() {
		switch l.name {
		case "no-ttl", "stuck":
			o.Families = families
		case "orphans":
			o.Jobs, o.Deadlines, o.Loners = true, true, true
		default:
			o.Jobs = true
		}
	}
	return o
}

// ThresholdResult is one limit held against the audit.
type ThresholdResult struct {
	// Name is the limit's name: "expired", ..., flag --max-<name>.
	Name  string `json:"-"`
	Value int64  `json:"value"`
	Limit int64  `json:"limit"`
	// Unit is "seconds" for the overdue limit, "" for counts.
	Unit   string `json:"unit,omitempty"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail,omitempty"`
}

type limit struct {
	name  string
	limit int64
	unit  string
	value func(r *Report) (int64, string)
}

// Evaluate holds every set limit against r, in a fixed order.
func (t Thresholds) Evaluate(r *Report) []ThresholdResult {
	out := []ThresholdResult{}
	for _, l := range t.limits() {
		v, detail := l.value(r)
		out = append(out, ThresholdResult{Name: l.name, Value: v, Limit: l.limit, Unit: l.unit, Pass: v <= l.limit, Detail: detail})
	}
	return out
}

func (t Thresholds) limits() []limit {
	jobs := func(r *Report) *JobsReport {
		if r.Jobs == nil {
			return &JobsReport{}
		}
		return r.Jobs
	}
	count := func(f func(r *Report) int64) func(r *Report) (int64, string) {
		return func(r *Report) (int64, string) { return f(r), "" }
	}
	all := []struct {
		name string
		lim  *int64
		val  func(r *Report) (int64, string)
	}{
		{"expired", t.MaxExpired, count(func(r *Report) int64 { return jobs(r).States.Expired })},
		{"missing", t.MaxMissing, count(func(r *Report) int64 { return jobs(r).States.Missing })},
		{"invalid", t.MaxInvalid, count(func(r *Report) int64 { return jobs(r).States.Invalid })},
		{"orphans", t.MaxOrphans, count((*Report).Orphans)},
		{"no-ttl", t.MaxNoTTL, count((*Report).NoTTL)},
		{"stuck", t.MaxStuck, count((*Report).Stuck)},
		{"duplicates", t.MaxDuplicates, count(func(r *Report) int64 { return jobs(r).DuplicateJobs })},
		{"queue-length", t.MaxQueueLength, func(r *Report) (int64, string) {
			j := jobs(r)
			if j.LongestQueue == "" {
				return 0, ""
			}
			return j.LongestQueueLength, "queue " + j.LongestQueue
		}},
	}
	var out []limit
	for _, a := range all {
		if a.lim != nil {
			out = append(out, limit{name: a.name, limit: *a.lim, value: a.val})
		}
	}
	if t.MaxOverdue != nil {
		out = append(out, limit{name: "overdue", limit: int64(*t.MaxOverdue / time.Second), unit: "seconds",
			value: func(r *Report) (int64, string) {
				o := jobs(r).MostOverdue
				if o == nil {
					return 0, ""
				}
				return int64(o.Overdue / time.Second), "job " + o.ID + " (" + o.Class + ") in " + o.Queue
			}})
	}
	return out
}
