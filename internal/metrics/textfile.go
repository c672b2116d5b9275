package metrics

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// WriteTextfile writes the Set to path in the text format the
// node_exporter textfile collector reads (no timestamps): to a temp file
// in the same directory, whose name its *.prom glob does not match, then
// renamed over path, so the collector never reads half a file.
func (s *Set) WriteTextfile(path string) error {
	mfs, err := s.reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".resque_expire-*.tmp")
	if err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	enc := expfmt.NewEncoder(f, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return fail(err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	return nil
}

// LastSuccess reads the last success of command from a metrics file an
// earlier run wrote, so that a failed run's file keeps it (0 when there is
// none).
func LastSuccess(path, command string) float64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		return 0
	}
	mf := mfs["resque_expire_last_success_timestamp_seconds"]
	if mf == nil {
		return 0
	}
	for _, m := range mf.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "command" && l.GetValue() == command && m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
