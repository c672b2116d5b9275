// Package report renders command results as table, JSON, JSON lines or CSV;
// it owns output formatting and nothing else.
//
// A command builds a Result (a struct with json tags that can also describe
// itself as Tables) and hands it to Render. Commands that emit one row per
// item without holding them all use a RowWriter instead.
//
// The package writes only to the io.Writer it is given, never to stderr.
package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// Table is one titled grid of cells.
type Table struct {
	// Title is printed on its own line above the table in table format
	// ("" = none). CSV output does not show it.
	Title  string
	Header []string
	Rows   [][]string
	// Footer is an optional totals row: the table format shows it as the
	// table's footer, CSV as a last row.
	Footer []string
	// Notes are free text lines printed under the table in table format only
	// (warnings, histograms, ...).
	Notes []string
}

// Result is what a command hands to Render. In JSON and JSON lines formats
// the result value itself is marshalled (so it should carry json tags); in
// table and CSV formats its Tables are rendered.
type Result interface {
	Tables() []Table
}

// Liner may be implemented by a Result to control JSON lines output: each
// element of Lines is written as one JSON line. A Result without it is
// written as a single line.
type Liner interface {
	Lines() []any
}

// noneLine is shown in table format in place of the rows of an empty table.
const noneLine = "(none)"

// Render writes r to w in format f. Output is built in memory first, so on
// error nothing is written (except for an error of w itself).
func Render(w io.Writer, f Format, r Result) error {
	if r == nil || isNilPointer(r) {
		return errors.New("report: nil result")
	}
	var buf bytes.Buffer
	var err error
	switch f {
	case FormatTable:
		err = writeTables(&buf, r.Tables())
	case FormatJSON:
		err = newEncoder(&buf, true).Encode(r)
	case FormatJSONL:
		err = writeJSONL(&buf, r)
	case FormatCSV:
		err = writeCSV(&buf, r.Tables())
	default:
		return unknownFormat(f)
	}
	if err != nil {
		return fmt.Errorf("report: %s: %w", f, err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

func unknownFormat(f Format) error {
	_, err := ParseFormat(string(f))
	if err == nil { // valid only after normalisation, e.g. "JSON"
		err = fmt.Errorf("format %q is not normalised; use ParseFormat", string(f))
	}
	return fmt.Errorf("report: %w", err)
}

func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// newEncoder returns a JSON encoder that does not escape HTML characters;
// indented output is indented like json.MarshalIndent(v, "", "  ").
func newEncoder(w io.Writer, indent bool) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc
}

func writeJSONL(w io.Writer, r Result) error {
	enc := newEncoder(w, false)
	l, ok := r.(Liner)
	if !ok {
		return enc.Encode(r)
	}
	for _, v := range l.Lines() {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// writeTables renders tables in table format, separated by blank lines.
func writeTables(w io.Writer, tables []Table) error {
	for i, t := range tables {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if err := writeTable(w, t); err != nil {
			return err
		}
	}
	return nil
}

// writeTable renders one table: title, grid, "(none)" when it has no rows,
// notes.
func writeTable(w io.Writer, t Table) error {
	if t.Title != "" {
		if _, err := fmt.Fprintln(w, t.Title); err != nil {
			return err
		}
	}
	width := len(t.Header)
	for _, row := range t.Rows {
		width = max(width, len(row))
	}
	width = max(width, len(t.Footer))
	if width > 0 {
		tbl := newTableWriter(w)
		if len(t.Header) > 0 {
			tbl.Header(toAny(pad(t.Header, width))...)
		}
		rows := make([][]string, len(t.Rows))
		for i, row := range t.Rows {
			rows[i] = pad(row, width)
		}
		if err := tbl.Bulk(rows); err != nil {
			return err
		}
		if len(t.Footer) > 0 {
			tbl.Footer(toAny(pad(t.Footer, width))...)
		}
		if err := tbl.Render(); err != nil {
			return err
		}
	}
	if len(t.Rows) == 0 {
		if _, err := fmt.Fprintln(w, noneLine); err != nil {
			return err
		}
	}
	for _, n := range t.Notes {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}

// newTableWriter returns a compact plain-ASCII tablewriter: headers as given
// (no upper-casing), everything left-aligned, cells not trimmed or wrapped.
func newTableWriter(w io.Writer) *tablewriter.Table {
	return tablewriter.NewTable(w,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{Symbols: tw.NewSymbols(tw.StyleASCII)})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAlignment(tw.AlignLeft),
		tablewriter.WithRowAlignment(tw.AlignLeft),
		tablewriter.WithFooterAlignmentConfig(tw.CellAlignment{Global: tw.AlignLeft}),
		tablewriter.WithTrimSpace(tw.Off),
		tablewriter.WithDebug(false),
	)
}

// pad returns cells extended with empty strings to n cells, so that ragged
// rows render as a regular grid.
func pad(cells []string, n int) []string {
	if len(cells) >= n {
		return cells
	}
	out := make([]string, n)
	copy(out, cells)
	return out
}

func toAny(cells []string) []any {
	out := make([]any, len(cells))
	for i, c := range cells {
		out[i] = c
	}
	return out
}

// writeCSV writes each table as header row, rows and footer row; tables are
// separated by one empty line. Titles and notes are not written.
func writeCSV(w io.Writer, tables []Table) error {
	cw := csv.NewWriter(w)
	first := true
	for _, t := range tables {
		if len(t.Header) == 0 && len(t.Rows) == 0 && len(t.Footer) == 0 {
			continue
		}
		if !first {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		first = false
		if len(t.Header) > 0 {
			if err := cw.Write(t.Header); err != nil {
				return err
			}
		}
		if err := cw.WriteAll(t.Rows); err != nil { // WriteAll flushes
			return err
		}
		if len(t.Footer) > 0 {
			if err := cw.Write(t.Footer); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
