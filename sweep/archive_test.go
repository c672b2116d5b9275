package sweep

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// archiveFile opens a fresh archive in a temp dir.
func (f *sweepFixture) archiveFile() *Archive {
	f.t.Helper()
	a, err := OpenArchive(filepath.Join(f.t.TempDir(), "removed.jsonl"))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = a.Close() })
	return a
}

// archiveLines reads an archive file's lines.
func (f *sweepFixture) archiveLines(path string) []string {
	f.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		f.t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// restore runs Restore on an archive file.
func (f *sweepFixture) restore(path string, opts RestoreOptions) (*RestoreResult, []RestoreEvent) {
	f.t.Helper()
	in, err := os.Open(path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer in.Close()
	var evs []RestoreEvent
	opts.OnRecord = func(ev RestoreEvent) { evs = append(evs, ev) }
	if opts.Now == nil {
		opts.Now = f.clock
	}
	res, err := Restore(f.ctx, f.rdb, f.layout, in, opts)
	if err != nil {
		f.t.Fatalf("restore: %v", err)
	}
	return res, evs
}

// TestArchiveRecords: one JSON line per removed job, in removal order,
// with the fields restore and people need, written to a 0600 file.
func TestArchiveRecords(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	html := `{"class":"SendEmailJob","args":["<b>&</b>"],"id":"html"}`
	aj := fmt.Sprintf(`{"class":"ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper","args":[{"job_class":"Reports::Daily","job_id":"aj","enqueued_at":%q}]}`,
		f.now.Add(-5*time.Hour).Format(time.RFC3339Nano))
	f.push("mailers", html, "html", f.at(-time.Hour))
	f.push("mailers", f.job("live", "X"), "live", f.at(time.Hour))
	f.push("mailers", aj, "aj", "")
	delayed := `{"class":"X","args":[],"queue":"later","id":"dl"}`
	ts := f.now.Unix() + 60
	f.delay(ts, delayed, "dl", "1700000000")

	a := f.archiveFile()
	res, removed := f.mustSweep(Options{Archive: a, Delayed: true, MaxAge: time.Hour}, nil)
	if res.Removed != 3 || len(removed) != 3 || res.Destination != "archive "+a.Path() {
		t.Fatalf("removed %d, destination %q", res.Removed, res.Destination)
	}
	if st, err := os.Stat(a.Path()); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v (%v), want 0600", st.Mode(), err)
	}
	if f.exists(f.layout.Journal()) {
		t.Error("journal not drained")
	}
	lines := f.archiveLines(a.Path())
	if len(lines) != 3 {
		t.Fatalf("%d archive lines, want 3:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if !strings.Contains(lines[0], "<b>&</b>") || strings.Contains(lines[0], `\u00`) {
		t.Errorf("archive line escapes HTML: %s", lines[0])
	}
	var recs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("archive line is not JSON: %v: %s", err, l)
		}
		recs = append(recs, m)
	}
	removedAt := f.now.Format(time.RFC3339)
	want := []map[string]any{
		{"removed_at": removedAt, "queue": "mailers", "list": f.layout.Queue("mailers"), "id": "html", "class": "SendEmailJob",
			"expires_at": f.now.Add(-time.Hour).Format(time.RFC3339), "deadline": f.at(-time.Hour), "payload": html},
		{"removed_at": removedAt, "queue": "mailers", "list": f.layout.Queue("mailers"), "id": "aj", "class": "Reports::Daily",
			"expires_at": "", "deadline": "", "payload": aj},
		{"removed_at": removedAt, "queue": "later", "list": f.layout.Delayed(ts), "delayed_at": float64(ts), "id": "dl", "class": "X",
			"expires_at": "2023-11-14T22:13:20Z", "deadline": "1700000000", "payload": delayed},
	}
	for i := range want {
		for k, v := range want[i] {
			if recs[i][k] != v {
				t.Errorf("record %d: %s = %#v, want %#v", i, k, recs[i][k], v)
			}
		}
		for k := range recs[i] {
			if _, ok := want[i][k]; !ok && k != "position" {
				t.Errorf("record %d: unexpected field %s", i, k)
			}
		}
	}
	// A second run appends.
	f.push("mailers", f.job("later", "X"), "later", f.at(-time.Minute))
	f.mustSweep(Options{Archive: a}, nil)
	if n := len(f.archiveLines(a.Path())); n != 4 {
		t.Errorf("after a second run the archive has %d lines, want 4", n)
	}
}

