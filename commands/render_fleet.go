package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	"github.com/resque-expire/resque-expire/internal/fleet"
	"github.com/resque-expire/resque-expire/report"
)

// render writes the targets' results: one JSON document with every target
// and the totals, JSON lines marked with their target, or each target's
// tables under its name followed by a table of the targets.
func (f *fleetRun) render(w io.Writer, outs []fleet.Outcome) error {
	switch f.format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(fleet.Combine(outs))
	case "jsonl":
		for _, o := range outs {
			if err := fleet.MarkLines(w, o); err != nil {
				return err
			}
		}
		return nil
	}
	for _, o := range outs {
		fmt.Fprintf(w, "== target %s (exit %d) ==\n", o.Target, o.Code)
		if _, err := w.Write(o.Stdout); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	return report.Render(w, report.Format(f.format), fleetSummary(outs))
}

type fleetSummary []fleet.Outcome

func (s fleetSummary) Tables() []report.Table {
	t := report.Table{Title: "Targets", Header: []string{"target", "exit", "error"}}
	failed := 0
	for _, o := range s {
		t.Rows = append(t.Rows, []string{o.Target, strconv.Itoa(o.Code), o.ErrLine})
		if o.Code != 0 {
			failed++
		}
	}
	t.Footer = []string{"total", fmt.Sprintf("%d of %d not ok", failed, len(s)), ""}
	return []report.Table{t}
}
