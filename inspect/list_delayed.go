package inspect

import (
	"context"
	"errors"
)

// ListDelayed is List for resque-scheduler's delayed jobs alone (list
// --source delayed).
func (s *Scanner) ListDelayed(ctx context.Context, opts ListOptions, emit func(Listed) error) ([]Problem, error) {
	problems, err := s.ScanDelayed(ctx, newLister(opts, emit).visit, nil)
	if errors.Is(err, errListLimit) {
		err = nil
	}
	return problems, err
}
