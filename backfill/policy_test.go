package backfill

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/resque"
)

func TestFormatTTL(t *testing.T) {
	for d, want := range map[time.Duration]string{
		90 * time.Minute: "1h30m",
		6 * time.Hour:    "6h",
		72 * time.Hour:   "3d",
		36 * time.Hour:   "1d12h",
		time.Second:      "1s",
		-48 * time.Hour:  "-2d",
	} {
		if got := FormatTTL(d); got != want {
			t.Errorf("FormatTTL(%s) = %q, want %q", d, got, want)
		}
		if back, err := resque.ParseDuration(want); err != nil || back != d {
			t.Errorf("ParseDuration(FormatTTL(%s)) = %s, %v", d, back, err)
		}
	}
}

const examplePolicy = `# TTLs by queue and class; the first match wins.
- {queue: "mailers", ttl: "6h"}
- {class: "Reports::*", ttl: "3d"}
- queue: "low*"
  class: "Cleanup*"
  ttl: 1d12h
- {ttl: "24h"}
`

func TestParsePolicy(t *testing.T) {
	p, err := parsePolicy("policy.yaml", []byte(examplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		queue, class string
		ttl          time.Duration
		line         int
		name         string
	}
	want := []rule{
		{"mailers", "", 6 * time.Hour, 2, "queue=mailers"},
		{"", "Reports::*", 72 * time.Hour, 3, "class=Reports::*"},
		{"low*", "Cleanup*", 36 * time.Hour, 4, "queue=low* class=Cleanup*"},
		{"", "", 24 * time.Hour, 7, "default"},
	}
	if len(p.Rules) != len(want) {
		t.Fatalf("got %d rules, want %d", len(p.Rules), len(want))
	}
	for i, w := range want {
		r := p.Rules[i]
		got := rule{r.Queue, r.Class, r.TTL, r.Line, r.Name()}
		if got != w {
			t.Errorf("rule %d = %+v, want %+v", i, got, w)
		}
	}
	if p.Rules[2].ttlString() != "1d12h" {
		t.Errorf("ttlString = %q, want the text as written", p.Rules[2].ttlString())
	}
}

func TestPolicyMatchFirstRuleWins(t *testing.T) {
	p, err := parsePolicy("policy.yaml", []byte(examplePolicy))
	if err != nil {
		t.Fatal(err)
	}
	wrapper := func(s string) func() string { return func() string { return s } }
	for _, tc := range []struct {
		queue, class string
		wrapper      func() string
		want         int
	}{
		{"mailers", "Reports::Daily", nil, 0}, // queue rule comes first
		{"default", "Reports::Daily", nil, 1},
		{"low", "CleanupJob", nil, 2},
		{"low", "Other", nil, 3},
		{"lowest", "Cleanup", nil, 2},
		{"high", "CleanupJob", nil, 3},
		// The class glob is tried on the ActiveJob wrapper too.
		{"x", "MyJob", wrapper("Reports::Wrapper"), 1},
		{"x", "MyJob", wrapper("Plain"), 3},
	} {
		if got := p.Match(tc.queue, tc.class, tc.wrapper); got != tc.want {
			t.Errorf("Match(%q, %q) = %d, want %d", tc.queue, tc.class, got, tc.want)
		}
	}
	// Without a default, a job no rule matches gets -1.
	p.Rules = p.Rules[:3]
	if got := p.Match("high", "Other", nil); got != -1 {
		t.Errorf("Match without default = %d, want -1", got)
	}
	var none *Policy
	if got := none.Match("q", "C", nil); got != -1 {
		t.Errorf("nil policy Match = %d, want -1", got)
	}
}

func TestParsePolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"bad ttl", "- {queue: a, ttl: 1h}\n- {queue: b, ttl: 2h}\n- {queue: mailers, ttl: \"3x\"}\n",
			`policy.yaml line 3: bad ttl "3x": not a duration`},
		{"unknown key", "- {queue: a, ttl: 1h}\n- queue: b\n  tll: 2h\n",
			`policy.yaml line 3: unknown key "tll" (want queue, class, ttl)`},
		{"missing ttl", "- {queue: a, ttl: 1h}\n- {queue: b}\n",
			`policy.yaml line 2: rule has no ttl`},
		{"zero ttl", "- {ttl: 0s}\n", `policy.yaml line 1: ttl must be positive`},
		{"negative ttl", "- {ttl: -1d}\n", `policy.yaml line 1: ttl must be positive`},
		{"bad glob", "- {class: \"Reports[\", ttl: 1h}\n", `policy.yaml line 1: class: glob "Reports[" has an unclosed [`},
		{"empty queue", "- {queue: \"\", ttl: 1h}\n", `policy.yaml line 1: queue is empty`},
		{"null class", "- {class: , ttl: 1h}\n", `policy.yaml line 1: class must be a string, got nothing`},
		{"list value", "- {queue: [a, b], ttl: 1h}\n", `policy.yaml line 1: queue must be a string, got a list`},
		{"duplicate key", "- queue: a\n  queue: b\n  ttl: 1h\n", `policy.yaml line 2: key "queue" given twice`},
		{"not a list", "queue: a\nttl: 1h\n", `policy.yaml line 1: want a list of rules`},
		{"scalar rule", "- {ttl: 1h}\n- mailers\n", `policy.yaml line 2: a rule must be a mapping`},
		{"empty list", "[]\n", `policy.yaml line 1: the policy has no rules`},
		{"empty file", "# nothing\n", `policy.yaml: the policy has no rules`},
		{"after default", "- {ttl: 1d}\n- {queue: mailers, ttl: 6h}\n",
			`policy.yaml line 2: rule can never match: the rule on line 1 matches every job; put the default last`},
		{"star default", "- {queue: \"*\", ttl: 1d}\n- {class: X, ttl: 6h}\n",
			`policy.yaml line 2: rule can never match: the rule on line 1 matches every job`},
		{"repeated rule", "- {queue: m, ttl: 1d}\n- {queue: m, ttl: 6h}\n",
			`policy.yaml line 2: rule can never match: the rule on line 1 has the same queue and class`},
		{"yaml syntax", "- {queue: a, ttl: 1h}\n- {queue: b ttl: 1h\n", `policy.yaml line `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parsePolicy("policy.yaml", []byte(tc.src))
			if err == nil {
				t.Fatalf("no error; rules %+v", p.Rules)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error\n  %s\nwant it to start with\n  %s", err, tc.want)
			}
		})
	}
}

func TestLoadPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ttl.yaml")
	if err := os.WriteFile(path, []byte(examplePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPolicy(path)
	if err != nil || len(p.Rules) != 4 || p.Source != path {
		t.Fatalf("LoadPolicy = %+v, %v", p, err)
	}
	if _, err := LoadPolicy(filepath.Join(t.TempDir(), "absent.yaml")); err == nil || !strings.Contains(err.Error(), "read policy") {
		t.Errorf("missing file: %v", err)
	}
}
