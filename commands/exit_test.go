package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/resque-expire/resque-expire/backfill"
	"github.com/resque-expire/resque-expire/enqueue"
	"github.com/resque-expire/resque-expire/internal/fleet"
	"github.com/resque-expire/resque-expire/sweep"
)

// TestExitCodes: every kind of error a command returns gets the exit code
// docs/exit-codes.md gives it, wrapped or not.
func TestExitCodes(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("sweep failed (partial summary above): %w", err) }
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, ExitOK},
		{"any other error", errors.New("connect to redis://h:1/0: connection refused"), ExitFailure},
		{"usage error", usageErrorf("--limit must not be negative"), ExitUsage},
		{"wrapped usage error", fmt.Errorf("context: %w", usageErrorf("bad")), ExitUsage},
		{"library error marked usage", usage(errors.New("bad --redis URL")), ExitUsage},
		{"usage of nil is nil", usage(nil), ExitOK},
		{"targets file", &fleet.UsageError{Err: errors.New("--targets: no such file")}, ExitUsage},
		{"enqueue request", fmt.Errorf("enqueue: %w", enqueue.ErrInvalidRequest), ExitUsage},
		{"backfill without a TTL", backfill.ErrNoTTL, ExitUsage},
		{"lock held", &sweep.LockHeldError{Key: "resque:resque-expire:lock"}, ExitLocked},
		{"lock held, wrapped", wrap(&sweep.LockHeldError{Key: "k"}), ExitLocked},
		{"read-only replica", sweep.ErrReadOnly, ExitFailure},
		{"read-only replica, wrapped", wrap(sweep.ErrReadOnly), ExitFailure},
		{"threshold exceeded", errThreshold, ExitThreshold},
		{"worst target", fleetExit(75), ExitLocked},
		{"every target ok but one usage", fleetExit(ExitUsage), ExitUsage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := exitCode(c.err); got != c.want {
				t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
			}
		})
	}
}

// TestSilentErrors: only the errors whose result said everything go
// without an error line.
func TestSilentErrors(t *testing.T) {
	for _, err := range []error{errThreshold, fleetExit(1), fmt.Errorf("x: %w", errThreshold)} {
		if !silent(err) {
			t.Errorf("silent(%v) = false", err)
		}
	}
	for _, err := range []error{usageErrorf("bad"), errors.New("x"), sweep.ErrReadOnly} {
		if silent(err) {
			t.Errorf("silent(%v) = true", err)
		}
	}
}

// TestErrorLine: the final error line is plain text, or under
// --log-format json (flag or environment, given before or after the
// command) a zerolog error event with the message and the exit code.
func TestErrorLine(t *testing.T) {
	const redis = "--redis=redis://127.0.0.1:1/0"
	cases := []struct {
		name     string
		env      string
		args     string
		json     bool
		code     int
		contains string
	}{
		{"plain", "", "sweep --limit -1", false, ExitUsage, "--limit must not be negative"},
		{"json flag after the command", "", "sweep --limit -1 --log-format json", true, ExitUsage, "--limit must not be negative"},
		{"json flag before the command", "", "--log-format json list --state bogus", true, ExitUsage, `--state: want expired`},
		{"json from the environment", "json", "sweep --lock-ttl 10ms", true, ExitUsage, "--lock-ttl must be at least 1s"},
		{"json, error while parsing flags", "", "--log-format json sweep --max-age 3x", true, ExitUsage, "--max-age"},
		{"json, unknown command", "", "--log-format json sweeep", true, ExitUsage, `unknown command "sweeep"`},
		{"console is plain", "", "--log-format console sweep --limit -1", false, ExitUsage, "--limit must not be negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			unsetenv(t, "RESQUE_EXPIRE_LOG_FORMAT", "RESQUE_EXPIRE_TARGETS", "REDIS_URL")
			if c.env != "" {
				t.Setenv("RESQUE_EXPIRE_LOG_FORMAT", c.env)
			}
			var stdout, stderr bytes.Buffer
			args := append([]string{"resque-expire", redis}, strings.Fields(c.args)...)
			if code := Main(args, strings.NewReader(""), &stdout, &stderr); code != c.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, c.code, stderr.String())
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			if !c.json {
				if !strings.HasPrefix(last, "resque-expire: ") || !strings.Contains(last, c.contains) {
					t.Fatalf("error line %q, want resque-expire: …%s…", last, c.contains)
				}
				return
			}
			for _, l := range lines {
				if !json.Valid([]byte(l)) {
					t.Errorf("stderr line is not JSON: %q", l)
				}
			}
			var rec struct {
				Level    string `json:"level"`
				ExitCode *int   `json:"exit_code"`
				Time     string `json:"time"`
				Message  string `json:"message"`
			}
			if err := json.Unmarshal([]byte(last), &rec); err != nil {
				t.Fatalf("last line %q: %v", last, err)
			}
			if rec.Level != "error" || rec.ExitCode == nil || *rec.ExitCode != c.code || rec.Time == "" || !strings.Contains(rec.Message, c.contains) {
				t.Errorf("error record %q: want level error, exit_code %d, a time and a message with %q", last, c.code, c.contains)
			}
		})
	}
}

// unsetenv unsets variables for the test (restored after it).
func unsetenv(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		t.Setenv(n, "")
		os.Unsetenv(n)
	}
}
