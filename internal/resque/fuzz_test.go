package resque

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The fuzz targets. Their seed corpora live in testdata/fuzz/<Name>/ and
// run with every `go test`; `go test -fuzz=<Name>` explores further.

// FuzzDecodePayload: DecodePayload never panics, accepts exactly the JSON
// objects, and on what it accepts every accessor runs without panicking and
// agrees with a reference navigator built on encoding/json.
func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{
		`{"class":"A","args":[1],"id":"x"}`,
		`{"class":"` + ActiveJobWrapper + `","args":[{"job_class":"B","job_id":"j","enqueued_at":"2024-06-01T11:00:00Z"}]}`,
		`[1,2]`, `"s"`, `null`, ``, "\x00\xff", `{"a":`, `{"id":1e400}`, `{"enqueued_at":1700000000.5}`,
	} {
		f.Add([]byte(s))
	}
	// A several-MB payload, valid and cut short: run as seeds by plain
	// `go test`, left out when fuzzing, where mutating megabytes would
	// bring the fuzzer to a crawl.
	if fl := flag.Lookup("test.fuzz"); fl == nil || fl.Value.String() == "" {
		big := []byte(`{"class":"Big","id":"big","args":["` + strings.Repeat("x", 3<<20) + `"]}`)
		f.Add(big)
		f.Add(big[:len(big)-3])
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := DecodePayload(raw)
		trimmed := bytes.TrimLeft(raw, " \t\r\n")
		isObject := json.Valid(raw) && len(trimmed) > 0 && trimmed[0] == '{'
		if (err == nil) != isObject {
			t.Fatalf("DecodePayload(%q): err %v, but valid JSON object: %v", raw, err, isObject)
		}
		if err != nil {
			if p != nil {
				t.Fatal("payload returned with an error")
			}
			if errors.Is(err, ErrNotObject) != json.Valid(raw) {
				t.Fatalf("DecodePayload(%q): ErrNotObject %v for valid JSON %v", raw, errors.Is(err, ErrNotObject), json.Valid(raw))
			}
			return
		}
		paths, _ := ParsePaths(DefaultIDPaths)
		id, ok := p.ID(paths)
		if ok && id == "" || !ok && id != "" {
			t.Fatalf("ID = %q, %v", id, ok)
		}
		class, jobClass := p.Class(), p.JobClass()
		at, hasAt := p.EnqueuedAt()
		if hasAt && (at.IsZero() || at.Year() > 9999 || !at.After(time.Unix(0, 0))) {
			t.Fatalf("EnqueuedAt = %v", at)
		}
		if !utf8.Valid(raw) {
			return // the reference decodes invalid UTF-8 differently; see FuzzParsePathLookup
		}
		ref := mustRef(t, raw)
		for _, path := range paths {
			if s, ok := refString(ref, path); ok {
				if s != id {
					t.Fatalf("ID = %q, reference finds %q at %s", id, s, path)
				}
				break
			}
		}
		if s, _ := refString(ref, classPath); s != class {
			t.Fatalf("Class = %q, reference %q", class, s)
		}
		if class != ActiveJobWrapper && jobClass != class {
			t.Fatalf("JobClass = %q for class %q", jobClass, class)
		}
	})
}

// FuzzParseDeadline: ParseDeadline never panics; what it accepts is after
// the Unix epoch and no later than the year 9999, in UTC; integer seconds
// come back unchanged through FormatDeadline; and FormatDeadline of any
// accepted time parses back to that time cut to the second.
func FuzzParseDeadline(f *testing.F) {
	for _, s := range []string{
		"1700000000", "1700000000123", "1700000000.25", "2023-11-14T22:13:20Z", "2023-11-15T00:13:20+02:00",
		"", "0", "-1", "NaN", "Inf", "0x10", "1e9", "253402300800", "9223372036854775808", "tomorrow-ish", " 42 ",
	} {
		f.Add(s)
	}
	epoch := time.Unix(0, 0)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDeadline(s)
		if err != nil {
			if !got.IsZero() {
				t.Fatalf("ParseDeadline(%q) = %v with error %v", s, got, err)
			}
			if !strings.HasPrefix(err.Error(), "unparseable deadline") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if !got.After(epoch) || got.Year() > 9999 || got.Location() != time.UTC {
			t.Fatalf("ParseDeadline(%q) = %v: outside (1970, 9999] or not UTC", s, got)
		}
		if d := strings.TrimSpace(s); isDigits(d) {
			n, _ := strconv.ParseInt(d, 10, 64)
			if n < MillisThreshold {
				if got.Unix() != n || got.Nanosecond() != 0 || FormatDeadline(got) != strconv.FormatInt(n, 10) {
					t.Fatalf("ParseDeadline(%q) = %v, FormatDeadline %q", s, got, FormatDeadline(got))
				}
			} else if got.UnixMilli() != n {
				t.Fatalf("ParseDeadline(%q) = %v, want %d ms", s, got, n)
			}
		}
		if got.Unix() >= 1 {
			back, err := ParseDeadline(FormatDeadline(got))
			if err != nil || !back.Equal(got.Truncate(time.Second)) {
				t.Fatalf("ParseDeadline(FormatDeadline(%v)) = %v, %v", got, back, err)
			}
		}
	})
}

