package commands

import (
	"strconv"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/report"
)

var listHeader = []string{"queue", "position", "id", "class", "state", "expires_at", "overdue_by", "reason"}

type listRecord inspect.Listed

// listedJSON is the jsonl/json shape of one listed job.
type listedJSON struct {
	Queue     string  `json:"queue"`
	List      string  `json:"list"`
	Position  int64   `json:"position"`
	ID        string  `json:"id"`
	Class     string  `json:"class"`
	State     string  `json:"state"`
	ExpiresAt string  `json:"expires_at"`
	OverdueBy float64 `json:"overdue_by"`
	Reason    string  `json:"reason,omitempty"`
	DelayedAt int64   `json:"delayed_at,omitempty"`
	Payload   string  `json:"payload"`
}

func (r listRecord) Row() []string {
	return []string{r.Queue, strconv.FormatInt(r.Index, 10), r.ID, r.Class, string(r.State),
		report.Time(r.Deadline), overdueCell(inspect.Listed(r)), r.Reason}
}

func overdueCell(l inspect.Listed) string {
	if l.State != inspect.StateExpired {
		return ""
	}
	return report.Duration(l.OverdueBy(l.Now))
}

func (r listRecord) Object() any {
	o := listedJSON{Queue: r.Queue, List: r.List.Key, Position: r.Index, ID: r.ID, Class: r.Class, State: string(r.State),
		ExpiresAt: report.Time(r.Deadline), Reason: r.Reason, DelayedAt: r.List.DelayedAt, Payload: r.Raw}
	if r.State == inspect.StateExpired {
		o.OverdueBy = r.OverdueBy(r.Now).Seconds()
	}
	return o
}

var failedListHeader = []string{"list", "index", "queue", "id", "class", "exception", "failed_at", "state", "expires_at", "overdue_by", "reason"}

// failedRecord is one failure entry as list --source failed shows it.
type failedRecord inspect.Listed

type failedJSON struct {
	List      string  `json:"list"`
	Index     int64   `json:"index"`
	Queue     string  `json:"queue"`
	ID        string  `json:"id"`
	Class     string  `json:"class"`
	Exception string  `json:"exception"`
	Error     string  `json:"error,omitempty"`
	FailedAt  string  `json:"failed_at"`
	RetriedAt string  `json:"retried_at,omitempty"`
	State     string  `json:"state"`
	ExpiresAt string  `json:"expires_at"`
	OverdueBy float64 `json:"overdue_by"`
	Reason    string  `json:"reason,omitempty"`
	Entry     string  `json:"entry"`
}

func (r failedRecord) failure() inspect.Failure {
	if r.Failure == nil {
		return inspect.Failure{}
	}
	return *r.Failure
}

func (r failedRecord) Row() []string {
	f := r.failure()
	return []string{r.List.Key, strconv.FormatInt(r.Index, 10), r.Queue, r.ID, r.Class, f.Exception, f.FailedAt, string(r.State),
		report.Time(r.Deadline), overdueCell(inspect.Listed(r)), r.Reason}
}

func (r failedRecord) Object() any {
	f := r.failure()
	o := failedJSON{List: r.List.Key, Index: r.Index, Queue: r.Queue, ID: r.ID, Class: r.Class, Exception: f.Exception,
		Error: f.Error, FailedAt: f.FailedAt, RetriedAt: f.RetriedAt, State: string(r.State),
		ExpiresAt: report.Time(r.Deadline), Reason: r.Reason, Entry: r.Raw}
	if r.State == inspect.StateExpired && !r.Deadline.IsZero() {
		o.OverdueBy = r.OverdueBy(r.Now).Seconds()
	}
	return o
}
