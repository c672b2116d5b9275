package commands

import (
	"time"

	"github.com/urfave/cli/v2"

	"github.com/resque-expire/resque-expire/internal/resque"
)

// durationValue is a duration flag's value in the tool's one grammar
// (resque.ParseDuration: Go units plus d and w, decimals, no overflow).
// Its String is a Go duration, so c.Duration reads it as it reads a
// cli.DurationFlag.
type durationValue struct{ d time.Duration }

func (v *durationValue) Set(s string) error {
	d, err := resque.ParseDuration(s)
	if err != nil {
		return err
	}
	v.d = d
	return nil
}

func (v *durationValue) String() string { return v.d.String() }

// durationFlag is f with the tool's duration grammar instead of Go's: every
// duration flag is built with it, so that --max-age 3d means three days.
func durationFlag(f cli.DurationFlag) *cli.GenericFlag {
	g := &cli.GenericFlag{Name: f.Name, Aliases: f.Aliases, Usage: f.Usage, EnvVars: f.EnvVars, Category: f.Category,
		Required: f.Required, Hidden: f.Hidden, DefaultText: f.DefaultText, Value: &durationValue{d: f.Value}}
	if g.DefaultText == "" && f.Value != 0 {
		g.DefaultText = resqueFormat(f.Value)
	}
	return g
}

// resqueFormat shows a default without Go's zero units ("1h0m0s" → "1h").
func resqueFormat(d time.Duration) string {
	s := d.String()
	for _, z := range []string{"0s", "0m"} {
		if len(s) > len(z) && s[len(s)-len(z):] == z && (s[len(s)-len(z)-1] < '0' || s[len(s)-len(z)-1] > '9') {
			s = s[:len(s)-len(z)]
		}
	}
	return s
}
