package commands

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// hoistGlobalFlags moves global flags written after the subcommand
// ("resque-expire sweep --format json") to before it, where urfave/cli v2
// looks for them. Everything after a "--" is left alone.
func hoistGlobalFlags(app *cli.App, args []string) []string {
	takesValue := map[string]bool{}
	for _, f := range app.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	isGlobal := func(arg string) (name string, ok bool) {
		if !strings.HasPrefix(arg, "-") || arg == "-" || arg == "--" {
			return "", false
		}
		name = strings.TrimLeft(arg, "-")
		if i := strings.IndexByte(name, '='); i >= 0 {
			name = name[:i]
		}
		_, ok = takesValue[name]
		return name, ok
	}
	sub := hoistFrom(args, takesValue, isGlobal)
	if sub < 0 {
		return args
	}
	var hoisted, rest []string
	for i := sub + 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, ok := isGlobal(a)
		needsValue := ok && takesValue[name] && !strings.Contains(a, "=")
		if !ok || localFlag(app, args[sub], name) || (needsValue && i+1 >= len(args)) {
			// Not ours, or a value flag missing its value: leave it where
			// it is, for the command to report.
			rest = append(rest, a)
			continue
		}
		hoisted = append(hoisted, a)
		if needsValue {
			i++
			hoisted = append(hoisted, args[i])
		}
	}
	out := make([]string, 0, len(args))
	out = append(out, args[:sub]...)
	out = append(out, hoisted...)
	out = append(out, args[sub])
	return append(out, rest...)
}

// hoistFrom is the index of the subcommand in args: the first argument
// that is not a global flag or a global flag's value; -1 when there is
// none, or when a "--" or an unknown flag comes first (cli reports that).
func hoistFrom(args []string, takesValue map[string]bool, isGlobal func(string) (string, bool)) int {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return -1
		}
		if name, ok := isGlobal(a); ok {
			if takesValue[name] && !strings.Contains(a, "=") {
				i++
			}
			continue
		}
		if strings.HasPrefix(a, "-") {
			return -1 // an unknown flag before any command: let cli report it
		}
		return i
	}
	return -1
}

// localFlag reports whether subcommand defines a flag of its own by that
// name, which then wins over the global one.
func localFlag(app *cli.App, subcommand, name string) bool {
	cmd := app.Command(subcommand)
	if cmd == nil {
		return false
	}
	for _, f := range cmd.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}
