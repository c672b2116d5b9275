package commands

import (
	"errors"
	"fmt"
)

// Exit codes, the same for every command (documented in docs/exit-codes.md).
const (
	ExitOK = 0
	// ExitFailure: the run failed (Redis unreachable, auth refused, ...).
	ExitFailure = 1
	// ExitUsage: unknown flag, bad duration, bad URL, bad file.
	ExitUsage = 2
	// ExitThreshold: check found a threshold exceeded.
	ExitThreshold = 3
	// ExitLocked: another sweep holds the lock (EX_TEMPFAIL).
	ExitLocked = 75
)

// exitError carries an exit code with its cause.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage error (exit 2).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// withCode attaches an exit code to err.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// silentExit ends the run with code and no error line (the result already
// said everything, e.g. check's failed thresholds).
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var s silentExit
	if errors.As(err, &s) {
		return int(s)
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return ExitFailure
}
