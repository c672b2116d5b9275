package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// ---- fixtures ----

type queueStat struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// linerResult implements Result and Liner.
type linerResult struct {
	Queues []queueStat `json:"queues"`
	Total  int64       `json:"total"`
}

func (r linerResult) Tables() []Table {
	t := Table{Title: "Queues", Header: []string{"QUEUE", "SIZE"}, Footer: []string{"total", Int(r.Total)}}
	for _, q := range r.Queues {
		t.Rows = append(t.Rows, []string{q.Name, Int(q.Size)})
	}
	return []Table{t}
}

func (r linerResult) Lines() []any {
	out := make([]any, len(r.Queues))
	for i, q := range r.Queues {
		out[i] = q
	}
	return out
}

// plainResult implements only Result, with several tables.
type plainResult struct {
	Class string   `json:"class"`
	Ages  []string `json:"ages"`
}

func (r plainResult) Tables() []Table {
	return []Table{
		{Title: "Class " + r.Class, Header: []string{"KEY", "VALUE"}, Rows: [][]string{{"class", r.Class}}},
		{Header: []string{"AGE"}, Rows: [][]string{{r.Ages[0]}, {r.Ages[1]}}, Notes: []string{"note: a<b & c>d", "##### 5"}},
		{Title: "Empty", Header: []string{"A", "B"}},
	}
}

var (
	linerFixture = linerResult{
		Queues: []queueStat{{"default", 3}, {"mail<er>&co", 12}, {"low", 0}},
		Total:  15,
	}
	plainFixture = plainResult{Class: "Send<Mail>&Co", Ages: []string{"3m12s", "5h2m"}}
)

const htmlName = "mail<er>&co"

// ---- helpers ----

func assertNoHTMLEscapes(t *testing.T, out string) {
	t.Helper()
	for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
		if strings.Contains(out, esc) {
			t.Errorf("output contains HTML escape %s:\n%s", esc, out)
		}
	}
}

func parseCSV(t *testing.T, out string) [][]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("CSV does not parse: %v\n%s", err, out)
	}
	return recs
}

func nonEmptyLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// ---- ParseFormat ----

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		ok   bool
	}{
		{"table", FormatTable, true},
		{"json", FormatJSON, true},
		{"jsonl", FormatJSONL, true},
		{"csv", FormatCSV, true},
		{" JSON ", FormatJSON, true},
		{"Csv", FormatCSV, true},
		{"", "", false},
		{"xml", "", false},
		{"json-lines", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormat(tt.in)
			if tt.ok {
				if err != nil || got != tt.want {
					t.Fatalf("ParseFormat(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseFormat(%q) = %q, want error", tt.in, got)
			}
			for _, f := range formats {
				if !strings.Contains(err.Error(), string(f)) {
					t.Errorf("error %q does not list %q", err, f)
				}
			}
		})
	}
	if len(formats) != 4 {
		t.Errorf("formats = %v", formats)
	}
}

// ---- Render ----

