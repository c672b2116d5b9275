package commands

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/audit"
)

// validFamilies is familyOptions as the flags' defaults leave them.
func validFamilies() familyOptions { return familyOptions{scanCount: audit.DefaultScanCount} }

func TestAuditOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*auditOptions)
		want string
	}{
		{"defaults", func(*auditOptions) {}, ""},
		{"scan count 0", func(o *auditOptions) { o.families.scanCount = 0 }, "--scan-count must be at least 1"},
		{"negative max-duration", func(o *auditOptions) { o.families.maxDuration = -1 }, "--max-duration must not be negative"},
		{"negative max-keys", func(o *auditOptions) { o.maxKeys = -1 }, "--max-keys must not be negative"},
		{"negative examples", func(o *auditOptions) { o.examples = -1 }, "--examples must not be negative"},
		{"negative fix-ttl", func(o *auditOptions) { o.fixTTL = -time.Hour }, "--fix-ttl must not be negative"},
		{"skip parts", func(o *auditOptions) { o.skip = []string{"jobs, loners", "deadlines"} }, ""},
		{"skip an unknown part", func(o *auditOptions) { o.skip = []string{"jobs,queues"} }, `--skip: unknown part "queues" (want families, jobs, deadlines or loners)`},
		{"skip families with a pattern", func(o *auditOptions) { o.skip, o.families.given = []string{"families"}, true }, "--skip families leaves nothing for --pattern or --config to do"},
		{"apply alone", func(o *auditOptions) { o.apply = true }, "--apply needs something to fix: --fix-ttl, --fix-stuck or --fix-orphans"},
		{"fixes, dry run", func(o *auditOptions) { o.fixTTL, o.fixStuck, o.fixOrphans = time.Hour, true, true }, ""},
		{"fixes applied", func(o *auditOptions) { o.fixStuck, o.apply = true, true }, ""},
		{"fix-ttl without families", func(o *auditOptions) { o.fixTTL, o.skip = time.Hour, []string{"families"} }, "--fix-ttl and --fix-stuck act on the key families: drop --skip families"},
		{"fix-stuck without families", func(o *auditOptions) { o.fixStuck, o.skip = true, []string{"families"} }, "--fix-ttl and --fix-stuck act on the key families"},
		{"fix-orphans without jobs", func(o *auditOptions) { o.fixOrphans, o.skip = true, []string{"jobs"} }, "--fix-orphans needs the jobs and the deadline keys or loner markers read"},
		{"fix-orphans without deadlines and loners", func(o *auditOptions) { o.fixOrphans, o.skip = true, []string{"deadlines,loners"} }, "--fix-orphans needs"},
		{"fix-orphans without loners", func(o *auditOptions) { o.fixOrphans, o.skip = true, []string{"loners"} }, ""},
	}
	for _, c := range cases {
		o := auditOptions{families: validFamilies(), examples: audit.DefaultExamples}
		c.edit(&o)
		checkValidation(t, c.name, &o, (*auditOptions).validate, c.want)
	}
}

// TestAuditOptionsRequest: the audit asked for, and the fix only when a
// --fix-* flag is given.
func TestAuditOptionsRequest(t *testing.T) {
	o := auditOptions{families: validFamilies(), skip: []string{"families,loners"}, maxKeys: 9}
	opts, fix, err := o.request()
	if err != nil || fix != nil {
		t.Fatalf("request() fix %v, err %v", fix, err)
	}
	if opts.Families != nil || !opts.Jobs || !opts.Deadlines || opts.Loners || opts.MaxKeys != 9 || opts.Examples != -1 ||
		opts.ScanCount != audit.DefaultScanCount {
		t.Errorf("request() = %+v", opts)
	}
	o = auditOptions{families: validFamilies(), fixStuck: true, apply: true, examples: 3}
	opts, fix, err = o.request()
	if err != nil || fix == nil || !fix.Stuck || !fix.Apply || len(opts.Families) == 0 || opts.Examples != 3 {
		t.Errorf("request() = %+v, fix %+v, err %v", opts, fix, err)
	}
}

