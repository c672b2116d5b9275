package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// LoadFamilies reads an audit --config file (see parseFamilies).
func LoadFamilies(path string) ([]Family, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	fs, err := parseFamilies(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return fs, nil
}

// parseFamilies parses the YAML list of key families of an audit --config
// file, either as the document itself or under a "families" key:
//
//	families:
//	  - name: payment            # optional; defaults to the pattern
//	    pattern: "payment:*"     # SCAN MATCH glob, required
//	    type: string             # optional; default string
//	    ttl: 7d                  # optional expected TTL
//	    values: [in_progress, completed, failed]
//	    stuck_value: in_progress
//	    stuck_after: 1h
//
// Durations are Go durations ("90m", "168h"), whole seconds, or with day
// and week units ("7d", "2w", "1d12h"). Unknown fields are errors.
func parseFamilies(data []byte) ([]Family, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.MappingNode {
		var list *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			if k := root.Content[i].Value; k != "families" {
				return nil, fmt.Errorf("line %d: unknown field %q (want families)", root.Content[i].Line, k)
			}
			list = root.Content[i+1]
		}
		if list == nil {
			return nil, errors.New("no families")
		}
		root = list
	}
	if root.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: want a list of key families", root.Line)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("no families")
	}
	out := make([]Family, 0, len(root.Content))
	for _, n := range root.Content {
		f, err := parseFamily(n)
		if err != nil {
			return nil, err
		}
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func parseFamily(n *yaml.Node) (Family, error) {
	var f Family
	if n.Kind != yaml.MappingNode {
		return f, fmt.Errorf("line %d: a family is a mapping with at least a pattern", n.Line)
	}
	scalar := func(k, v *yaml.Node) (string, error) {
		if v.Kind != yaml.ScalarNode {
			return "", fmt.Errorf("line %d: %s must be a single value", v.Line, k.Value)
		}
		return v.Value, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "name":
			f.Name, err = scalar(k, v)
		case "pattern":
			f.Pattern, err = scalar(k, v)
		case "type":
			f.Type, err = scalar(k, v)
		case "stuck_value":
			f.StuckValue, err = scalar(k, v)
		case "ttl", "stuck_after":
			var s string
			if s, err = scalar(k, v); err == nil {
				var d time.Duration
				if d, err = resque.ParseDuration(s); err != nil {
					err = fmt.Errorf("line %d: %s: %w", v.Line, k.Value, err)
				} else if k.Value == "ttl" {
					f.TTL = d
				} else {
					f.StuckAfter = d
				}
			}
		case "values":
			if v.Kind != yaml.SequenceNode {
				return f, fmt.Errorf("line %d: values must be a list", v.Line)
			}
			f.Values = []string{}
			for _, e := range v.Content {
				if e.Kind != yaml.ScalarNode {
					return f, fmt.Errorf("line %d: each value must be a single value", e.Line)
				}
				// The literal text: `true` is the string "true".
				f.Values = append(f.Values, e.Value)
			}
		default:
			return f, fmt.Errorf("line %d: unknown field %q (want name, pattern, type, ttl, values, stuck_value, stuck_after)", k.Line, k.Value)
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}