func TestRender(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		result Result
		check  func(t *testing.T, out string)
	}{
		{
			name: "table liner", format: FormatTable, result: linerFixture,
			check: func(t *testing.T, out string) {
				want := strings.Join([]string{
					"Queues",
					"+-------------+------+",
					"| QUEUE       | SIZE |",
					"+-------------+------+",
					"| default     | 3    |",
					"| mail<er>&co | 12   |",
					"| low         | 0    |",
					"+-------------+------+",
					"| total       | 15   |",
					"+-------------+------+",
					"",
				}, "\n")
				if out != want {
					t.Errorf("got:\n%s\nwant:\n%s", out, want)
				}
			},
		},
		{
			name: "table several", format: FormatTable, result: plainFixture,
			check: func(t *testing.T, out string) {
				want := strings.Join([]string{
					"Class Send<Mail>&Co",
					"+-------+---------------+",
					"| KEY   | VALUE         |",
					"+-------+---------------+",
					"| class | Send<Mail>&Co |",
					"+-------+---------------+",
					"",
					"+-------+",
					"| AGE   |",
					"+-------+",
					"| 3m12s |",
					"| 5h2m  |",
					"+-------+",
					"note: a<b & c>d",
					"##### 5",
					"",
					"Empty",
					"+---+---+",
					"| A | B |",
					"+---+---+",
					"(none)",
					"",
				}, "\n")
				if out != want {
					t.Errorf("got:\n%s\nwant:\n%s", out, want)
				}
			},
		},
		{
			name: "json liner", format: FormatJSON, result: linerFixture,
			check: func(t *testing.T, out string) {
				var got linerResult
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("invalid JSON: %v\n%s", err, out)
				}
				if !reflect.DeepEqual(got, linerFixture) {
					t.Errorf("round trip: got %+v", got)
				}
				// Same bytes as MarshalIndent, apart from HTML escaping.
				want, _ := json.MarshalIndent(linerFixture, "", "  ")
				want = bytes.ReplaceAll(want, []byte(`\u003c`), []byte("<"))
				want = bytes.ReplaceAll(want, []byte(`\u003e`), []byte(">"))
				want = bytes.ReplaceAll(want, []byte(`\u0026`), []byte("&"))
				if out != string(want)+"\n" {
					t.Errorf("got:\n%s\nwant:\n%s", out, want)
				}
				if !strings.Contains(out, `"name": "`+htmlName+`"`) {
					t.Errorf("HTML characters escaped:\n%s", out)
				}
			},
		},
		{
			name: "json plain", format: FormatJSON, result: plainFixture,
			check: func(t *testing.T, out string) {
				var got plainResult
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("invalid JSON: %v\n%s", err, out)
				}
				if !reflect.DeepEqual(got, plainFixture) {
					t.Errorf("round trip: got %+v", got)
				}
				if !strings.HasSuffix(out, "}\n") || strings.HasSuffix(out, "\n\n") {
					t.Errorf("want one trailing newline:\n%q", out)
				}
			},
		},
		{
			name: "jsonl liner", format: FormatJSONL, result: linerFixture,
			check: func(t *testing.T, out string) {
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				if len(lines) != len(linerFixture.Queues) || !strings.HasSuffix(out, "\n") {
					t.Fatalf("want %d lines, got:\n%s", len(linerFixture.Queues), out)
				}
				for i, l := range lines {
					var q queueStat
					if err := json.Unmarshal([]byte(l), &q); err != nil {
						t.Fatalf("line %d invalid: %v: %s", i, err, l)
					}
					if q != linerFixture.Queues[i] {
						t.Errorf("line %d = %+v", i, q)
					}
				}
				if lines[1] != `{"name":"mail<er>&co","size":12}` {
					t.Errorf("line 1 = %s", lines[1])
				}
			},
		},
		{
			name: "jsonl plain", format: FormatJSONL, result: plainFixture,
			check: func(t *testing.T, out string) {
				if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
					t.Fatalf("want exactly one line:\n%s", out)
				}
				var got plainResult
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("invalid JSON: %v", err)
				}
				if !reflect.DeepEqual(got, plainFixture) {
					t.Errorf("round trip: got %+v", got)
				}
			},
		},
		{
			name: "jsonl empty liner", format: FormatJSONL, result: linerResult{},
			check: func(t *testing.T, out string) {
				if out != "" {
					t.Errorf("want no output, got %q", out)
				}
			},
		},
		{
			name: "csv liner", format: FormatCSV, result: linerFixture,
			check: func(t *testing.T, out string) {
				want := [][]string{{"QUEUE", "SIZE"}, {"default", "3"}, {htmlName, "12"}, {"low", "0"}, {"total", "15"}}
				if got := parseCSV(t, out); !reflect.DeepEqual(got, want) {
					t.Errorf("got %q, want %q", got, want)
				}
				if strings.Contains(out, "Queues") {
					t.Errorf("title in CSV:\n%s", out)
				}
			},
		},
		{
			name: "csv several", format: FormatCSV, result: plainFixture,
			check: func(t *testing.T, out string) {
				want := "KEY,VALUE\nclass,Send<Mail>&Co\n\nAGE\n3m12s\n5h2m\n\nA,B\n"
				if out != want {
					t.Errorf("got %q, want %q", out, want)
				}
				wantRecs := [][]string{{"KEY", "VALUE"}, {"class", "Send<Mail>&Co"}, {"AGE"}, {"3m12s"}, {"5h2m"}, {"A", "B"}}
				if got := parseCSV(t, out); !reflect.DeepEqual(got, wantRecs) {
					t.Errorf("got %q, want %q", got, wantRecs)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := Render(&buf, tt.format, tt.result); err != nil {
				t.Fatalf("Render: %v", err)
			}
			out := buf.String()
			assertNoHTMLEscapes(t, out)
			tt.check(t, out)
		})
	}
}

// tablesResult renders given tables; its JSON form is irrelevant here.
type tablesResult []Table

func (r tablesResult) Tables() []Table { return r }