// TestRestoreRoundTrip: restore puts back exactly the removed payloads, in
// archive order, registers their queues, does it only once, and a dry run
// writes nothing.
func TestRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	var live, expired []string
	for i := 0; i < 12; i++ {
		id := fmt.Sprintf("j%02d", i)
		p := f.job(id, "X")
		if i%3 == 1 {
			f.push("default", p, id, f.at(time.Hour))
			live = append(live, p)
		} else {
			f.push("default", p, id, f.at(-time.Hour))
			expired = append(expired, p)
		}
	}
	other := f.job("other", "Y")
	f.push("other", other, "other", f.at(-time.Hour))
	delayed := `{"class":"Z","args":[],"queue":"reports","id":"dl"}`
	f.delay(f.now.Unix()+60, delayed, "dl", f.at(-time.Hour))

	a := f.archiveFile()
	_, removed := f.mustSweep(Options{Archive: a, Delayed: true}, func(c *inspect.Config) { c.Batch = 5 })
	if len(removed) != len(expired)+2 {
		t.Fatalf("removed %d", len(removed))
	}
	// Forget the queues, as if Resque had dropped them.
	f.rdb.Del(f.ctx, f.layout.Queues())

	before := f.dump()
	dry, evs := f.restore(a.Path(), RestoreOptions{DryRun: true})
	if d := diffDumps(before, f.dump()); d != "" {
		t.Fatalf("dry-run restore wrote to Redis:\n%s", d)
	}
	if dry.Restored != len(removed) || dry.Records != len(removed) || len(evs) != len(removed) || evs[0].Action != "would-restore" {
		t.Errorf("dry run: %+v, %d events", dry, len(evs))
	}

	res, evs := f.restore(a.Path(), RestoreOptions{})
	if res.Restored != len(removed) || res.AlreadyRestored != 0 || res.Invalid != 0 {
		t.Fatalf("restore: %+v", res)
	}
	if res.Queues["default"] != len(expired) || res.Queues["other"] != 1 || res.Queues["reports"] != 1 {
		t.Errorf("per queue: %v", res.Queues)
	}
	for i, ev := range evs {
		if ev.Line != i+1 || ev.Action != "restored" {
			t.Errorf("event %d: %+v", i, ev)
		}
	}
	// Removed jobs come back at the tail, in archive order.
	if got, want := f.list(f.layout.Queue("default")), append(append([]string(nil), live...), expired...); !equalStrings(got, want) {
		t.Errorf("default after restore:\n%q\nwant\n%q", got, want)
	}
	if got := f.list(f.layout.Queue("other")); !equalStrings(got, []string{other}) {
		t.Errorf("other: %q", got)
	}
	if got := f.list(f.layout.Queue("reports")); !equalStrings(got, []string{delayed}) {
		t.Errorf("reports: %q", got)
	}
	queues := f.rdb.SMembers(f.ctx, f.layout.Queues()).Val()
	sort.Strings(queues)
	if strings.Join(queues, ",") != "default,other,reports" {
		t.Errorf("queues set %v", queues)
	}
	for _, r := range removed {
		if f.exists(f.layout.Expiration(r.ID)) {
			t.Errorf("%s restored with a deadline although none was asked for", r.ID)
		}
	}

	// Twice: nothing more.
	before = f.dump()
	res, _ = f.restore(a.Path(), RestoreOptions{})
	if res.Restored != 0 || res.AlreadyRestored != len(removed) {
		t.Errorf("second restore: %+v", res)
	}
	if d := diffDumps(before, f.dump()); d != "" {
		t.Errorf("second restore changed Redis:\n%s", d)
	}
	dry, _ = f.restore(a.Path(), RestoreOptions{DryRun: true})
	if dry.Restored != 0 || dry.AlreadyRestored != len(removed) {
		t.Errorf("dry run after restore: %+v", dry)
	}
}

