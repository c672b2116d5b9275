package enqueue

import (
	"testing"

	"github.com/resque-expire/resque-expire/inspect"
	"github.com/resque-expire/resque-expire/internal/redistest"
)

// fixture is the shared Redis fixture with the enqueue tests' scanner.
type fixture struct{ *redistest.Fixture }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return &fixture{redistest.NewFixture(t)}
}

func (f *fixture) scanner(mod func(*inspect.Config)) *inspect.Scanner {
	f.T.Helper()
	cfg := inspect.Config{Layout: f.Layout, Now: f.Clock}
	if mod != nil {
		mod(&cfg)
	}
	s, err := inspect.NewScanner(f.RDB, cfg)
	if err != nil {
		f.T.Fatal(err)
	}
	return s
}