// TestFamilyOptionsLoad: --config and --pattern, or the default families.
func TestFamilyOptionsLoad(t *testing.T) {
	f := validFamilies()
	if fs, err := f.load(); err != nil || len(fs) != len(audit.DefaultFamilies()) {
		t.Errorf("no flags: %v, %v", fs, err)
	}
	f.patterns = []string{"lock:*", "idem:*"}
	if fs, err := f.load(); err != nil || len(fs) != 2 || fs[0].Pattern != "lock:*" {
		t.Errorf("patterns: %v, %v", fs, err)
	}
	f.patterns = []string{""}
	if _, err := f.load(); err == nil || err.Error() != "--pattern must not be empty" || exitCode(err) != ExitUsage {
		t.Errorf("empty pattern: %v", err)
	}
	f = validFamilies()
	f.config = filepath.Join(t.TempDir(), "missing.yml")
	if _, err := f.load(); err == nil || exitCode(err) != ExitUsage {
		t.Errorf("missing config: %v", err)
	}
	if err := os.WriteFile(f.config, []byte("- {pattern: \"a:*\", ttl: 2w}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fs, err := f.load(); err != nil || len(fs) != 1 {
		t.Errorf("config: %v, %v", fs, err)
	}
}

func TestCheckOptionsValidate(t *testing.T) {
	zero, neg, hour := int64(0), int64(-1), time.Hour
	negD := -time.Second
	cases := []struct {
		name string
		o    checkOptions
		want string
	}{
		{"no threshold", checkOptions{}, "give at least one threshold"},
		{"a count", checkOptions{counts: map[string]int64{"max-expired": 0}}, ""},
		{"max-overdue alone", checkOptions{maxOverdue: &hour}, ""},
		{"max-expired-failures alone", checkOptions{maxExpiredFailures: &zero}, ""},
		{"negative count", checkOptions{counts: map[string]int64{"max-stuck": -1}}, "--max-stuck must not be negative"},
		{"first negative count in flag order", checkOptions{counts: map[string]int64{"max-queue-length": -1, "max-missing": -2}}, "--max-missing must not be negative"},
		{"negative max-expired-failures", checkOptions{maxExpiredFailures: &neg}, "--max-expired-failures must not be negative"},
		{"negative max-overdue", checkOptions{maxOverdue: &negD}, "--max-overdue must not be negative"},
		{"bad scan count", checkOptions{counts: map[string]int64{"max-no-ttl": 0}, families: familyOptions{}}, "--scan-count must be at least 1"},
	}
	for _, c := range cases {
		if c.name != "bad scan count" {
			c.o.families = validFamilies()
		}
		checkValidation(t, c.name, &c.o, (*checkOptions).validate, c.want)
	}
}

// TestCheckOptionsThresholds: each count flag sets its own threshold.
func TestCheckOptionsThresholds(t *testing.T) {
	o := checkOptions{counts: map[string]int64{}}
	for i, f := range checkCounts {
		o.counts[f.name] = int64(i)
	}
	d := time.Minute
	o.maxOverdue = &d
	th := o.thresholds()
	got := []*int64{th.MaxExpired, th.MaxMissing, th.MaxInvalid, th.MaxOrphans, th.MaxNoTTL, th.MaxStuck, th.MaxDuplicates, th.MaxQueueLength}
	for i, p := range got {
		if p == nil || *p != int64(i) {
			t.Errorf("threshold of --%s = %v, want %d", checkCounts[i].name, p, i)
		}
	}
	if th.MaxOverdue == nil || *th.MaxOverdue != d || !th.Any() {
		t.Errorf("max-overdue %v, Any %v", th.MaxOverdue, th.Any())
	}
	if (&checkOptions{}).thresholds().Any() {
		t.Error("no thresholds, yet Any")
	}
}
