package commands

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProgressFirstTickShowsNoRate: the first pages arrive within
// microseconds of the bar's start; a rate over that span read
// "21354289 jobs/s". No rate is shown until the bar has run a while.
func TestProgressFirstTickShowsNoRate(t *testing.T) {
	var buf bytes.Buffer
	b := &lazyBar{label: "sweep", w: &buf}
	b.SetTotal(100000)
	b.Add(1000)
	b.Add(1000)
	if strings.Contains(buf.String(), "jobs/s") {
		t.Errorf("the bar shows a rate at its first tick: %q", buf.String())
	}
	b.Finish()
}

// TestProgressRateIsPlausible: once shown, the rate is about the real one.
func TestProgressRateIsPlausible(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the rate to show")
	}
	var buf bytes.Buffer
	b := &lazyBar{label: "sweep", w: &buf}
	b.SetTotal(100000)
	b.Add(1000)
	time.Sleep(2100 * time.Millisecond) // progressRateAfter and a bit
	b.Add(1000)
	m := regexp.MustCompile(`(\d+) jobs/s`).FindAllStringSubmatch(buf.String(), -1)
	if len(m) == 0 {
		t.Fatalf("no rate shown after 2s: %q", buf.String())
	}
	// 2000 jobs in a little over 2s.
	if rate, _ := strconv.Atoi(m[len(m)-1][1]); rate < 100 || rate > 5000 {
		t.Errorf("rate %d jobs/s, want about 1000: %q", rate, buf.String())
	}
	b.Finish()
}