func TestRenderEdgeCases(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		tables tablesResult
		want   string
	}{
		{"table no tables", FormatTable, nil, ""},
		{"csv no tables", FormatCSV, nil, ""},
		{"table nothing at all", FormatTable, tablesResult{{Title: "T", Notes: []string{"n"}}}, "T\n(none)\nn\n"},
		{"csv skips empty tables", FormatCSV, tablesResult{{Title: "T"}, {Header: []string{"a"}}, {}, {Rows: [][]string{{"x,y", "z\"q"}}}}, "a\n\n\"x,y\",\"z\"\"q\"\n"},
		{"table ragged rows", FormatTable, tablesResult{{Header: []string{"A"}, Rows: [][]string{{"1", "2"}, {}}}},
			"+---+---+\n| A |   |\n+---+---+\n| 1 | 2 |\n|   |   |\n+---+---+\n"},
		{"table rows without header", FormatTable, tablesResult{{Rows: [][]string{{"x"}}}}, "+---+\n| x |\n+---+\n"},
		{"table keeps leading spaces", FormatTable, tablesResult{{Header: []string{"H"}, Rows: [][]string{{"  x"}}}},
			"+-----+\n| H   |\n+-----+\n|   x |\n+-----+\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, tt.format, tt.tables); err != nil {
				t.Fatalf("Render: %v", err)
			}
			if buf.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", buf.String(), tt.want)
			}
		})
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

type badJSON struct {
	C chan int `json:"c"`
}

func (badJSON) Tables() []Table { return nil }

func TestRenderErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, "xml", linerFixture); err == nil || !strings.Contains(err.Error(), "jsonl") {
		t.Errorf("unknown format: err = %v", err)
	}
	if err := Render(&buf, "", linerFixture); err == nil {
		t.Error("empty format: want error")
	}
	if err := Render(&buf, FormatJSON, nil); err == nil {
		t.Error("nil result: want error")
	}
	if err := Render(&buf, FormatTable, (*linerResult)(nil)); err == nil {
		t.Error("nil pointer result: want error")
	}
	for _, f := range []Format{FormatJSON, FormatJSONL} {
		if err := Render(&buf, f, badJSON{C: make(chan int)}); err == nil {
			t.Errorf("%s: unmarshalable result: want error", f)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("failed Render wrote %q", buf.String())
	}
	boom := errors.New("boom")
	for _, f := range formats {
		if err := Render(failWriter{boom}, f, linerFixture); !errors.Is(err, boom) {
			t.Errorf("%s: writer error: got %v", f, err)
		}
	}
}

// ---- RowWriter ----

type jobRec struct {
	ID    string `json:"id"`
	Queue string `json:"queue"`
	Age   int64  `json:"age_seconds"`
}

func (j jobRec) Row() []string { return []string{j.ID, j.Queue, Int(j.Age)} }
func (j jobRec) Object() any   { return j }

var jobHeader = []string{"ID", "QUEUE", "AGE"}

func makeJobs(n int) []jobRec {
	jobs := make([]jobRec, n)
	for i := range jobs {
		jobs[i] = jobRec{ID: fmt.Sprintf("j%d", i), Queue: "q<" + Int(int64(i%3)) + ">&x", Age: int64(i)}
	}
	return jobs
}

