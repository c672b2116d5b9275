// Package stop names why a run ended early. The steps of a sweep, a
// backfill or an audit return its sentinel errors; Reason is the one place
// that turns them into the summary's "stopped" reason and the error the run
// returns.
package stop

import (
	"context"
	"errors"
)

// The reasons a summary gives in its "stopped" field.
const (
	Limit       = "limit"        // --limit reached: a normal end
	MaxDuration = "max-duration" // --max-duration reached: a normal end
	MaxKeys     = "max-keys"     // audit: --max-keys reached
	Interrupted = "interrupted"  // a signal, or the caller's context
	Error       = "error"        // anything else
)

// The errors a run's steps return to end it early.
var (
	ErrLimit       = errors.New("limit reached")
	ErrMaxDuration = errors.New("max duration reached")
	ErrInterrupted = errors.New("interrupted")
)

// Reason says why a run that ended with err stopped ("" when err is nil),
// and what the run returns: nil when a bound was reached (the summary says
// so), the context's error after an interrupt, err itself otherwise.
func Reason(ctx context.Context, err error) (string, error) {
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, ErrLimit):
		return Limit, nil
	case errors.Is(err, ErrMaxDuration):
		return MaxDuration, nil
	case errors.Is(err, ErrInterrupted) || (ctx.Err() != nil && errors.Is(err, ctx.Err())):
		return Interrupted, ctx.Err()
	}
	return Error, err
}
