package fleet

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadRefusesWhatItCannotUse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body, want string }{
		{"unknown field", "- name: a\n  url: redis://h/0\n  urll: x\n", "line 1"},
		{"duplicate", "- name: a\n  url: redis://h/0\n- name: b\n  url: redis://h/0\n- name: a\n  url: redis://h/0\n", "line 5"},
		{"no name", "- url: redis://h/0\n", "needs a name"},
		{"no url", "- name: a\n  namespace: x\n", "needs url"},
		{"both urls", "- name: a\n  url: redis://h/0\n  url_env: X\n", "not both"},
		{"glob name", "- name: a*\n  url: redis://h/0\n", "glob"},
		{"not a list", "name: a\n", "YAML list"},
		{"empty", "[]\n", "no targets"},
	} {
		p := filepath.Join(t.TempDir(), "t.yml")
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	all := []Target{{Name: "eu-1"}, {Name: "eu-2"}, {Name: "us-1"}}
	got, err := Select(all, []string{"eu-*"})
	if err != nil || len(got) != 2 || got[1].Name != "eu-2" {
		t.Errorf("eu-*: %v, %v", got, err)
	}
	if _, err := Select(all, []string{"eu-*", "ap-*"}); err == nil || !strings.Contains(err.Error(), "ap-*") {
		t.Errorf("a glob matching nothing: %v", err)
	}
}

func TestPlanReplacesTheFlagsATargetSets(t *testing.T) {
	t.Setenv("FLEET_TEST_URL", "redis://:pw@127.0.0.1:1/0")
	cmd := Command{
		Globals:    []string{"--redis", "redis://other/0", "--namespace=x", "--format", "json", "--id-path", "jid"},
		Sub:        []string{"sweep", "--yes"},
		TakesValue: map[string]bool{"redis": true, "namespace": true, "format": true, "id-path": true},
	}
	jobs, err := Plan(cmd, []Target{{Name: "t", URLEnv: "FLEET_TEST_URL", Namespace: "app", IDPaths: []string{"job_id"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--format", "json", "--namespace=app", "--id-path=job_id", "--no-progress", "sweep", "--yes"}
	if !reflect.DeepEqual(jobs[0].Args, want) {
		t.Errorf("args %q, want %q", jobs[0].Args, want)
	}
	if strings.Contains(strings.Join(jobs[0].Args, " "), "pw") {
		t.Error("the password is in the child's arguments")
	}
	env := strings.Join(jobs[0].Env, "\n")
	for _, w := range []string{"REDIS_URL=redis://:pw@127.0.0.1:1/0", ChildEnv + "=1", TargetEnv + "=t"} {
		if !strings.Contains(env, w) {
			t.Errorf("env lacks %s", w)
		}
	}
}

func TestWorst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		codes []int
		want  int
	}{{[]int{0, 0}, 0}, {[]int{0, 3}, 3}, {[]int{3, 75}, 75}, {[]int{75, 1, 3}, 1}, {[]int{1, 2}, 2}, {[]int{0, 130}, 1}} {
		var outs []Outcome
		for _, c := range tc.codes {
			outs = append(outs, Outcome{Code: c})
		}
		if got := Worst(outs); got != tc.want {
			t.Errorf("Worst(%v) = %d, want %d", tc.codes, got, tc.want)
		}
	}
}

func TestCombineSumsNumbers(t *testing.T) {
	t.Parallel()
	c := Combine([]Outcome{
		{Target: "a", Stdout: []byte(`{"removed": 2, "totals": {"jobs": 5}, "queues": [1], "dry_run": false}`)},
		{Target: "b", Stdout: []byte(`{"removed": 3, "totals": {"jobs": 1}}`)},
		{Target: "c", Code: 1, ErrLine: "down"},
	})
	if c.Totals["removed"] != 5.0 || c.Totals["totals"].(map[string]any)["jobs"] != 6.0 {
		t.Errorf("totals %v", c.Totals)
	}
	if _, ok := c.Totals["queues"]; ok {
		t.Error("lists were summed")
	}
	if string(c.Targets[2].Result) != "null" || c.Targets[2].Error != "down" {
		t.Errorf("failed target: %+v", c.Targets[2])
	}
}

func TestMarkLine(t *testing.T) {
	t.Parallel()
	if got := markLine(`{"level":"warn"}`, "a"); got != `{"target":"a","level":"warn"}` {
		t.Errorf("JSON line: %s", got)
	}
	if got := markLine("resque-expire: boom", "a"); got != "a: resque-expire: boom" {
		t.Errorf("plain line: %s", got)
	}
	if got := errorText(`{"level":"error","exit_code":1,"message":"boom"}`); got != "boom" {
		t.Errorf("errorText: %s", got)
	}
}