func TestRowWriter(t *testing.T) {
	checks := map[Format]func(t *testing.T, out string, jobs []jobRec){
		FormatJSONL: func(t *testing.T, out string, jobs []jobRec) {
			lines := nonEmptyLines(out)
			if len(lines) != len(jobs) || strings.Count(out, "\n") != len(jobs) {
				t.Fatalf("want %d lines, got %d:\n%s", len(jobs), len(lines), out)
			}
			for i, l := range lines {
				var j jobRec
				if err := json.Unmarshal([]byte(l), &j); err != nil {
					t.Fatalf("line %d invalid: %v", i, err)
				}
				if j != jobs[i] {
					t.Fatalf("line %d = %+v, want %+v", i, j, jobs[i])
				}
			}
		},
		FormatJSON: func(t *testing.T, out string, jobs []jobRec) {
			if len(jobs) == 0 && out != "[]\n" {
				t.Fatalf("empty stream = %q, want %q", out, "[]\n")
			}
			if !strings.HasSuffix(out, "]\n") {
				t.Errorf("want trailing newline: %q", out)
			}
			var got []jobRec
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("invalid JSON: %v\n%s", err, out)
			}
			if len(got) != len(jobs) || (len(jobs) > 0 && !reflect.DeepEqual(got, jobs)) {
				t.Fatalf("got %d elements, want %d", len(got), len(jobs))
			}
			if len(jobs) > 0 {
				// Indented like json.MarshalIndent of the whole array.
				want, _ := json.MarshalIndent(jobs, "", "  ")
				want = bytes.ReplaceAll(want, []byte(`\u003c`), []byte("<"))
				want = bytes.ReplaceAll(want, []byte(`\u003e`), []byte(">"))
				want = bytes.ReplaceAll(want, []byte(`\u0026`), []byte("&"))
				if out != string(want)+"\n" {
					t.Errorf("got:\n%s\nwant:\n%s", out, want)
				}
			}
		},
		FormatCSV: func(t *testing.T, out string, jobs []jobRec) {
			recs := parseCSV(t, out)
			if len(recs) != len(jobs)+1 {
				t.Fatalf("want %d records, got %d", len(jobs)+1, len(recs))
			}
			if !reflect.DeepEqual(recs[0], jobHeader) {
				t.Errorf("header = %q", recs[0])
			}
			for i, j := range jobs {
				if !reflect.DeepEqual(recs[i+1], j.Row()) {
					t.Fatalf("record %d = %q, want %q", i+1, recs[i+1], j.Row())
				}
			}
		},
		FormatTable: func(t *testing.T, out string, jobs []jobRec) {
			lines := nonEmptyLines(out)
			if len(lines) < 3 || !strings.HasPrefix(lines[1], "| ID ") {
				t.Fatalf("no header:\n%s", out)
			}
			if len(jobs) == 0 {
				if lines[len(lines)-1] != "(none)" {
					t.Errorf("empty table should end with (none):\n%s", out)
				}
				return
			}
			// top border, header, separator, rows, bottom border
			if len(lines) != len(jobs)+4 {
				t.Fatalf("want %d lines, got %d:\n%s", len(jobs)+4, len(lines), out)
			}
			for i, j := range jobs {
				if f := strings.Fields(strings.ReplaceAll(lines[i+3], "|", " ")); !reflect.DeepEqual(f, j.Row()) {
					t.Fatalf("row %d = %q, want %q", i, f, j.Row())
				}
			}
		},
	}
	for _, f := range formats {
		for _, n := range []int{0, 1, 3, 1000} {
			t.Run(fmt.Sprintf("%s/%d", f, n), func(t *testing.T) {
				t.Parallel()
				jobs := makeJobs(n)
				var buf bytes.Buffer
				w := NewRowWriter(&buf, f, jobHeader)
				for _, j := range jobs {
					if err := w.Write(j); err != nil {
						t.Fatalf("Write: %v", err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				out := buf.String()
				assertNoHTMLEscapes(t, out)
				checks[f](t, out, jobs)

				// Closed: Close again is a no-op, Write fails.
				if err := w.Close(); err != nil {
					t.Errorf("second Close: %v", err)
				}
				if err := w.Write(jobRec{ID: "late"}); err == nil {
					t.Error("Write after Close: want error")
				}
				if buf.String() != out {
					t.Error("output changed after Close")
				}
			})
		}
	}
}

func TestRowWriterJSONLImmediate(t *testing.T) {
	var buf bytes.Buffer
	w := NewRowWriter(&buf, FormatJSONL, jobHeader)
	if err := w.Write(jobRec{ID: "a", Queue: "q"}); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), `{"id":"a","queue":"q","age_seconds":0}`+"\n"; got != want {
		t.Errorf("before Close: %q, want %q", got, want)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRowWriterCSVPeriodicFlush(t *testing.T) {
	var buf bytes.Buffer
	w := NewRowWriter(&buf, FormatCSV, jobHeader)
	for _, j := range makeJobs(flushRows) {
		if err := w.Write(j); err != nil {
			t.Fatal(err)
		}
	}
	if recs := parseCSV(t, buf.String()); len(recs) != flushRows+1 {
		t.Errorf("after %d rows, %d records visible before Close", flushRows, len(recs))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRowWriterEmptyCSVHasHeader(t *testing.T) {
	var buf bytes.Buffer
	w := NewRowWriter(&buf, FormatCSV, jobHeader)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "ID,QUEUE,AGE\n" {
		t.Errorf("got %q", buf.String())
	}
}

func TestRowWriterErrors(t *testing.T) {
	t.Run("invalid format", func(t *testing.T) {
		var buf bytes.Buffer
		w := NewRowWriter(&buf, "yaml", jobHeader)
		if err := w.Write(jobRec{}); err == nil {
			t.Error("Write: want error")
		}
		if err := w.Close(); err == nil || !strings.Contains(err.Error(), "csv") {
			t.Errorf("Close: err = %v", err)
		}
		if buf.Len() != 0 {
			t.Errorf("wrote %q", buf.String())
		}
	})
	t.Run("nil record", func(t *testing.T) {
		w := NewRowWriter(&bytes.Buffer{}, FormatJSONL, nil)
		if err := w.Write(nil); err == nil {
			t.Error("want error")
		}
	})
	boom := errors.New("boom")
	for _, f := range formats {
		t.Run("writer error "+string(f), func(t *testing.T) {
			w := NewRowWriter(failWriter{boom}, f, jobHeader)
			var err error
			for _, j := range makeJobs(2 * flushRows) {
				if err = w.Write(j); err != nil {
					break
				}
			}
			if cerr := w.Close(); !errors.Is(cerr, boom) {
				t.Errorf("Close = %v, want %v", cerr, boom)
			}
			if err != nil && !errors.Is(err, boom) {
				t.Errorf("Write = %v", err)
			}
		})
	}
	t.Run("unmarshalable object is sticky", func(t *testing.T) {
		var buf bytes.Buffer
		w := NewRowWriter(&buf, FormatJSONL, nil)
		if err := w.Write(objRec{make(chan int)}); err == nil {
			t.Fatal("want error")
		}
		if err := w.Write(jobRec{ID: "x"}); err == nil {
			t.Error("want sticky error")
		}
		if err := w.Close(); err == nil {
			t.Error("Close: want error")
		}
	})
}

type objRec struct{ v any }

func (o objRec) Row() []string { return []string{fmt.Sprint(o.v)} }
func (o objRec) Object() any   { return o.v }

func TestRowWriterConcurrent(t *testing.T) {
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			w := NewRowWriter(&buf, f, jobHeader)
			var wg sync.WaitGroup
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for _, j := range makeJobs(100) {
						if err := w.Write(j); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			switch f {
			case FormatJSONL:
				if n := len(nonEmptyLines(buf.String())); n != 800 {
					t.Errorf("%d lines", n)
				}
			case FormatJSON:
				var got []jobRec
				if err := json.Unmarshal(buf.Bytes(), &got); err != nil || len(got) != 800 {
					t.Errorf("%d elements, %v", len(got), err)
				}
			case FormatCSV:
				if n := len(parseCSV(t, buf.String())); n != 801 {
					t.Errorf("%d records", n)
				}
			}
		})
	}
}

// ---- helpers of format.go ----

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{-999 * time.Millisecond, "0s"},
		{time.Second, "1s"},
		{45 * time.Second, "45s"},
		{45*time.Second + 900*time.Millisecond, "45s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m0s"},
		{3*time.Minute + 12*time.Second, "3m12s"},
		{59*time.Minute + 59*time.Second, "59m59s"},
		{time.Hour, "1h0m"},
		{5*time.Hour + 2*time.Minute + 30*time.Second, "5h2m"},
		{23*time.Hour + 59*time.Minute, "23h59m"},
		{24 * time.Hour, "1d0h"},
		{3*24*time.Hour + 4*time.Hour + 30*time.Minute, "3d4h"},
		{400 * 24 * time.Hour, "400d0h"},
		{-45 * time.Second, "-45s"},
		{-(3*time.Minute + 12*time.Second), "-3m12s"},
		{-(3*24*time.Hour + 4*time.Hour), "-3d4h"},
		{math.MaxInt64, "106751d23h"},
		{math.MinInt64, "-106751d23h"},
	}
	for _, tt := range tests {
		if got := Duration(tt.d); got != tt.want {
			t.Errorf("Duration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestTime(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, ""},
		{time.Date(2024, 3, 5, 14, 7, 9, 0, time.UTC), "2024-03-05T14:07:09Z"},
		{time.Date(2024, 3, 5, 15, 7, 9, 500_000_000, paris), "2024-03-05T14:07:09Z"},
		{time.Unix(0, 0), "1970-01-01T00:00:00Z"},
	}
	for _, tt := range tests {
		if got := Time(tt.t); got != tt.want {
			t.Errorf("Time(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestInt(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0"},
		{7, "7"},
		{1234567, "1234567"},
		{-42, "-42"},
		{math.MaxInt64, "9223372036854775807"},
		{math.MinInt64, "-9223372036854775808"},
	}
	for _, tt := range tests {
		if got := Int(tt.n); got != tt.want {
			t.Errorf("Int(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
