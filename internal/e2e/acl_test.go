package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/resque-expire/resque-expire/internal/redistest"
	"github.com/resque-expire/resque-expire/internal/resque"
	"github.com/resque-expire/resque-expire/internal/sample"
	"github.com/resque-expire/resque-expire/sweep"
)

// aclLine returns the ACL SETUSER line docs/acl.md gives for role, with
// the password placeholder replaced by pw.
func aclLine(t *testing.T, role, pw string) []any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "acl.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "<!-- acl: "+role+" -->")
	if i < 0 {
		t.Fatalf("docs/acl.md has no <!-- acl: %s --> block", role)
	}
	block := doc[i:]
	start := strings.Index(block, "```\n") + 4
	line := strings.TrimSpace(block[start : start+strings.Index(block[start:], "```")])
	var args []any
	for _, f := range strings.Fields(line) {
		if f == ">CHANGE-ME" {
			f = ">" + pw
		}
		args = append(args, f)
	}
	return args
}

// TestPublishedACLRoles creates the two users docs/acl.md publishes and runs
// every command as them: the read role can run every read-only command and
// dry run and is refused a sweep (naming what it lacks, changing nothing);
// the write role can run every writing command.
func TestPublishedACLRoles(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := redistest.Client(t, srv)
	ctx := t.Context()
	fill(t, rdb, sample.Demo(time.Now()))
	// The audit's families live outside the namespace: their patterns are
	// added as docs/acl.md says.
	families := map[string][]any{"read": {"%R~email_sent:*", "%R~payment:*"}, "write": {"~email_sent:*", "~payment:*"}}
	for _, role := range []string{"read", "write"} {
		if err := rdb.Do(ctx, append(aclLine(t, role, "pw-"+role), families[role]...)...).Err(); err != nil {
			t.Fatalf("the %s role's ACL line: %v", role, err)
		}
	}
	read := "redis://resque-expire-read:pw-read@" + srv.Addr() + "/0"
	write := "redis://resque-expire:pw-write@" + srv.Addr() + "/0"
	archive := filepath.Join(t.TempDir(), "removed.jsonl")
	failedArchive := filepath.Join(t.TempDir(), "failed.jsonl")

	for _, tc := range []struct {
		url   string
		args  []string
		codes []int
	}{
		{read, []string{"inspect"}, []int{0}},
		{read, []string{"list"}, []int{0}},
		{read, []string{"list", "--source", "failed"}, []int{0}},
		{read, []string{"check", "--max-expired-failures", "1000000"}, []int{0}},
		{read, []string{"sweep", "--dry-run", "--failed"}, []int{0}},
		{read, []string{"check", "--max-expired", "1000000"}, []int{0}},
		{read, []string{"audit"}, []int{0}},
		{read, []string{"sweep", "--dry-run"}, []int{0}},
		{read, []string{"backfill", "--dry-run", "--ttl", "1h"}, []int{0}},
		{write, []string{"backfill", "--ttl", "1h"}, []int{0}},
		{write, []string{"sweep", "--yes", "--archive", archive}, []int{0}},
		{write, []string{"restore", archive}, []int{0}},
		{write, []string{"sweep", "--yes", "--failed", "--failed-older-than", "1s", "--archive", failedArchive}, []int{0}},
		{write, []string{"restore", failedArchive}, []int{0}},
		{write, []string{"enqueue", "--queue", "mailers", "--class", "Canary", "--ttl", "1h"}, []int{0}},
		{write, []string{"audit", "--fix-orphans", "--apply"}, []int{0}},
	} {
		r := runEnv(t, nil, "", append([]string{"--redis", tc.url}, tc.args...)...)
		if !containsInt(tc.codes, r.code) {
			t.Errorf("as %s: %s: want exit %v, got %s", userOf(tc.url), strings.Join(tc.args, " "), tc.codes, r)
		}
	}

	if b, err := os.ReadFile(failedArchive); err != nil || !strings.Contains(string(b), `"failed":"failed"`) {
		t.Errorf("the write role's sweep --failed archived no failure entry: %v", err)
	}

	// The copy engine's commands (sweep.CopyNeeds, which a run probes
	// before it copies a deep queue): the write role may run them all, the
	// read role none of its writes.
	copyNeeds := sweep.CopyNeeds(resque.MustLayout("resque", ""))
	for _, role := range []struct {
		user, pw string
		ok       bool
	}{{"resque-expire", "pw-write", true}, {"resque-expire-read", "pw-read", false}} {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: role.user, Password: role.pw})
		err := sweep.CheckPermissions(ctx, c, copyNeeds)
		_ = c.Close()
		if (err == nil) != role.ok {
			t.Errorf("as %s: the copy engine's commands: %v, want allowed %t", role.user, err, role.ok)
		}
	}

	before := snapshot(t, rdb)
	r := runEnv(t, nil, "", "--redis", read, "sweep", "--yes", "--max-age", "1s")
	r.expect(t, 1)
	if !strings.Contains(r.stderr, "may not run") || strings.Contains(r.stderr, "pw-read") {
		t.Errorf("the read role's sweep: want one line naming what it may not run, got %s", r)
	}
	sameSnapshot(t, "a sweep refused to the read role", before, snapshot(t, rdb))
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func userOf(url string) string {
	u := strings.TrimPrefix(url, "redis://")
	return u[:strings.Index(u, ":")]
}
