package commands

import "testing"

// TestServeTakesEverySweepFlag: every flag of sweep is either taken by
// serve (and read by sweepOptions.bind) or deliberately left out; a new
// sweep flag fails this test until serve is told what to do with it.
func TestServeTakesEverySweepFlag(t *testing.T) {
	served := map[string]bool{}
	for _, f := range serveCommand().Flags {
		served[f.Names()[0]] = true
	}
	for _, f := range sweepCommand().Flags {
		name := f.Names()[0]
		switch {
		case serveSkipsSweepFlags[name]:
			if served[name] {
				t.Errorf("serve takes --%s, which it should leave out", name)
			}
		case !serveSweepFlags[name]:
			t.Errorf("sweep's --%s is neither taken by serve (serveSweepFlags, read by sweepOptions.bind) nor left out (serveSkipsSweepFlags)", name)
		case !served[name]:
			t.Errorf("serve lacks sweep's --%s", name)
		}
	}
}

func TestParseJitter(t *testing.T) {
	for in, want := range map[string]float64{"10%": 0.1, "0.25": 0.25, "0%": 0, " 5% ": 0.05} {
		if got, err := parseJitter(in); err != nil || got != want {
			t.Errorf("parseJitter(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"100%", "-1%", "x", "1.5", ""} {
		if _, err := parseJitter(in); err == nil {
			t.Errorf("parseJitter(%q) accepted", in)
		}
	}
}