// TestRestoreDeadlineTTLAndBadLines: --deadline-ttl gives restored jobs a
// fresh deadline; lines that are not records are counted and skipped; an
// archive of nothing is an error.
func TestRestoreDeadlineTTLAndBadLines(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	f.push("default", f.job("a", "X"), "a", f.at(-time.Hour))
	a := f.archiveFile()
	f.mustSweep(Options{Archive: a}, nil)
	lines := f.archiveLines(a.Path())
	path := filepath.Join(t.TempDir(), "mixed.jsonl")
	content := "not json\n\n" + lines[0] + "\n" + `{"queue":"","payload":"x"}` + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	res, evs := f.restore(path, RestoreOptions{DeadlineTTL: 10 * time.Minute})
	if res.Records != 3 || res.Restored != 1 || res.Invalid != 2 {
		t.Errorf("restore: %+v", res)
	}
	if len(evs) != 3 || evs[0].Line != 1 || evs[0].Action != "invalid" || evs[1].Line != 3 || evs[2].Line != 4 {
		t.Errorf("events %+v", evs)
	}
	if got := f.rdb.Get(f.ctx, f.layout.Expiration("a")).Val(); got != f.at(10*time.Minute) {
		t.Errorf("restored deadline %q, want %q", got, f.at(10*time.Minute))
	}
	empty := filepath.Join(t.TempDir(), "empty.jsonl")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	in, _ := os.Open(empty)
	defer in.Close()
	if _, err := Restore(f.ctx, f.rdb, f.layout, in, RestoreOptions{}); err == nil {
		t.Error("restoring an empty archive succeeded")
	}
}

// TestRestoreDuplicatePayloads: two byte-identical jobs removed by one
// sweep are two records, and restore puts both back; a record written
// twice (a crash between the archive's fsync and the journal's trim) is
// put back once.
func TestRestoreDuplicatePayloads(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	dup := f.job("dup", "X")
	f.push("default", dup, "dup", f.at(-time.Hour))
	f.push("default", dup, "dup", f.at(-time.Hour))
	a := f.archiveFile()
	res, _ := f.mustSweep(Options{Archive: a}, nil)
	if res.Removed != 2 {
		t.Fatalf("removed %d, want 2", res.Removed)
	}
	lines := f.archiveLines(a.Path())
	if len(lines) != 2 {
		t.Fatalf("%d archive lines, want 2", len(lines))
	}
	// The first record again, as journal recovery would write it.
	replayed := filepath.Join(t.TempDir(), "replayed.jsonl")
	_ = os.WriteFile(replayed, []byte(lines[0]+"\n"+lines[0]+"\n"), 0o600)
	got, _ := f.restore(a.Path(), RestoreOptions{})
	if got.Restored != 2 || f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val() != 2 {
		t.Errorf("restored %d of 2 removed copies (already restored %d); queue holds %d",
			got.Restored, got.AlreadyRestored, f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val())
	}
	f.rdb.FlushDB(f.ctx)
	got, _ = f.restore(replayed, RestoreOptions{})
	if got.Restored != 1 || got.AlreadyRestored != 1 {
		t.Errorf("a record written twice: restored %d, already %d; want 1 and 1", got.Restored, got.AlreadyRestored)
	}
}

