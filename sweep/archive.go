package sweep

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// Archive is an append-only file of removed jobs, one JSON object a line.
type Archive struct {
	path string
	f    *os.File
}

// OpenArchive opens (creating if needed) an archive file for appending. The
// file is created with mode 0600: it holds job payloads.
func OpenArchive(path string) (*Archive, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	// A run killed (or out of disk) in the middle of an append can leave a
	// last line without its newline: end it, so that the next record is a
	// line of its own rather than glued onto the torn one.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return nil, fmt.Errorf("open archive %s: end its torn last line: %w", path, err)
			}
		}
	}
	return &Archive{path: path, f: f}, nil
}

// Path is the archive's file name.
func (a *Archive) Path() string { return a.path }

// Append writes lines and fsyncs before returning.
func (a *Archive) Append(lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if _, err := a.f.WriteString(b.String()); err != nil {
		return fmt.Errorf("write archive %s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("fsync archive %s: %w", a.path, err)
	}
	return nil
}

// Close closes the file.
func (a *Archive) Close() error { return a.f.Close() }

// drainJournal moves the journal's records to the archive: read, append and
// fsync, then trim what was written. A crash between the fsync and the trim
// writes those records twice on the next run; restore skips duplicates.
func (r *run) drainJournal(ctx context.Context) (int, error) {
	key := r.s.layout.Journal()
	total := 0
	for {
		lines, err := r.s.rdb.LRange(ctx, key, 0, 999).Result()
		if err != nil {
			return total, fmt.Errorf("read journal %s: %w", key, err)
		}
		if len(lines) == 0 {
			return total, nil
		}
		if err := r.opts.Archive.Append(lines); err != nil {
			return total, err
		}
		// Trim by script, only if the journal still starts with what was
		// written: a retried LTRIM whose first reply was lost would drop
		// records nobody wrote out.
		if err := journalTrimScript.Run(ctx, r.s.rdb, []string{key}, len(lines), sha1hex(lines[0]), sha1hex(lines[len(lines)-1])).Err(); err != nil {
			return total, fmt.Errorf("trim journal %s: %w", key, err)
		}
		total += len(lines)
		if len(lines) < 1000 {
			return total, nil
		}
	}
}

//go:embed journal_trim.lua
var journalTrimSrc string

var journalTrimScript = luaScripts.Add(journalTrimSrc)

func sha1hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

//go:embed restore_job.lua
var restoreJobSrc string

var restoreJobScript = luaScripts.Add(restoreJobSrc)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	DryRun bool
	// DeadlineTTL, when > 0, gives each restored job a fresh deadline this
	// far in the future; otherwise it is restored without one (missing),
	// so the next sweep leaves it alone.
	DeadlineTTL time.Duration
	// MarkerTTL is how long restore remembers a record it put back
	// (default 30 days).
	MarkerTTL time.Duration
	// AnyNamespace restores records swept from another namespace into the
	// layout's namespace. Without it such a record is refused with a
	// *NamespaceError before anything is written (when the archive can be
	// read twice, an io.Seeker; otherwise at that record).
	AnyNamespace bool
	Now          func() time.Time
	// OnRecord is called for each record with what happened to it.
	OnRecord func(RestoreEvent)
}

// RestoreEvent says what happened to one archive record.
type RestoreEvent struct {
	Line   int    `json:"line"`
	Queue  string `json:"queue"`
	ID     string `json:"id"`
	Class  string `json:"class"`
	Action string `json:"action"` // restored, would-restore, already-restored, invalid
	Detail string `json:"detail,omitempty"`
}

// RestoreResult counts a restore.
type RestoreResult struct {
	DryRun          bool           `json:"dry_run"`
	Records         int            `json:"records"`
	Restored        int            `json:"restored"`
	AlreadyRestored int            `json:"already_restored"`
	Invalid         int            `json:"invalid"`
	Queues          map[string]int `json:"queues"`
}

// NamespaceError refuses an archive record swept from another namespace
// than the one Restore writes to (see RestoreOptions.AnyNamespace).
type NamespaceError struct {
	Line int
	// List is the record's list key; From the namespace it names ("" when
	// it names none), To the namespace restore writes to.
	List, From, To string
	// Known is false when the list key is not a queue or delayed bucket of
	// any namespace (From is then meaningless).
	Known bool
}

