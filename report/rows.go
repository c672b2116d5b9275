package report

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// Record is one item written to a RowWriter.
type Record interface {
	// Row returns the cells for table and CSV formats, matching the header.
	Row() []string
	// Object returns the value written in JSON and JSON lines formats.
	Object() any
}

// RowWriter writes records one at a time, for commands that emit one row per
// item without holding them all.
//
// Per format:
//   - jsonl: each record's Object is written as one line immediately.
//   - csv: the header first, then each Row; output is buffered and flushed
//     every 256 rows or 250ms (checked when a row is written),
//     and at Close.
//   - json: a JSON array is streamed ("[", elements, "]"); an empty stream
//     gives "[]". Buffered like csv; the array is only complete after Close.
//   - table: rows are buffered in memory and rendered at Close. Big listings
//     should use jsonl or csv.
//
// A RowWriter is safe for concurrent use. After the first error (of the
// record's encoding or of the underlying writer) every call returns that
// error. Close must be called once writing is done; later calls of Close
// return the first Close's result and Write fails.
type RowWriter interface {
	Write(record Record) error
	// Close flushes; in table format it renders the buffered table.
	Close() error
}

// NewRowWriter returns a RowWriter writing to w in format f; header names
// the columns of table and CSV output and is ignored by json and jsonl. For
// an invalid format, the writer's Write and Close return an error and write
// nothing.
func NewRowWriter(w io.Writer, f Format, header []string) RowWriter {
	rw := &rowWriter{format: f, header: append([]string(nil), header...), out: w}
	switch f {
	case FormatJSONL:
	case FormatJSON, FormatCSV:
		rw.buf = bufio.NewWriter(w)
		rw.lastFlush = time.Now()
		if f == FormatCSV {
			rw.csv = csv.NewWriter(rw.buf)
		}
	case FormatTable:
	default:
		rw.err = unknownFormat(f)
	}
	return rw
}

const (
	// flushRows is the number of rows after which buffered output is flushed.
	flushRows = 256
	// flushInterval is the longest time buffered output is held while rows
	// keep coming.
	flushInterval = 250 * time.Millisecond
)

var errClosed = errors.New("report: write to a closed RowWriter")

type rowWriter struct {
	mu     sync.Mutex
	format Format
	header []string
	out    io.Writer // destination

	buf       *bufio.Writer // json, csv
	csv       *csv.Writer   // csv, on buf
	pending   int           // rows written to buf since the last flush
	lastFlush time.Time

	n       int          // records written
	rows    [][]string   // table format
	scratch bytes.Buffer // json, jsonl: one encoded element

	err    error // sticky error
	closed bool
	cerr   error // result of Close
}

func (rw *rowWriter) Write(r Record) error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.err != nil {
		return rw.err
	}
	if rw.closed {
		return errClosed
	}
	if r == nil {
		return errors.New("report: nil record")
	}
	if err := rw.write(r); err != nil {
		rw.err = err
		return err
	}
	rw.n++
	return nil
}

func (rw *rowWriter) write(r Record) error {
	switch rw.format {
	case FormatJSONL:
		rw.scratch.Reset()
		if err := newEncoder(&rw.scratch, false).Encode(r.Object()); err != nil {
			return fmt.Errorf("report: jsonl: %w", err)
		}
		_, err := rw.out.Write(rw.scratch.Bytes())
		return err
	case FormatJSON:
		rw.scratch.Reset()
		if rw.n == 0 {
			rw.scratch.WriteString("[\n  ")
		} else {
			rw.scratch.WriteString(",\n  ")
		}
		enc := newEncoder(&rw.scratch, false)
		enc.SetIndent("  ", "  ")
		if err := enc.Encode(r.Object()); err != nil {
			return fmt.Errorf("report: json: %w", err)
		}
		b := bytes.TrimSuffix(rw.scratch.Bytes(), []byte("\n"))
		if _, err := rw.buf.Write(b); err != nil {
			return err
		}
		return rw.maybeFlush()
	case FormatCSV:
		if rw.n == 0 && len(rw.header) > 0 {
			if err := rw.csv.Write(rw.header); err != nil {
				return err
			}
		}
		if err := rw.csv.Write(r.Row()); err != nil {
			return err
		}
		return rw.maybeFlush()
	case FormatTable:
		rw.rows = append(rw.rows, append([]string(nil), r.Row()...))
		return nil
	}
	return unknownFormat(rw.format) // not reached: rw.err is set
}

// maybeFlush flushes buffered json/csv output every flushRows rows or
// flushInterval.
func (rw *rowWriter) maybeFlush() error {
	rw.pending++
	if rw.pending < flushRows && time.Since(rw.lastFlush) < flushInterval {
		return nil
	}
	return rw.flush()
}

func (rw *rowWriter) flush() error {
	rw.pending = 0
	rw.lastFlush = time.Now()
	if rw.csv != nil {
		rw.csv.Flush()
		if err := rw.csv.Error(); err != nil {
			return err
		}
	}
	return rw.buf.Flush()
}

func (rw *rowWriter) Close() error {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.closed {
		return rw.cerr
	}
	rw.closed = true
	if rw.err != nil {
		rw.cerr = rw.err
		return rw.cerr
	}
	rw.cerr = rw.close()
	if rw.cerr != nil {
		rw.err = rw.cerr
	}
	return rw.cerr
}

func (rw *rowWriter) close() error {
	switch rw.format {
	case FormatJSON:
		end := "\n]\n"
		if rw.n == 0 {
			end = "[]\n"
		}
		if _, err := rw.buf.WriteString(end); err != nil {
			return err
		}
		return rw.flush()
	case FormatCSV:
		if rw.n == 0 && len(rw.header) > 0 {
			if err := rw.csv.Write(rw.header); err != nil {
				return err
			}
		}
		return rw.flush()
	case FormatTable:
		var buf bytes.Buffer
		if err := writeTable(&buf, Table{Header: rw.header, Rows: rw.rows}); err != nil {
			return fmt.Errorf("report: table: %w", err)
		}
		rw.rows = nil
		_, err := rw.out.Write(buf.Bytes())
		return err
	}
	return nil
}
