package commands

import (
	"io"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestHoistGlobalFlags: global flags written after the subcommand move to
// before it, with their values; everything else stays where it was.
func TestHoistGlobalFlags(t *testing.T) {
	app := NewApp(strings.NewReader(""), io.Discard, io.Discard)
	cases := []struct {
		name, in, want string
	}{
		{"nothing", "re", "re"},
		{"command only", "re sweep", "re sweep"},
		{"value flag", "re sweep --format json", "re --format json sweep"},
		{"equals form", "re sweep --format=json", "re --format=json sweep"},
		{"short alias", "re sweep -o json", "re -o json sweep"},
		{"single-dash long name", "re sweep -format json", "re -format json sweep"},
		{"bool flag", "re inspect --quiet", "re --quiet inspect"},
		{"bool short alias", "re inspect -q --queue x", "re -q inspect --queue x"},
		{"bool with value", "re inspect --quiet=false", "re --quiet=false inspect"},
		{"bool does not eat the next arg", "re restore --no-progress removed.jsonl", "re --no-progress restore removed.jsonl"},
		{"already before", "re --redis redis://h:1/0 --format json sweep --dry-run", "re --redis redis://h:1/0 --format json sweep --dry-run"},
		{"mixed", "re --redis redis://h:1/0 sweep --dry-run --format json --limit 5 --quiet",
			"re --redis redis://h:1/0 --format json --quiet sweep --dry-run --limit 5"},
		{"local flags stay", "re sweep --limit 5 --grace 1m --archive a.jsonl -n -y", "re sweep --limit 5 --grace 1m --archive a.jsonl -n -y"},
		{"local flag values stay", "re list --state expired --queue mailers --batch 10", "re --batch 10 list --state expired --queue mailers"},
		{"positional kept in place", "re restore --dry-run a.jsonl --format json", "re --format json restore --dry-run a.jsonl"},
		{"slice flag twice", "re inspect --id-path jid --id-path args.0.job_id", "re --id-path jid --id-path args.0.job_id inspect"},
		{"order of repeats kept", "re --format table sweep --format json", "re --format table --format json sweep"},
		{"value that looks like a flag", "re inspect --namespace -weird-", "re --namespace -weird- inspect"},
		{"URL value", "re inspect --redis redis://:p%40ss@h:6379/2", "re --redis redis://:p%40ss@h:6379/2 inspect"},
		{"double dash stops", "re sweep --dry-run -- --format json", "re sweep --dry-run -- --format json"},
		{"double dash after a hoist", "re sweep --format json -- --quiet", "re --format json sweep -- --quiet"},
		{"double dash before the command", "re -- sweep --format json", "re -- sweep --format json"},
		{"unknown flag before the command", "re --bogus sweep --format json", "re --bogus sweep --format json"},
		{"unknown flag after the command", "re sweep --bogus --format json", "re --format json sweep --bogus"},
		{"lone dash is positional", "re restore - --quiet", "re --quiet restore -"},
		{"help stays", "re sweep --help", "re sweep --help"},
		// A value flag with no value left: hoisting it would swallow the
		// subcommand as its value ("--format sweep") and run nothing.
		{"value missing at the end", "re sweep --format", "re sweep --format"},
		{"value missing after others", "re inspect --queue q --redis", "re inspect --queue q --redis"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := strings.Join(hoistGlobalFlags(app, strings.Fields(c.in)), " ")
			if got != c.want {
				t.Errorf("hoist(%q)\n got %q\nwant %q", c.in, got, c.want)
			}
		})
	}
}

// TestHoistLocalFlagWins: a subcommand's own flag of the same name as a
// global one is the subcommand's, and is not moved.
func TestHoistLocalFlagWins(t *testing.T) {
	app := &cli.App{
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"o"}},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}},
		},
		Commands: []*cli.Command{
			{Name: "export", Flags: []cli.Flag{&cli.StringFlag{Name: "format"}, &cli.BoolFlag{Name: "q"}}},
			{Name: "other"},
		},
	}
	cases := []struct{ in, want string }{
		{"re export --format csv -o json", "re -o json export --format csv"},
		{"re export -q --quiet", "re --quiet export -q"},
		{"re other --format csv -q", "re --format csv -q other"},
		{"re missing --format csv", "re --format csv missing"},
	}
	for _, c := range cases {
		if got := strings.Join(hoistGlobalFlags(app, strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("hoist(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestHoistKeepsArgsIntact: hoisting never drops, adds or rewrites an
// argument, and leaves its input alone.
func TestHoistKeepsArgsIntact(t *testing.T) {
	app := NewApp(strings.NewReader(""), io.Discard, io.Discard)
	in := strings.Fields("re list --state live --format jsonl -q --limit 3 --timeout 5s --no-delayed")
	orig := append([]string(nil), in...)
	out := hoistGlobalFlags(app, in)
	if strings.Join(in, " ") != strings.Join(orig, " ") {
		t.Errorf("input modified: %q", in)
	}
	count := map[string]int{}
	for _, a := range orig {
		count[a]++
	}
	for _, a := range out {
		count[a]--
	}
	for a, n := range count {
		if n != 0 {
			t.Errorf("argument %q: %+d after hoisting", a, -n)
		}
	}
	if want := "re --format jsonl -q --timeout 5s list --state live --limit 3 --no-delayed"; strings.Join(out, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(out, " "), want)
	}
}