func (e *NamespaceError) Error() string {
	if !e.Known {
		return fmt.Sprintf("line %d of the archive: its list %q is not a queue or delayed bucket of namespace %q", e.Line, e.List, e.To)
	}
	return fmt.Sprintf("line %d of the archive was swept from namespace %q (list %q), not %q", e.Line, e.From, e.List, e.To)
}

// recordNamespace tells the namespace a record was swept from by its list
// key: <ns>:queue:<queue>, or <ns>:delayed:<ts> for a delayed job.
func recordNamespace(rec *ArchiveRecord) (string, bool) {
	suffix := "queue:" + rec.Queue
	if rec.DelayedAt != 0 {
		suffix = "delayed:" + strconv.FormatInt(rec.DelayedAt, 10)
	}
	if rec.Failed != "" {
		suffix = rec.Failed // a failure entry, from its failed list
	}
	if rec.List == suffix {
		return "", true
	}
	return strings.CutSuffix(rec.List, ":"+suffix)
}

// checkNamespace refuses a record not swept from layout's namespace.
func checkNamespace(rec *ArchiveRecord, layout resque.Layout, line int) error {
	ns, ok := recordNamespace(rec)
	if ok && ns == layout.Namespace() {
		return nil
	}
	return &NamespaceError{Line: line, List: rec.List, From: ns, To: layout.Namespace(), Known: ok}
}

// parseRecord reads one archive line; ok is false for a line that is not a
// record (reason says why).
func parseRecord(text string) (rec ArchiveRecord, reason string, ok bool) {
	if err := json.Unmarshal([]byte(text), &rec); err != nil {
		return rec, err.Error(), false
	}
	if (rec.Queue == "" && rec.Failed == "") || rec.Payload == "" {
		return rec, "not an archive record", false
	}
	return rec, "", true
}

func newArchiveScanner(in io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 256*1024*1024)
	return sc
}

