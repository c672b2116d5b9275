package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

func jsonString(s string) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

// TargetResult is one target's part of a fleet run's JSON.
type TargetResult struct {
	Target   string          `json:"target"`
	ExitCode int             `json:"exit_code"`
	Result   json.RawMessage `json:"result"`
	Error    string          `json:"error,omitempty"`
}

// Combined is a fleet run's JSON: each target's result, and the totals of
// the numbers the targets that answered have in common.
type Combined struct {
	Targets []TargetResult `json:"targets"`
	Totals  map[string]any `json:"totals"`
}

// Combine gathers the outcomes of a run whose children wrote one JSON value
// each (--format json). Totals sum every number of the results' objects,
// nested objects field by field; lists and text are left out.
func Combine(outs []Outcome) Combined {
	c := Combined{Targets: []TargetResult{}, Totals: map[string]any{}}
	for _, o := range outs {
		tr := TargetResult{Target: o.Target, ExitCode: o.Code, Error: o.ErrLine, Result: json.RawMessage("null")}
		var v any
		if trimmed := bytes.TrimSpace(o.Stdout); len(trimmed) > 0 && json.Unmarshal(trimmed, &v) == nil {
			tr.Result = json.RawMessage(trimmed)
			if m, ok := v.(map[string]any); ok {
				addNumbers(c.Totals, m)
			}
		}
		c.Targets = append(c.Targets, tr)
	}
	return c
}

// addNumbers adds src's numbers into dst, recursing into objects.
func addNumbers(dst, src map[string]any) {
	for k, v := range src {
		switch x := v.(type) {
		case float64:
			if cur, ok := dst[k].(float64); ok {
				dst[k] = cur + x
			} else if _, taken := dst[k]; !taken {
				dst[k] = x
			}
		case map[string]any:
			sub, ok := dst[k].(map[string]any)
			if !ok {
				if _, taken := dst[k]; taken {
					continue
				}
				sub = map[string]any{}
				dst[k] = sub
			}
			addNumbers(sub, x)
		}
	}
}

// MarkLines rewrites a child's JSON-lines output (--format jsonl) with a
// "target" field in each object.
func MarkLines(w io.Writer, o Outcome) error {
	sc := bufio.NewScanner(bytes.NewReader(o.Stdout))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			m = map[string]json.RawMessage{"value": json.RawMessage(line)}
		}
		q, _ := json.Marshal(o.Target)
		m["target"] = q
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
			return err
		}
	}
	return sc.Err()
}

// SplitArchive reads an archive written by a fleet sweep and writes each
// target's records to a file of its own in dir, for restoring each job to
// its own target. Records of targets not in want are counted in skipped; a
// record without a target is a usage error (such an archive was written
// by a sweep of one Redis: restore it with --redis).
func SplitArchive(archive, dir string, want []Target) (files map[string]string, skipped map[string]int, err error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, nil, fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	chosen := map[string]bool{}
	for _, t := range want {
		chosen[t.Name] = true
	}
	files, skipped = map[string]string{}, map[string]int{}
	outs := map[string]*os.File{}
	defer func() {
		for _, o := range outs {
			if cerr := o.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	}()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var rec struct {
			Target string `json:"target"`
		}
		_ = json.Unmarshal(line, &rec) // an unreadable line goes to no target: restore reports it
		if rec.Target == "" {
			return nil, nil, usagef("%s:%d: a record without a target: this archive was not written by a sweep with --targets; restore it with --redis", archive, n)
		}
		if !chosen[rec.Target] {
			skipped[rec.Target]++
			continue
		}
		o := outs[rec.Target]
		if o == nil {
			path := filepath.Join(dir, rec.Target+".jsonl")
			if o, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err != nil {
				return nil, nil, err
			}
			outs[rec.Target], files[rec.Target] = o, path
		}
		if _, err := o.Write(append(append([]byte{}, line...), '\n')); err != nil {
			return nil, nil, err
		}
	}
	return files, skipped, sc.Err()
}
