package metrics

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/resque-expire/resque-expire/audit"
	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/sweep"
)

// TestQueueLabelsAreBounded: however many queues Redis holds, a metric
// has at most MaxQueues queue values plus (other) and (delayed), and the
// counts past the bound are summed, not lost.
func TestQueueLabelsAreBounded(t *testing.T) {
	s := New(Options{Version: "test"})
	sum := &inspect.Summary{At: time.Now()}
	for i := 0; i < MaxQueues+100; i++ {
		q := inspect.QueueSummary{Queue: fmt.Sprintf("q%04d", i)}
		q.Expired, q.Live = 1, 2
		sum.Queues = append(sum.Queues, q)
	}
	sum.Delayed.Expired = 7
	s.ObserveSummary(sum)
	if n := testutil.CollectAndCount(s.jobs); n != (MaxQueues+2)*len(queueStates) {
		t.Errorf("%d job series, want %d", n, (MaxQueues+2)*len(queueStates))
	}
	if v := testutil.ToFloat64(s.jobs.WithLabelValues(Other, "expired")); v != 100 {
		t.Errorf("(other) expired = %v, want 100", v)
	}
	if v := testutil.ToFloat64(s.jobs.WithLabelValues(DelayedQueue, "expired")); v != 7 {
		t.Errorf("(delayed) expired = %v, want 7", v)
	}

	var counts []sweep.RemovedCount
	for i := 0; i < MaxQueues+10; i++ {
		counts = append(counts, sweep.RemovedCount{Action: "deleted", Queue: fmt.Sprintf("a:%04d", i), Count: 2})
	}
	s.SetRemoved(counts)
	if n := testutil.CollectAndCount(s.removed); n != MaxQueues+1 {
		t.Errorf("%d removed series, want %d", n, MaxQueues+1)
	}
}

// TestTextfile: the file is complete, has no timestamps, no temp file is
// left behind, and a failed run's file can keep the last success.
func TestTextfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "resque_expire.prom")
	s := New(Options{Version: "test"})
	end := time.Unix(1700000000, 0)
	s.ObserveRun("sweep", ResultOK, 2*time.Second, end)
	s.SetRemoved([]sweep.RemovedCount{{Action: "archived", Queue: "mail:high", Count: 5}})
	if err := s.WriteTextfile(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		`resque_expire_jobs_removed_total{action="archived",queue="mail:high"} 5`,
		`resque_expire_last_success_timestamp_seconds{command="sweep"} 1.7e+09`,
		`resque_expire_build_info{`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("file lacks %s:\n%s", want, text)
		}
	}
	if strings.Contains(text, "resque_expire_runs_total") {
		t.Error("a textfile holds a per-process counter")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files in the directory, want 1", len(ents))
	}
	if got := LastSuccess(path, "sweep"); got != 1.7e9 {
		t.Errorf("LastSuccess = %v", got)
	}
	if got := LastSuccess(path, "inspect"); got != 0 {
		t.Errorf("LastSuccess(inspect) = %v", got)
	}
}

// TestObserveAudit: the audit gauges, with states past MaxValues and keys
// not sampled as (other), duplicates per queue with delayed jobs apart.
func TestObserveAudit(t *testing.T) {
	s := New(Options{Version: "test"})
	fam := &audit.FamilyReport{Name: "email_sent", Keys: 100, NoTTL: 3, Stuck: 2}
	for i := 0; i < MaxValues+5; i++ {
		fam.TopValues = append(fam.TopValues, audit.ValueCount{Value: fmt.Sprintf("v%02d", i), Count: 2})
	}
	rep := &audit.Report{Families: []*audit.FamilyReport{fam},
		Deadlines: &audit.FamilyReport{Orphans: &audit.OrphanReport{Orphans: 4}},
		Jobs: &audit.JobsReport{Groups: []audit.DuplicateGroup{
			{Queue: "mail", Class: "A", DuplicateIDs: 2, IdenticalPayloads: 1},
			{Queue: "mail", Class: "B", IdenticalPayloads: 3},
			{Queue: "mail", Delayed: true, Class: "A", DuplicateIDs: 1},
		}}}
	s.ObserveAudit(rep)
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(s.idemKeys.WithLabelValues("email_sent", "v00")), 2, "v00"},
		{testutil.ToFloat64(s.idemKeys.WithLabelValues("email_sent", Other)), 5*2 + (100 - 2*(MaxValues+5)), "(other)"},
		{testutil.ToFloat64(s.idemNoTTL.WithLabelValues("email_sent")), 3, "no ttl"},
		{testutil.ToFloat64(s.idemStuck.WithLabelValues("email_sent")), 2, "stuck"},
		{testutil.ToFloat64(s.orphaned.WithLabelValues("deadline")), 4, "orphaned deadlines"},
		{testutil.ToFloat64(s.duplicates.WithLabelValues("mail")), 5, "mail duplicates"},
		{testutil.ToFloat64(s.duplicates.WithLabelValues(DelayedQueue)), 1, "delayed duplicates"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(s.idemKeys); n != MaxValues+1 {
		t.Errorf("%d state series, want %d", n, MaxValues+1)
	}
}
