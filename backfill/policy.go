package backfill

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/resque-expire/resque-expire/internal/glob"
	"github.com/resque-expire/resque-expire/internal/resque"
)

// Rule is one rule of a backfill policy: a job whose queue matches Queue and
// whose class matches Class gets the deadline base + TTL. An empty Queue or
// Class matches every job. For ActiveJob jobs Class is matched against both
// the wrapped job_class and the wrapper class.
type Rule struct {
	Queue string
	Class string
	TTL   time.Duration
	// TTLText is the TTL as written ("3d"); empty for rules built in code.
	TTLText string
	// Line is the rule's line in its policy file, 0 for rules not read from
	// a file.
	Line int

	queue, class *glob.Pattern
}

// newRule builds a rule, compiling its globs. ttl must be positive.
func newRule(queue, class string, ttl time.Duration) (Rule, error) {
	r := Rule{Queue: queue, Class: class, TTL: ttl}
	if ttl <= 0 {
		return r, fmt.Errorf("ttl must be positive, got %s", ttl)
	}
	var err error
	if queue != "" {
		if r.queue, err = glob.Compile(queue); err != nil {
			return r, fmt.Errorf("queue: %w", err)
		}
	}
	if class != "" {
		if r.class, err = glob.Compile(class); err != nil {
			return r, fmt.Errorf("class: %w", err)
		}
	}
	return r, nil
}

// Name describes the rule in reports: "queue=mailers", "class=Reports::*",
// "queue=low class=Mail*", or "default" for a rule that matches every job.
func (r Rule) Name() string {
	var parts []string
	if r.Queue != "" {
		parts = append(parts, "queue="+r.Queue)
	}
	if r.Class != "" {
		parts = append(parts, "class="+r.Class)
	}
	if len(parts) == 0 {
		return "default"
	}
	return strings.Join(parts, " ")
}

// ttlString is the TTL as written in the policy, or formatted.
func (r Rule) ttlString() string {
	if r.TTLText != "" {
		return r.TTLText
	}
	return FormatTTL(r.TTL)
}

// MatchesEverything reports whether the rule matches every job (a default).
func (r Rule) MatchesEverything() bool {
	return (r.Queue == "" || r.Queue == "*") && (r.Class == "" || r.Class == "*")
}

// matches reports whether the rule selects a job of queue whose class is
// class; wrapper, when not nil, returns the class as Resque stores it (the
// ActiveJob wrapper), and is only called when class alone does not match.
func (r Rule) matches(queue, class string, wrapper func() string) bool {
	if r.queue != nil && !r.queue.Match(queue) {
		return false
	}
	if r.class == nil || r.class.Match(class) {
		return true
	}
	if wrapper == nil {
		return false
	}
	w := wrapper()
	return w != "" && w != class && r.class.Match(w)
}

// Policy is an ordered list of rules; the first rule that matches a job
// gives its TTL. A job no rule matches gets no deadline.
type Policy struct {
	// Source names where the policy was read from (a file name).
	Source string
	Rules  []Rule
}

// Match returns the index of the first rule matching the job, or -1.
func (p *Policy) Match(queue, class string, wrapper func() string) int {
	if p == nil {
		return -1
	}
	for i := range p.Rules {
		if p.Rules[i].matches(queue, class, wrapper) {
			return i
		}
	}
	return -1
}

