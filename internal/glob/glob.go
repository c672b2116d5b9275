// Package glob matches names against shell-style patterns (*, ?, [a-z],
// [!x], backslash escapes) as operators type them in --queue and --class.
// Unlike path.Match, '*' also matches '/' and ':', which queue and class
// names (Reports::Daily) contain.
package glob

import (
	"fmt"
	"regexp"
	"strings"
)

// Pattern is a compiled glob.
type Pattern struct {
	src string
	re  *regexp.Regexp
}

// Compile compiles a glob pattern.
func Compile(pattern string) (*Pattern, error) {
	var b strings.Builder
	b.WriteString(`\A(?s:`)
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '\\':
			if i+1 >= len(pattern) {
				return nil, fmt.Errorf("glob %q ends with a lone backslash", pattern)
			}
			i++
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		case '[':
			end := strings.IndexByte(pattern[i+1:], ']')
			if end < 0 {
				return nil, fmt.Errorf("glob %q has an unclosed [", pattern)
			}
			class := pattern[i+1 : i+1+end]
			if end == 0 {
				return nil, fmt.Errorf("glob %q has an empty []", pattern)
			}
			b.WriteByte('[')
			if class[0] == '!' || class[0] == '^' {
				b.WriteByte('^')
				class = class[1:]
			}
			b.WriteString(strings.NewReplacer(`\`, `\\`, `[`, `\[`).Replace(class))
			b.WriteByte(']')
			i += end + 1
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	b.WriteString(`)\z`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("bad glob %q: %w", pattern, err)
	}
	return &Pattern{src: pattern, re: re}, nil
}

// Match reports whether s matches the pattern.
func (p *Pattern) Match(s string) bool { return p.re.MatchString(s) }

func (p *Pattern) String() string { return p.src }

// Set is a list of patterns; an empty Set matches everything.
type Set []*Pattern

// CompileSet compiles every pattern.
func CompileSet(patterns []string) (Set, error) {
	out := make(Set, 0, len(patterns))
	for _, s := range patterns {
		p, err := Compile(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Match reports whether any pattern matches s, or true for an empty set.
func (s Set) Match(name string) bool {
	if len(s) == 0 {
		return true
	}
	for _, p := range s {
		if p.Match(name) {
			return true
		}
	}
	return false
}
