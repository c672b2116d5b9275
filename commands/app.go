package commands

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9/logging"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/internal/redisconn"
)

// Version is set at build time with -ldflags "-X .../commands.Version=...".
var Version = "dev"

// Main runs the command line and returns the process exit code. It is the
// whole of main, so that end-to-end tests and main share one path.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal asks the run to stop cleanly (finish the batch,
	// release the lock); from then on the signals are Go's again, so a
	// second one kills the process at once.
	defer context.AfterFunc(ctx, stop)()
	// go-redis logs dial failures on stderr by itself; setup routes its
	// logs to ours (debug level), and until then they are off.
	logging.Disable()
	if path := os.Getenv("RESQUE_EXPIRE_CPUPROFILE"); path != "" {
		// For profiling the tool itself (see docs/performance.md).
		if stopProfile, err := startCPUProfile(path); err == nil {
			defer stopProfile()
		}
	}
	app := NewApp(stdin, stdout, stderr)
	hoisted := hoistGlobalFlags(app, args)
	var err error
	if f, ferr := newFleetRun(app, hoisted); ferr != nil {
		err = ferr
	} else if f != nil {
		err = f.run(ctx, stdout, stderr)
	} else {
		err = app.RunContext(ctx, hoisted)
	}
	code := exitCode(err)
	if err != nil && !silent(err) {
		msg := twoDashes(oneLine(redisconn.Scrub(err.Error(), secretsFromArgs(args)...)))
		writeErrorLine(stderr, jsonLogs(app, hoisted), code, msg)
	}
	return code
}

// writeErrorLine writes the run's one error line: under --log-format json
// a JSON log event like every other stderr line, with the exit code;
// otherwise plain text.
func writeErrorLine(w io.Writer, json bool, code int, msg string) {
	if json {
		log := zerolog.New(w).With().Timestamp().Logger()
		log.Error().Int("exit_code", code).Msg(msg)
		return
	}
	fmt.Fprintf(w, "resque-expire: %s\n", msg)
}

// flagNameRE finds the flag name urfave/cli's parse errors write with one
// dash ("invalid value ... for flag -max-age: ...").
var flagNameRE = regexp.MustCompile(`(for flag|flag provided but not defined:) -([a-z])`)

// twoDashes writes a flag named in a parse error as it is documented,
// with two dashes.
func twoDashes(msg string) string { return flagNameRE.ReplaceAllString(msg, "$1 --$2") }

// logFormatKey is where setup records the log format it resolved, in
// App.Metadata, for the final error line.
const logFormatKey = "log-format"

// jsonLogs reports whether the run asked for --log-format json (on the
// command line or in RESQUE_EXPIRE_LOG_FORMAT). When setup ran it recorded
// its decision; otherwise (a usage error while parsing flags) the
// arguments are read here.
func jsonLogs(app *cli.App, args []string) bool {
	if f, ok := app.Metadata[logFormatKey].(string); ok {
		return f == "json"
	}
	format := os.Getenv("RESQUE_EXPIRE_LOG_FORMAT")
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		switch {
		case a == "--log-format" || a == "-log-format":
			if i+1 < len(args) {
				format = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "--log-format="):
			format = strings.TrimPrefix(a, "--log-format=")
		case strings.HasPrefix(a, "-log-format="):
			format = strings.TrimPrefix(a, "-log-format=")
		}
	}
	return format == "json"
}

// NewApp builds the cli application.
func NewApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "resque-expire",
		Usage:                "find and remove expired Resque jobs, backfill deadlines, audit idempotency keys",
		Version:              Version,
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		Flags:                globalFlags(),
		Description: `resque-expire maintains the Redis behind Resque job queues. Each job carries an id,
and its deadline lives in its own key, <ns>:job:<id>:expiration (Unix seconds).

Results go to stdout (--format table|json|jsonl|csv); logs and progress go to stderr.

Exit codes: 0 success; 1 the run failed (Redis unreachable, auth refused, ...);
2 usage error; 3 check found a threshold exceeded; 75 another sweep holds the lock.`,
		Commands: commandList(),
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usage(err)
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(c.App.ErrWriter, "resque-expire: unknown command %q; see resque-expire --help\n", name)
			// urfave/cli gives this hook no way to return an error; the
			// exit code is set by the Before check in runCommand.
		},
		ExitErrHandler: func(*cli.Context, error) {},
		Before: func(c *cli.Context) error {
			if c.Args().Present() && c.App.Command(c.Args().First()) == nil && !strings.HasPrefix(c.Args().First(), "-") {
				return usageErrorf("unknown command %q; see resque-expire --help", c.Args().First())
			}
			return nil
		},
	}
	app.Metadata = map[string]any{}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = app.OnUsageError
		if cmd.ArgsUsage == "" && cmd.Action != nil {
			cmd.Action = noOperands(cmd.Action)
		}
	}
	return app
}

// noOperands refuses positional arguments for a command that documents
// none (no ArgsUsage): without it "sweep dry-run" or "sweep -- --dry-run"
// would run a real sweep, and "list expired" would list every job.
func noOperands(action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.Args().Present() {
			arg := c.Args().First()
			hint := ""
			if flag := "--" + strings.TrimLeft(arg, "-"); flag != arg && hasFlag(c.Command, flag[2:]) {
				hint = fmt.Sprintf(" (did you mean %s?)", flag)
			}
			return usageErrorf("unexpected argument %q%s; %s takes no arguments (see resque-expire %s --help)",
				arg, hint, c.Command.Name, c.Command.Name)
		}
		return action(c)
	}
}

// hasFlag reports whether cmd has a flag of that name (or alias).
func hasFlag(cmd *cli.Command, name string) bool {
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// registry holds the subcommands; each command file adds its own with
// register, so that adding a command touches one file.
var registry []func() *cli.Command

// register adds a subcommand constructor; use it as `var _ = register(fn)`.
func register(fn func() *cli.Command) bool {
	registry = append(registry, fn)
	return true
}

func commandList() []*cli.Command {
	out := make([]*cli.Command, 0, len(registry))
	for _, fn := range registry {
		out = append(out, fn())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

var _ = register(versionCommand)

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			_, err := fmt.Fprintf(c.App.Writer, "resque-expire %s\n", Version)
			return err
		},
	}
}

// secretsFromArgs finds credentials given on the command line or in the
// environment so that no error line can repeat them.
func secretsFromArgs(args []string) []string {
	var out []string
	for i, a := range args {
		switch {
		case strings.HasPrefix(a, "--redis="):
			out = append(out, redisconn.Secrets(strings.TrimPrefix(a, "--redis="))...)
		case a == "--redis" && i+1 < len(args):
			out = append(out, redisconn.Secrets(args[i+1])...)
		}
	}
	if u := os.Getenv("REDIS_URL"); u != "" {
		out = append(out, redisconn.Secrets(u)...)
	}
	return out
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i] + " …"
	}
	return s
}