// LoadPolicy reads and validates a policy file (see parsePolicy).
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return parsePolicy(path, data)
}

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): `)

// parsePolicy parses a YAML policy: a list of rules, each a mapping with an
// optional queue glob, an optional class glob and a required ttl, as in
//
//	# policy.yaml
//	- {queue: "mailers", ttl: "6h"}
//	- {class: "Reports::*", ttl: "3d"}
//	- {ttl: "24h"}   # the default: every other job
//
// ttl takes Go durations plus a "d" (24h) unit: "90m", "6h", "3d", "1d12h".
// Unknown keys, bad globs, bad or non-positive TTLs, an empty list and rules
// that can never match (after a rule matching every job, or repeating an
// earlier rule's queue and class) are errors naming source and the line.
func parsePolicy(source string, data []byte) (*Policy, error) {
	if source == "" {
		source = "policy"
	}
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("%s line %d: %s", source, line, fmt.Sprintf(format, args...))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if m := yamlLineErr.FindStringSubmatch(msg); m != nil {
			n, _ := strconv.Atoi(m[1])
			return nil, fail(n, "%s", msg[len(m[0]):])
		}
		return nil, fmt.Errorf("%s: %s", source, strings.TrimPrefix(msg, "yaml: "))
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, fmt.Errorf("%s: the policy has no rules; want a list such as\n  - {queue: \"mailers\", ttl: \"6h\"}\n  - {ttl: \"24h\"}", source)
	}
	root := doc.Content[0]
	if root.Kind != yaml.SequenceNode {
		return nil, fail(root.Line, "want a list of rules such as `- {queue: \"mailers\", ttl: \"6h\"}`, got %s", nodeKind(root))
	}
	if len(root.Content) == 0 {
		return nil, fail(root.Line, "the policy has no rules")
	}
	p := &Policy{Source: source}
	for _, item := range root.Content {
		r, err := parseRule(item, fail)
		if err != nil {
			return nil, err
		}
		for _, prev := range p.Rules {
			if prev.MatchesEverything() {
				return nil, fail(item.Line, "rule can never match: the rule on line %d matches every job; put the default last", prev.Line)
			}
			if prev.Queue == r.Queue && prev.Class == r.Class {
				return nil, fail(item.Line, "rule can never match: the rule on line %d has the same queue and class", prev.Line)
			}
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

// parseRule parses one rule of a policy, a mapping with queue, class and
// ttl keys; fail names the file and the line.
func parseRule(item *yaml.Node, fail func(line int, format string, args ...any) error) (Rule, error) {
	if item.Kind != yaml.MappingNode {
		return Rule{}, fail(item.Line, "a rule must be a mapping with queue, class and ttl keys, got %s", nodeKind(item))
	}
	var queue, class, ttlText string
	hasTTL := false
	seen := map[string]bool{}
	for k := 0; k+1 < len(item.Content); k += 2 {
		key, val := item.Content[k], item.Content[k+1]
		name := key.Value
		if seen[name] {
			return Rule{}, fail(key.Line, "key %q given twice", name)
		}
		seen[name] = true
		switch name {
		case "queue", "class", "ttl":
		default:
			return Rule{}, fail(key.Line, "unknown key %q (want queue, class, ttl)", name)
		}
		if val.Kind != yaml.ScalarNode || val.Tag == "!!null" {
			return Rule{}, fail(val.Line, "%s must be a string, got %s", name, nodeKind(val))
		}
		switch name {
		case "queue":
			if queue = val.Value; queue == "" {
				return Rule{}, fail(val.Line, "queue is empty; leave the key out to match every queue")
			}
		case "class":
			if class = val.Value; class == "" {
				return Rule{}, fail(val.Line, "class is empty; leave the key out to match every class")
			}
		case "ttl":
			ttlText, hasTTL = val.Value, true
		}
	}
	if !hasTTL {
		return Rule{}, fail(item.Line, "rule has no ttl")
	}
	ttl, err := resque.ParseDuration(ttlText)
	if err != nil {
		return Rule{}, fail(item.Line, "bad ttl %q: %v", ttlText, err)
	}
	r, err := newRule(queue, class, ttl)
	if err != nil {
		return Rule{}, fail(item.Line, "%v", err)
	}
	r.TTLText, r.Line = ttlText, item.Line
	return r, nil
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// FormatTTL renders d with a day unit when it is a whole number of days or
// longer: 72h → "3d", 36h → "1d12h", 90m → "1h30m".
func FormatTTL(d time.Duration) string {
	if d < 0 {
		return "-" + FormatTTL(-d)
	}
	const day = 24 * time.Hour
	if d < day {
		return trimZeroUnits(d.String())
	}
	days := d / day
	rest := d % day
	if rest == 0 {
		return strconv.FormatInt(int64(days), 10) + "d"
	}
	return strconv.FormatInt(int64(days), 10) + "d" + trimZeroUnits(rest.String())
}

// trimZeroUnits turns "6h0m0s" into "6h" and "1h30m0s" into "1h30m".
func trimZeroUnits(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
