package inspect

import (
	"fmt"
	"sync/atomic"

	"github.com/resque-expire/resque-expire/internal/glob"
)

// ProblemFilterUnmatched is the kind of the problem reported for a --queue
// or --class pattern that matched nothing: a typo in a filter would
// otherwise make a run a silent no-op.
const ProblemFilterUnmatched = "filter-matched-nothing"

// filterHits remembers which patterns of a glob.Set matched some name.
type filterHits struct {
	set  glob.Set
	hits []atomic.Bool
}

func newFilterHits(set glob.Set) *filterHits {
	return &filterHits{set: set, hits: make([]atomic.Bool, len(set))}
}

// match is set.Match (true for an empty set), trying every pattern so that
// each one that matches is recorded.
func (f *filterHits) match(names ...string) bool {
	if len(f.set) == 0 {
		return true
	}
	ok := false
	for i, p := range f.set {
		for _, n := range names {
			if p.Match(n) {
				if !f.hits[i].Load() {
					f.hits[i].Store(true)
				}
				ok = true
				break
			}
		}
	}
	return ok
}

func (f *filterHits) unmatched() []string {
	var out []string
	for i, p := range f.set {
		if !f.hits[i].Load() {
			out = append(out, p.String())
		}
	}
	return out
}

// Unmatched returns one problem per --queue pattern that matched no queue
// and per --class pattern that matched no job of the queues in view, among
// everything this scanner has read so far. Call it after a run.
func (s *Scanner) Unmatched() []Problem {
	var out []Problem
	for _, p := range s.queueHits.unmatched() {
		out = append(out, Problem{Key: "--queue " + p, Kind: ProblemFilterUnmatched,
			Detail: fmt.Sprintf("--queue %q matched no queue", p)})
	}
	for _, p := range s.classHits.unmatched() {
		out = append(out, Problem{Key: "--class " + p, Kind: ProblemFilterUnmatched,
			Detail: fmt.Sprintf("--class %q matched no job", p)})
	}
	return out
}
