package commands

import (
	"fmt"
	"time"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/report"
)

// checkResult is check's report: JSON is an object with one entry per
// threshold, keyed by its name without "max-".
type checkResult struct {
	Pass       bool                             `json:"pass"`
	Partial    bool                             `json:"partial"`
	Stopped    string                           `json:"stopped,omitempty"`
	Failed     []string                         `json:"failed"`
	Thresholds map[string]audit.ThresholdResult `json:"thresholds"`
	At         time.Time                        `json:"at"`
	ClockSkew  *float64                         `json:"clock_skew_seconds,omitempty"`
	ordered    []audit.ThresholdResult
}

func newCheckResult(rs []audit.ThresholdResult, rep *audit.Report) checkResult {
	res := checkResult{Pass: true, Partial: rep.Partial, Stopped: rep.Stopped, Failed: []string{},
		Thresholds: map[string]audit.ThresholdResult{}, At: rep.At, ordered: rs}
	for _, r := range rs {
		res.Thresholds[r.Name] = r
		if !r.Pass {
			res.Pass = false
			res.Failed = append(res.Failed, r.Name)
		}
	}
	return res
}

func (r checkResult) Tables() []report.Table {
	t := report.Table{Header: []string{"threshold", "value", "limit", "result", "detail"}}
	for _, th := range r.ordered {
		value, lim := report.Int(th.Value), report.Int(th.Limit)
		if th.Unit == "seconds" {
			value, lim = report.Duration(time.Duration(th.Value)*time.Second), report.Duration(time.Duration(th.Limit)*time.Second)
		}
		result := "pass"
		if !th.Pass {
			result = "FAIL"
		}
		t.Rows = append(t.Rows, []string{"--max-" + th.Name, value, lim, result, th.Detail})
	}
	switch {
	case !r.Pass:
		t.Notes = append(t.Notes, fmt.Sprintf("%d of %d thresholds exceeded", len(r.Failed), len(r.ordered)))
	case r.Partial:
		t.Notes = append(t.Notes, "stopped early ("+r.Stopped+"): the numbers are partial")
	default:
		t.Notes = append(t.Notes, "all thresholds hold")
	}
	return []report.Table{t}
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