// TestJournalRecovery simulates a run killed after its script but before
// it drained the journal: the records wait in Redis, a run without an
// archive reports them and leaves them, and the next archiving run writes
// them out first (Recovered) and empties the journal.
func TestJournalRecovery(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	const n = 2001 // more than two drain pages
	recs := make([]any, n)
	for i := range recs {
		b, _ := json.Marshal(ArchiveRecord{RemovedAt: f.now.Add(-time.Minute), Queue: "default", List: f.layout.Queue("default"),
			ID: fmt.Sprintf("lost-%04d", i), Class: "X", Payload: f.job(fmt.Sprintf("lost-%04d", i), "X")})
		recs[i] = string(b)
	}
	if err := f.rdb.RPush(f.ctx, f.layout.Journal(), recs...).Err(); err != nil {
		t.Fatal(err)
	}
	f.push("default", f.job("now", "X"), "now", f.at(-time.Hour))

	// Dry runs never touch the journal.
	dry, _ := f.mustSweep(Options{DryRun: true}, nil)
	if dry.Recovered != 0 || f.rdb.LLen(f.ctx, f.layout.Journal()).Val() != n {
		t.Fatalf("dry run recovered %d", dry.Recovered)
	}
	// A run without an archive cannot write them: it says so, leaves them.
	res, _ := f.mustSweep(Options{Grace: 24 * time.Hour}, nil)
	found := false
	for _, p := range res.Problems {
		found = found || (p.Kind == "unarchived-journal" && p.Key == f.layout.Journal() && strings.Contains(p.Detail, fmt.Sprint(n)))
	}
	if !found || f.rdb.LLen(f.ctx, f.layout.Journal()).Val() != n {
		t.Errorf("run without archive: problems %+v, journal %d", res.Problems, f.rdb.LLen(f.ctx, f.layout.Journal()).Val())
	}

	a := f.archiveFile()
	res, removed := f.mustSweep(Options{Archive: a}, nil)
	if res.Recovered != n || len(removed) != 1 {
		t.Fatalf("recovered %d (want %d), removed %d", res.Recovered, n, len(removed))
	}
	if f.exists(f.layout.Journal()) {
		t.Error("journal not emptied")
	}
	lines := f.archiveLines(a.Path())
	if len(lines) != n+1 {
		t.Fatalf("archive has %d lines, want %d", len(lines), n+1)
	}
	for i := 0; i < n; i++ {
		if lines[i] != recs[i] {
			t.Fatalf("line %d is %s, want the journal's record %s", i, lines[i], recs[i])
		}
	}
	var last ArchiveRecord
	if err := json.Unmarshal([]byte(lines[n]), &last); err != nil || last.ID != "now" {
		t.Errorf("last line %s (%v)", lines[n], err)
	}
	// Nothing more to recover.
	res, _ = f.mustSweep(Options{Archive: a}, nil)
	if res.Recovered != 0 || len(f.archiveLines(a.Path())) != n+1 {
		t.Errorf("second run recovered %d", res.Recovered)
	}
}

