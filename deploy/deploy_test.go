package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/resque-expire/resque-expire/commands"
	"github.com/resque-expire/resque-expire/internal/metrics"
)

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			out = append(out, doc)
		}
	}
}

// acceptedByCLI fails the test unless the binary's command line accepts
// args (flags and their values), checked by asking for the command's help
// after them: flags are parsed first, so an unknown flag or a bad value is
// a usage error (exit 2).
func acceptedByCLI(t *testing.T, where string, args []string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := commands.Main(append(append([]string{"resque-expire"}, args...), "--help"), strings.NewReader(""), &out, &errOut)
	if code != 0 {
		t.Errorf("%s: resque-expire %s: exit %d\n%s", where, strings.Join(args, " "), code, errOut.String())
	}
}

// TestKubernetesManifests: every manifest parses as YAML, every object has
// an apiVersion, a kind and a name, the kinds the deployment needs are
// there, and the containers' arguments are accepted by the command line.
func TestKubernetesManifests(t *testing.T) {
	kinds := map[string]bool{}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests")
	}
	for _, f := range files {
		for _, doc := range yamlDocs(t, f) {
			kind, _ := doc["kind"].(string)
			meta, _ := doc["metadata"].(map[string]any)
			if doc["apiVersion"] == nil || kind == "" || meta == nil || meta["name"] == nil {
				t.Errorf("%s: an object without apiVersion, kind or metadata.name: %v", f, doc)
			}
			kinds[kind] = true
			for _, args := range containerArgs(doc) {
				acceptedByCLI(t, f+" "+kind, args)
			}
		}
	}
	for _, k := range []string{"CronJob", "Deployment", "Service", "ServiceMonitor"} {
		if !kinds[k] {
			t.Errorf("no %s among the manifests", k)
		}
	}
}

// containerArgs finds the args of every container below v.
func containerArgs(v any) [][]string {
	var out [][]string
	switch x := v.(type) {
	case map[string]any:
		if cs, ok := x["containers"].([]any); ok {
			for _, c := range cs {
				if m, ok := c.(map[string]any); ok {
					var args []string
					for _, a := range m["args"].([]any) {
						args = append(args, a.(string))
					}
					out = append(out, args)
				}
			}
		}
		for _, e := range x {
			out = append(out, containerArgs(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, containerArgs(e)...)
		}
	}
	return out
}

// TestSystemdUnits: each unit has its sections, and each ExecStart is
// accepted by the command line.
func TestSystemdUnits(t *testing.T) {
	want := map[string][]string{
		"systemd/resque-expire.service":       {"[Unit]", "[Service]", "[Install]", "ExecStart=/usr/local/bin/resque-expire serve "},
		"systemd/resque-expire-sweep.service": {"[Unit]", "[Service]", "Type=oneshot", "SuccessExitStatus=75", "ExecStart=/usr/local/bin/resque-expire sweep "},
		"systemd/resque-expire-sweep.timer":   {"[Timer]", "Unit=resque-expire-sweep.service", "[Install]"},
	}
	for path, needles := range want {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, n := range needles {
			if !strings.Contains(text, n) {
				t.Errorf("%s lacks %q", path, n)
			}
		}
		for _, line := range strings.Split(text, "\n") {
			if cmd, ok := strings.CutPrefix(line, "ExecStart=/usr/local/bin/resque-expire "); ok {
				acceptedByCLI(t, path, strings.Fields(cmd))
			}
		}
	}
}

// metricNames are the names the metrics package exposes.
func metricNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	// Names lists them all, vectors included (which a scrape shows only
	// once observed).
	for _, n := range metrics.Names() {
		names[n] = true
	}
	return names
}

var metricRef = regexp.MustCompile(`resque_expire_[a-z_]+`)

// refsExist fails the test for each resque_expire_* name in text that the
// metrics package does not expose.
func refsExist(t *testing.T, where, text string, names map[string]bool) {
	t.Helper()
	for _, n := range metricRef.FindAllString(text, -1) {
		if !names[n] && !strings.HasPrefix(n, "resque_expire_sweep") {
			t.Errorf("%s refers to %s, which resque-expire does not expose", where, n)
		}
	}
}

// TestGrafanaDashboard: the dashboard is JSON, has panels, and queries
// only metrics that exist.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/resque-expire.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || len(d.Panels) < 5 {
		t.Fatalf("dashboard %q has %d panels", d.Title, len(d.Panels))
	}
	names := metricNames(t)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, tg := range p.Targets {
			refsExist(t, "panel "+p.Title, tg.Expr, names)
		}
	}
}

// TestAlertRules: the rules pass `promtool check rules`, their unit tests
// pass `promtool test rules`, every alert has a unit test, and they refer
// only to metrics that exist.
func TestAlertRules(t *testing.T) {
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("prometheus/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := metricNames(t)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
				t.Errorf("alert %s has no unit test in alerts_test.yml", r.Alert)
			}
			refsExist(t, "alert "+r.Alert, r.Expr, names)
		}
	}
	if n < 4 {
		t.Errorf("%d alerts, want at least 4", n)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("SKIPPED: promtool not installed (make test installs Debian's prometheus package as root: scripts/ensure-prometheus.sh)")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestSystemdAnalyzeVerify: `systemd-analyze verify` finds nothing to say
// about the units (unknown keys and bad values are only warnings there, so
// any line about them fails the test). The binary's path is replaced by an
// executable that exists here.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("SKIPPED: systemd-analyze not installed")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	units, _ := filepath.Glob("systemd/*")
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/local/bin/resque-expire"), []byte(self)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(sa, append([]string{"verify"}, paths...)...).CombinedOutput()
	// Only what it says about these files counts: without a running
	// systemd it may also talk about the host.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, dir) {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