// FuzzParsePathLookup: ParsePath never panics and round-trips; Lookup
// never panics, returns valid JSON, and finds what a reference navigator
// over encoding/json finds.
func FuzzParsePathLookup(f *testing.F) {
	f.Add("id", []byte(`{"id":"x"}`))
	f.Add("args.0.job_id", []byte(`{"args":[{"job_id":"j"}]}`))
	f.Add("a..b", []byte(`{}`))
	f.Add("meta.0", []byte(`{"meta":{"0":1}}`))
	f.Add("a.1", []byte(`{"a":[1,[2],{"b":"}"}]}`))
	f.Add("args.-1", []byte(`{"args":[1]}`))
	f.Add("*.?", []byte(`{"*":{"?":null}}`))
	f.Fuzz(func(t *testing.T, s string, raw []byte) {
		path, err := ParsePath(s)
		if err != nil {
			if s != "" && !strings.Contains("."+s+".", "..") {
				t.Fatalf("ParsePath(%q): %v", s, err)
			}
			return
		}
		if path.String() != s || len(path) != strings.Count(s, ".")+1 {
			t.Fatalf("ParsePath(%q) = %q", s, path)
		}
		for _, seg := range path {
			if seg == "" {
				t.Fatalf("ParsePath(%q) has an empty segment", s)
			}
		}
		p, err := DecodePayload(raw)
		if err != nil {
			return
		}
		got, ok := p.Lookup(path)
		if ok && !json.Valid(got) {
			t.Fatalf("Lookup(%s) in %q = %q: not JSON", s, raw, got)
		}
		str, strOK := p.String(path)
		if strOK && (!ok || str == "") {
			t.Fatalf("String(%s) = %q but Lookup found %v", s, str, ok)
		}
		if !utf8.Valid(raw) || !utf8.ValidString(s) {
			return
		}
		ref := mustRef(t, raw)
		want, wantOK := refLookup(ref, path)
		if ok != wantOK {
			t.Fatalf("Lookup(%s) in %q: found %v, reference %v", s, raw, ok, wantOK)
		}
		if ok {
			if v := mustRef(t, got); !reflect.DeepEqual(v, want) {
				t.Fatalf("Lookup(%s) in %q = %q, reference %#v", s, raw, got, want)
			}
		}
		if rs, rok := refString(ref, path); rok != strOK || rs != str {
			t.Fatalf("String(%s) in %q = %q, %v; reference %q, %v", s, raw, str, strOK, rs, rok)
		}
	})
}

// The reference: JSON decoded by encoding/json into ordered objects, where,
// as in encoding/json's maps, Ruby's JSON and the navigator, the last of
// duplicate keys wins.

type refKV struct {
	k string
	v any
}

type refObject []refKV

// refNumber keeps a number's literal text.
type refNumber string

func mustRef(t *testing.T, raw []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := refValue(dec)
	if err != nil {
		t.Fatalf("reference decode of %q: %v", raw, err)
	}
	return v
}

func refValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '{' {
			o := refObject{}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := refValue(dec)
				if err != nil {
					return nil, err
				}
				o = append(o, refKV{k.(string), v})
			}
			_, err := dec.Token()
			return o, err
		}
		a := []any{}
		for dec.More() {
			v, err := refValue(dec)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	case json.Number:
		return refNumber(tok), nil
	default:
		return tok, nil
	}
}

func refLookup(v any, path Path) (any, bool) {
	for _, seg := range path {
		switch x := v.(type) {
		case refObject:
			found := false
			var val any
			for _, kv := range x {
				if kv.k == seg {
					val, found = kv.v, true // no break: the last duplicate wins
				}
			}
			v = val
			if !found {
				return nil, false
			}
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || n >= len(x) {
				return nil, false
			}
			v = x[n]
		default:
			return nil, false
		}
	}
	return v, true
}

func refString(v any, path Path) (string, bool) {
	x, ok := refLookup(v, path)
	if !ok {
		return "", false
	}
	switch x := x.(type) {
	case string:
		return x, x != ""
	case refNumber:
		return string(x), true
	}
	return "", false
}