// TestArchiveAppend: Append writes whole lines and an empty Append
// writes nothing.
func TestArchiveAppend(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a.jsonl")
	a, err := OpenArchive(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Append(nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Append([]string{`{"a":1}`, `{"b":2}`}); err != nil {
		t.Fatal(err)
	}
	_ = a.Close()
	a, _ = OpenArchive(path)
	_ = a.Append([]string{`{"c":3}`})
	_ = a.Close()
	b, _ := os.ReadFile(path)
	if !bytes.Equal(b, []byte("{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n")) {
		t.Errorf("archive content %q", b)
	}
}

// TestRestoreWrongTypeQueue: a queue key of another type makes restore
// fail without marking the record restored; once the key is fixed, a rerun
// puts the job back exactly once.
func TestRestoreWrongTypeQueue(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	job := f.job("a", "X")
	f.push("default", job, "a", f.at(-time.Hour))
	a := f.archiveFile()
	f.mustSweep(Options{Archive: a}, nil)
	f.rdb.Set(f.ctx, f.layout.Queue("default"), "not a list", 0)
	before := f.dump()
	in, err := os.Open(a.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	_, err = Restore(f.ctx, f.rdb, f.layout, in, RestoreOptions{DeadlineTTL: time.Hour, Now: f.clock})
	if err == nil {
		t.Fatal("restore onto a string queue key succeeded")
	}
	if d := diffDumps(before, f.dump()); d != "" {
		t.Errorf("a failed restore changed Redis:\n%s", d)
	}
	if !strings.Contains(err.Error(), f.layout.Queue("default")) || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("restore onto a string queue key: %v, want an error naming the key", err)
	}
	f.rdb.Del(f.ctx, f.layout.Queue("default"))
	res, _ := f.restore(a.Path(), RestoreOptions{DeadlineTTL: time.Hour})
	if res.Restored != 1 || res.AlreadyRestored != 0 {
		t.Errorf("rerun after the fix: %+v, want 1 restored", res)
	}
	if got := f.list(f.layout.Queue("default")); !equalStrings(got, []string{job}) {
		t.Errorf("queue after the rerun: %q", got)
	}
	res, _ = f.restore(a.Path(), RestoreOptions{})
	if res.Restored != 0 || res.AlreadyRestored != 1 || f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val() != 1 {
		t.Errorf("third run: %+v", res)
	}
}

// replayScripts runs every script call twice, as go-redis does when a reply
// is lost to a read timeout after Redis ran the script: the first reply is
// thrown away, the second is what the caller sees.
type replayScripts struct{}

func (replayScripts) DialHook(next redis.DialHook) redis.DialHook { return next }
func (replayScripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			if err := next(ctx, cmd); err != nil {
				return err
			}
		}
		return next(ctx, cmd)
	}
}
func (replayScripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRestoreRetriedScript: a retried restore script recognises its own
// earlier push, so the counts stay exact, while a record twice in the file
// is still put back once.
func TestRestoreRetriedScript(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	for _, id := range []string{"a", "b", "c"} {
		f.push("default", f.job(id, "X"), id, f.at(-time.Hour))
	}
	a := f.archiveFile()
	f.mustSweep(Options{Archive: a}, nil)
	lines := f.archiveLines(a.Path())
	path := filepath.Join(t.TempDir(), "twice.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(append(lines, lines[0]), "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	retrying := redis.NewClient(&redis.Options{Addr: f.srv.Addr()})
	defer retrying.Close()
	retrying.AddHook(replayScripts{})
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var evs []string
	res, err := Restore(f.ctx, retrying, f.layout, in, RestoreOptions{Now: f.clock, OnRecord: func(ev RestoreEvent) { evs = append(evs, ev.Action) }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Restored != 3 || res.AlreadyRestored != 1 || strings.Join(evs, " ") != "restored restored restored already-restored" {
		t.Errorf("retried scripts: %+v, events %v; want 3 restored, 1 already", res, evs)
	}
	if n := f.rdb.LLen(f.ctx, f.layout.Queue("default")).Val(); n != 3 {
		t.Errorf("the queue holds %d jobs, want 3", n)
	}
}

// TestRestoreOtherNamespace: a record swept from another namespace is
// refused before anything is written (the archive is read twice), unless
// AnyNamespace; from a reader that cannot rewind, at that record.
func TestRestoreOtherNamespace(t *testing.T) {
	t.Parallel()
	f := newSweepFixture(t)
	rec := func(list, queue string, delayedAt int64, id string) string {
		return resque.Marshal(ArchiveRecord{RemovedAt: f.now, Queue: queue, List: list, DelayedAt: delayedAt, ID: id, Class: "X", Payload: f.job(id, "X")})
	}
	own := rec(f.layout.Queue("q"), "q", 0, "own")
	ownDelayed := rec(f.layout.Delayed(1700000000), "q", 1700000000, "own-delayed")
	other := rec("other:queue:q", "q", 0, "other")
	archive := own + "\n" + ownDelayed + "\n" + other + "\n"

	before := f.dump()
	_, err := Restore(f.ctx, f.rdb, f.layout, strings.NewReader(archive), RestoreOptions{Now: f.clock})
	var nsErr *NamespaceError
	if !errors.As(err, &nsErr) || nsErr.Line != 3 || nsErr.From != "other" || nsErr.To != "resque" || !nsErr.Known {
		t.Fatalf("restore of a record from namespace other: %v (%+v)", err, nsErr)
	}
	if d := diffDumps(before, f.dump()); d != "" {
		t.Errorf("a refused restore changed Redis:\n%s", d)
	}
	// Not seekable: refused when reached.
	res, err := Restore(f.ctx, f.rdb, f.layout, io.MultiReader(strings.NewReader(archive)), RestoreOptions{Now: f.clock})
	if !errors.As(err, &nsErr) || res.Restored != 2 {
		t.Errorf("unseekable archive: %v, %+v", err, res)
	}
	res, err = Restore(f.ctx, f.rdb, f.layout, strings.NewReader(archive), RestoreOptions{Now: f.clock, AnyNamespace: true})
	if err != nil || res.Restored != 1 || res.AlreadyRestored != 2 {
		t.Errorf("AnyNamespace: %v, %+v", err, res)
	}
	if got := f.list(f.layout.Queue("q")); len(got) != 3 {
		t.Errorf("queue q: %q", got)
	}
	_, err = Restore(f.ctx, f.rdb, f.layout, strings.NewReader(rec("resque:elsewhere", "q", 0, "odd")+"\n"), RestoreOptions{Now: f.clock})
	if !errors.As(err, &nsErr) || nsErr.Known {
		t.Errorf("a record whose list is no queue: %v", err)
	}
}
