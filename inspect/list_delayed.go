package inspect

import (
	"context"
	"errors"
)

// ListDelayed is List for resque-scheduler's delayed jobs alone (list
// --source delayed).
func (s *Scanner) ListDelayed(ctx context.Context, opts ListOptions, emit func(Listed) error) ([]Problem, error) {
	want := map[State]bool{}
	for _, st := range opts.States {
		want[st] = true
	}
	var n int64
	errLimit := errors.New("limit reached")
	problems, err := s.ScanDelayed(ctx, func(_ context.Context, c *Chunk) error {
		for i := range c.Jobs {
			j := &c.Jobs[i]
			if j.Skipped || (len(want) > 0 && !want[j.State]) {
				continue
			}
			if err := emit(Listed{Job: *j, List: c.List, Now: c.Now}); err != nil {
				return err
			}
			if n++; opts.Limit > 0 && n >= opts.Limit {
				return errLimit
			}
		}
		return nil
	}, nil)
	if errors.Is(err, errLimit) {
		err = nil
	}
	return problems, err
}
