package commands

import (
	"errors"
	"fmt"

	"github.com/resque-expire/resque-expire/backfill"
	"github.com/resque-expire/resque-expire/enqueue"
	"github.com/resque-expire/resque-expire/internal/fleet"
	"github.com/resque-expire/resque-expire/sweep"
)

// Exit codes, the same for every command (documented in docs/exit-codes.md).
const (
	ExitOK = 0
	// ExitFailure: the run failed (Redis unreachable, auth refused, ...).
	ExitFailure = 1
	// ExitUsage: unknown flag, bad duration, bad URL, bad file.
	ExitUsage = 2
	// ExitThreshold: check found a threshold exceeded, doctor a check that
	// fails.
	ExitThreshold = 3
	// ExitLocked: another sweep holds the lock (EX_TEMPFAIL).
	ExitLocked = 75
)

// exitCodes decides the exit code of every error a command returns: the
// first entry that matches wins, and an error none matches is a failed run
// (ExitFailure). Commands return what went wrong, never a code; this table
// is the one place that turns the one into the other.
var exitCodes = []struct {
	code  int
	match func(error) bool
}{
	// sweep: another run holds the lock.
	{ExitLocked, isA[*sweep.LockHeldError]},
	// check's thresholds, doctor's checks: the result said it all.
	{ExitThreshold, is(errThreshold)},
	// Bad flags, operands, URLs and files.
	{ExitUsage, isA[*usageError]},
	{ExitUsage, isA[*fleet.UsageError]},
	{ExitUsage, is(enqueue.ErrInvalidRequest)}, // enqueue: a request Enqueue refuses
	{ExitUsage, is(backfill.ErrNoTTL)},         // backfill: a policy that sets no TTL
	// A write refused by a read-only replica: a failed run, said plainly.
	{ExitFailure, is(sweep.ErrReadOnly)},
}

// exitCode is the process exit code for err (nil: ExitOK).
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var f fleetExit
	if errors.As(err, &f) {
		return int(f)
	}
	for _, e := range exitCodes {
		if e.match(err) {
			return e.code
		}
	}
	return ExitFailure
}

func isA[T error](err error) bool {
	var t T
	return errors.As(err, &t)
}

func is(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

// usageError is a mistake in the command line: a flag, an operand, or a
// file or URL a flag names. Options' validate methods return them.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf is a usage error with this message.
func usageErrorf(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// usage marks err, from reading what the command line names (a URL, a
// policy or targets file), as a usage error.
func usage(err error) error {
	if err == nil {
		return nil
	}
	return &usageError{err: err}
}

// errThreshold ends a run whose result showed a threshold exceeded (check)
// or a check that fails (doctor); the result is the message, so no error
// line follows it.
var errThreshold = errors.New("a threshold is exceeded")

// fleetExit ends a run over many targets with the worst of their exit
// codes; each target's run said what went wrong.
type fleetExit int

func (e fleetExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// silent reports whether err's message must not be printed: the result
// already said everything.
func silent(err error) bool {
	var f fleetExit
	return errors.Is(err, errThreshold) || errors.As(err, &f)
}