// checkNamespaces reads the whole archive for a record of another
// namespace, then rewinds it.
func checkNamespaces(in io.ReadSeeker, layout resque.Layout) error {
	sc := newArchiveScanner(in)
	line := 0
	for sc.Scan() {
		line++
		if rec, _, ok := parseRecord(strings.TrimSpace(sc.Text())); ok {
			if err := checkNamespace(&rec, layout, line); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("read archive: %w", err)
	}
	return nil
}

// Restore puts the jobs of an archive back on their queues (RPUSH and SADD
// <ns>:queues). Each record is put back at most once: the script that pushes
// it also sets a marker keyed by the record's digest, last and only after
// checking that none of its writes can fail (key types, ACL), so running
// Restore twice on the same file (or on a file with a record twice) enqueues
// nothing twice, and a run that failed leaves nothing marked that it did not
// push. The marker holds a token of this run and line, so a script call
// retried by the client after a lost reply counts its own push as restored.
// Records swept from another namespace are refused unless AnyNamespace.
func Restore(ctx context.Context, rdb redis.UniversalClient, layout resque.Layout, in io.Reader, opts RestoreOptions) (*RestoreResult, error) {
	if opts.MarkerTTL <= 0 {
		opts.MarkerTTL = 30 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	rs := &restorer{rdb: rdb, layout: layout, opts: opts, seen: map[string]bool{},
		res: &RestoreResult{DryRun: opts.DryRun, Queues: map[string]int{}}}
	if err := rs.prepare(ctx, in); err != nil {
		return rs.res, err
	}
	sc := newArchiveScanner(in)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		if err := rs.record(ctx, line, text); err != nil {
			return rs.res, err
		}
	}
	if err := sc.Err(); err != nil {
		return rs.res, fmt.Errorf("read archive: %w", err)
	}
	if rs.res.Records == 0 {
		return rs.res, errors.New("the archive has no records")
	}
	return rs.res, nil
}

// restorer is one Restore call: its options, its retry token and what it
// has done so far.
type restorer struct {
	rdb    redis.UniversalClient
	layout resque.Layout
	opts   RestoreOptions
	token  string
	seen   map[string]bool // markers a dry run has counted
	res    *RestoreResult
}

// prepare refuses a foreign namespace before anything is written (when the
// archive can be read twice), draws the retry token and loads the scripts.
func (rs *restorer) prepare(ctx context.Context, in io.Reader) error {
	if seeker, ok := in.(io.ReadSeeker); ok && !rs.opts.AnyNamespace {
		if err := checkNamespaces(seeker, rs.layout); err != nil {
			return err
		}
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return fmt.Errorf("restore token: %w", err)
	}
	rs.token = hex.EncodeToString(tok)
	if rs.opts.DryRun {
		return nil
	}
	if err := LoadScripts(ctx, rs.rdb); err != nil {
		if redis.IsReadOnlyError(err) {
			return ErrReadOnly
		}
		return err
	}
	return nil
}

// record restores (or, in a dry run, counts) the archive record on one line.
func (rs *restorer) record(ctx context.Context, line int, text string) error {
	rs.res.Records++
	ev := RestoreEvent{Line: line}
	rec, reason, ok := parseRecord(text)
	if !ok {
		rs.res.Invalid++
		ev.Action, ev.Detail = "invalid", reason
		emit(rs.opts, ev)
		return nil
	}
	if !rs.opts.AnyNamespace {
		if err := checkNamespace(&rec, rs.layout, line); err != nil {
			return err
		}
	}
	ev.Queue, ev.ID, ev.Class = rec.Queue, rec.ID, rec.Class
	marker := rs.layout.RestoredMarker(restoreDigest(&rec))
	var done bool
	var err error
	if rs.opts.DryRun {
		done, err = rs.wouldRestore(ctx, marker)
	} else {
		done, err = rs.restore(ctx, &rec, marker, line)
	}
	if err != nil {
		return err
	}
	switch {
	case !done:
		rs.res.AlreadyRestored++
		ev.Action = "already-restored"
	case rs.opts.DryRun:
		ev.Action = "would-restore"
	default:
		ev.Action = "restored"
	}
	if done {
		rs.res.Restored++
		rs.res.Queues[rec.Queue]++
	}
	emit(rs.opts, ev)
	return nil
}

// restoreDigest names a record for its restored marker: the same removal
// of the same job always gives the same digest.
func restoreDigest(rec *ArchiveRecord) string {
	sum := sha256.Sum256([]byte(rec.List + "\x00" + rec.Payload + "\x00" + rec.RemovedAt.UTC().Format(time.RFC3339Nano) +
		"\x00" + strconv.FormatInt(rec.Position, 10)))
	return hex.EncodeToString(sum[:16])
}

// wouldRestore reports whether a dry run would restore the record behind
// marker: not when an earlier run restored it, nor when it stands twice in
// the file (a real run restores it once).
func (rs *restorer) wouldRestore(ctx context.Context, marker string) (bool, error) {
	n, err := rs.rdb.Exists(ctx, marker).Result()
	if err != nil {
		return false, fmt.Errorf("check restore marker: %w", err)
	}
	twice := rs.seen[marker]
	rs.seen[marker] = true
	return n == 0 && !twice, nil
}

// restore puts one record back with its script; false means it had been
// restored before.
func (rs *restorer) restore(ctx context.Context, rec *ArchiveRecord, marker string, line int) (bool, error) {
	token := rs.token + ":" + strconv.Itoa(line)
	var done int
	var err error
	if rec.Failed != "" {
		done, err = restoreFailed(ctx, rs.rdb, rs.layout, rec, marker, rs.opts.MarkerTTL.Milliseconds(), token)
	} else {
		done, err = rs.restoreJob(ctx, rec, marker, token)
	}
	if err != nil {
		if redis.IsReadOnlyError(err) {
			return false, ErrReadOnly
		}
		return false, fmt.Errorf("restore line %d: %w", line, err)
	}
	return done == 1, nil
}

// restoreJob runs restore_job.lua for a record of a queued job, with a
// fresh deadline when RestoreOptions.DeadlineTTL asks for one.
func (rs *restorer) restoreJob(ctx context.Context, rec *ArchiveRecord, marker, token string) (int, error) {
	keys := []string{rs.layout.Queue(rec.Queue), rs.layout.Queues(), marker}
	deadline, keyExpiry := "", ""
	if rs.opts.DeadlineTTL > 0 && rec.ID != "" {
		keys = append(keys, rs.layout.Expiration(rec.ID))
		d := rs.opts.Now().Add(rs.opts.DeadlineTTL)
		deadline = resque.FormatDeadline(d)
		// Like backfill: the key outlives its deadline by the retention,
		// so keys of jobs that ran disappear by themselves.
		keyExpiry = resque.FormatDeadline(d.Add(resque.DefaultRetention))
	}
	return restoreJobScript.Run(ctx, rs.rdb, keys, rec.Payload, rec.Queue, rs.opts.MarkerTTL.Milliseconds(),
		deadline, keyExpiry, token).Int()
}

func emit(o RestoreOptions, ev RestoreEvent) {
	if o.OnRecord != nil {
		o.OnRecord(ev)
	}
}
