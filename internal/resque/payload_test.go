package resque

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func mustDecode(t *testing.T, raw string) *Payload {
	t.Helper()
	p, err := DecodePayload([]byte(raw))
	if err != nil {
		t.Fatalf("DecodePayload(%.60q): %v", raw, err)
	}
	return p
}

func TestDecodePayload(t *testing.T) {
	big := `{"class":"Big","id":"big","args":["` + strings.Repeat("é", 2<<20) + `"]}`
	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	tests := []struct {
		name      string
		raw       string
		ok        bool
		notObject bool // errors.Is(err, ErrNotObject)
	}{
		{"object", `{"class":"A","args":[]}`, true, false},
		{"empty object", `{}`, true, false},
		{"leading and trailing whitespace", " \t\r\n{\"id\":\"1\"}\n ", true, false},
		{"several-MB object", big, true, false},
		{"deeply nested", deep, true, false},
		{"invalid UTF-8 inside a string", "{\"id\":\"\xff\xfe\"}", true, false},
		{"duplicate keys", `{"id":"1","id":"2"}`, true, false},
		{"array", `["A",1]`, false, true},
		{"string", `"A"`, false, true},
		{"number", `42`, false, true},
		{"null", `null`, false, true},
		{"true", `true`, false, true},
		{"padded null", "  null  ", false, true},
		{"empty", ``, false, false},
		{"whitespace only", " \n\t", false, false},
		{"truncated", `{"class":"A","args":[`, false, false},
		{"trailing garbage", `{"id":"1"}x`, false, false},
		{"two objects", `{"id":"1"}{"id":"2"}`, false, false},
		{"single quotes", `{'id':'1'}`, false, false},
		{"binary", "\x00\x01\x02\xff", false, false},
		{"binary after brace", "{\x00\xff}", false, false},
		{"byte order mark", "\xef\xbb\xbf{\"id\":\"1\"}", false, false},
		{"Ruby Marshal", "\x04\bo:\bFoo\x00", false, false},
		{"several-MB garbage", "[" + big, false, false},
		{"bare word", `tomorrow`, false, false},
		{"NaN", `{"id":NaN}`, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := DecodePayload([]byte(tt.raw))
			if (err == nil) != tt.ok {
				t.Fatalf("DecodePayload error = %v, want ok %v", err, tt.ok)
			}
			if err != nil {
				if p != nil {
					t.Error("payload returned with an error")
				}
				if errors.Is(err, ErrNotObject) != tt.notObject {
					t.Errorf("error %q: ErrNotObject %v, want %v", err, errors.Is(err, ErrNotObject), tt.notObject)
				}
				if !tt.notObject && !strings.Contains(err.Error(), "not valid JSON") {
					t.Errorf("error %q does not say the payload is not JSON", err)
				}
				return
			}
			// Accessors never fail on a decoded payload.
			_, _ = p.ID([]Path{{"id"}, {"jid"}, {"args", "0", "job_id"}})
			_ = p.Class()
			_ = p.JobClass()
			_, _ = p.EnqueuedAt()
		})
	}
	if id, _ := mustDecode(t, big).ID([]Path{{"id"}}); id != "big" {
		t.Errorf("big payload id = %q", id)
	}
}

func TestParsePath(t *testing.T) {
	good := map[string]Path{
		"id":            {"id"},
		"args.0.job_id": {"args", "0", "job_id"},
		"a.b.c.d.e":     {"a", "b", "c", "d", "e"},
		"with space.x":  {"with space", "x"},
		"ünï.✓":         {"ünï", "✓"},
		"-1":            {"-1"},
		"*.?":           {"*", "?"},
	}
	for s, want := range good {
		p, err := ParsePath(s)
		if err != nil {
			t.Errorf("ParsePath(%q): %v", s, err)
			continue
		}
		if strings.Join(p, "\x00") != strings.Join(want, "\x00") || p.String() != s {
			t.Errorf("ParsePath(%q) = %q (String %q)", s, p, p.String())
		}
	}
	for _, s := range []string{"", ".", "..", "a.", ".a", "a..b", "args.0."} {
		if p, err := ParsePath(s); err == nil {
			t.Errorf("ParsePath(%q) = %q, want error", s, p)
		}
	}
	ps, err := ParsePaths(DefaultIDPaths)
	if err != nil || len(ps) != 3 || ps[2].String() != "args.0.job_id" {
		t.Errorf("ParsePaths(DefaultIDPaths) = %v, %v", ps, err)
	}
	if _, err := ParsePaths([]string{"id", "a..b"}); err == nil || !strings.Contains(err.Error(), "a..b") {
		t.Errorf("ParsePaths with a bad path: %v", err)
	}
	if ps, err := ParsePaths(nil); err != nil || len(ps) != 0 {
		t.Errorf("ParsePaths(nil) = %v, %v", ps, err)
	}
}

func TestLookup(t *testing.T) {
	p := mustDecode(t, `{
		"id": "top",
		"args": [ {"job_id": "aj", "arguments": [1, {"uuid": "deep"}]}, "second", 3 ],
		"meta": {"0": "zero-key", "job": {"id": 7}},
		"null": null,
		"nested": {"a": {"b": {"c": "abc"}}},
		"spaced": [ 1 ,  { "k" : "v" } ]
	}`)
	tests := []struct {
		path  string
		want  string // raw JSON, "" for not found
		found bool
	}{
		{"id", `"top"`, true},
		{"args.0.job_id", `"aj"`, true},
		{"args.0.arguments.1.uuid", `"deep"`, true},
		{"args.1", `"second"`, true},
		{"args.2", `3`, true},
		{"args.3", "", false},
		{"args.-1", "", false},
		{"args.x", "", false},
		{"args.99999999999999999999", "", false},
		{"meta.0", `"zero-key"`, true}, // numeric segment as an object key
		{"meta.job.id", `7`, true},
		{"null", `null`, true},
		{"null.x", "", false},
		{"id.x", "", false}, // into a string
		{"args.2.x", "", false},
		{"nested.a.b.c", `"abc"`, true},
		{"nested.a.x.c", "", false},
		{"spaced.1.k", `"v"`, true},
		{"missing", "", false},
		{"missing.deeper", "", false},
	}
	for _, tt := range tests {
		path, err := ParsePath(tt.path)
		if err != nil {
			t.Fatal(err)
		}
		raw, ok := p.Lookup(path)
		if ok != tt.found || (ok && string(raw) != tt.want) {
			t.Errorf("Lookup(%s) = %s, %v, want %s, %v", tt.path, raw, ok, tt.want, tt.found)
		}
		if ok && !json.Valid(raw) {
			t.Errorf("Lookup(%s) returned invalid JSON %q", tt.path, raw)
		}
	}
	var nilPayload *Payload
	if _, ok := nilPayload.Lookup(Path{"id"}); ok {
		t.Error("nil payload found something")
	}
	if _, ok := p.Lookup(nil); ok {
		t.Error("empty path found something")
	}
}

func TestStringAndID(t *testing.T) {
	p := mustDecode(t, `{"s":"text","esc":"a\"b\u00e9\n","empty":"","n":42,"neg":-1.5,"exp":1e3,
		"obj":{},"arr":[],"t":true,"f":false,"null":null,"jid":"j","args":[{"job_id":"aj"}]}`)
	tests := []struct {
		path string
		want string
		ok   bool
	}{
		{"s", "text", true},
		{"esc", "a\"bé\n", true},
		{"n", "42", true},
		{"neg", "-1.5", true},
		{"exp", "1e3", true},
		{"empty", "", false},
		{"obj", "", false},
		{"arr", "", false},
		{"t", "", false},
		{"f", "", false},
		{"null", "", false},
		{"nope", "", false},
	}
	for _, tt := range tests {
		got, ok := p.String(Path{tt.path})
		if got != tt.want || ok != tt.ok {
			t.Errorf("String(%s) = %q, %v, want %q, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
	paths, _ := ParsePaths([]string{"id", "empty", "obj", "jid", "args.0.job_id"})
	if id, ok := p.ID(paths); id != "j" || !ok {
		t.Errorf("ID = %q, %v, want the first path holding one (jid)", id, ok)
	}
	paths, _ = ParsePaths([]string{"args.0.job_id", "jid"})
	if id, _ := p.ID(paths); id != "aj" {
		t.Errorf("ID = %q, want the paths tried in order", id)
	}
	if id, ok := p.ID(nil); ok {
		t.Errorf("ID with no paths = %q", id)
	}
	defaults, _ := ParsePaths(DefaultIDPaths)
	for raw, want := range map[string]string{
		`{"id":"a","jid":"b","args":[{"job_id":"c"}]}`: "a",
		`{"jid":"b","args":[{"job_id":"c"}]}`:          "b",
		`{"args":[{"job_id":"c"}]}`:                    "c",
		`{"id":"","jid":null,"args":[{"job_id":"c"}]}`: "c",
		`{"id":12345678901234567890}`:                  "12345678901234567890",
		`{"args":[]}`:                                  "",
		`{"args":"str"}`:                               "",
		`{"id":"*:[?]\n "}`:                            "*:[?]\n ",
	} {
		if got, _ := mustDecode(t, raw).ID(defaults); got != want {
			t.Errorf("%s: ID = %q, want %q", raw, got, want)
		}
	}
}

func TestClass(t *testing.T) {
	tests := []struct {
		raw, class, jobClass string
	}{
		{`{"class":"SendEmailJob"}`, "SendEmailJob", "SendEmailJob"},
		{`{"class":"` + ActiveJobWrapper + `","args":[{"job_class":"Reports::Daily"}]}`, ActiveJobWrapper, "Reports::Daily"},
		{`{"class":"` + ActiveJobWrapper + `","args":[{}]}`, ActiveJobWrapper, ActiveJobWrapper},
		{`{"class":"` + ActiveJobWrapper + `","args":"x"}`, ActiveJobWrapper, ActiveJobWrapper},
		{`{"class":"Other","args":[{"job_class":"Ignored"}]}`, "Other", "Other"},
		{`{"class":7}`, "7", "7"},
		{`{"class":["A"]}`, "", ""},
		{`{}`, "", ""},
	}
	for _, tt := range tests {
		p := mustDecode(t, tt.raw)
		if p.Class() != tt.class || p.JobClass() != tt.jobClass {
			t.Errorf("%s: Class %q JobClass %q, want %q %q", tt.raw, p.Class(), p.JobClass(), tt.class, tt.jobClass)
		}
	}
}

func TestEnqueuedAt(t *testing.T) {
	tests := []struct {
		raw  string
		want time.Time
	}{
		{`{"args":[{"enqueued_at":"2024-06-01T11:00:00.123456Z"}]}`, time.Date(2024, 6, 1, 11, 0, 0, 123456000, time.UTC)},
		{`{"enqueued_at":1717236000}`, time.Unix(1717236000, 0).UTC()},
		{`{"enqueued_at":1717236000.5}`, time.Unix(1717236000, 5e8).UTC()},
		{`{"enqueued_at":"1717236000"}`, time.Unix(1717236000, 0).UTC()},
		{`{"created_at":1717236000123}`, time.UnixMilli(1717236000123).UTC()},
		{`{"created_at":"2024-06-01T13:00:00+02:00"}`, time.Date(2024, 6, 1, 11, 0, 0, 0, time.UTC)},
		// ActiveJob's first, then enqueued_at, then created_at; bad values skipped.
		{`{"args":[{"enqueued_at":"2024-01-01T00:00:00Z"}],"enqueued_at":1717236000}`, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)},
		{`{"args":[{"enqueued_at":"soon"}],"enqueued_at":1717236000}`, time.Unix(1717236000, 0).UTC()},
		{`{"enqueued_at":"garbage","created_at":1717236000}`, time.Unix(1717236000, 0).UTC()},
		{`{"enqueued_at":0}`, time.Time{}},
		{`{"enqueued_at":-5}`, time.Time{}},
		{`{"enqueued_at":null}`, time.Time{}},
		{`{"enqueued_at":1e9}`, time.Time{}},
		{`{}`, time.Time{}},
	}
	for _, tt := range tests {
		got, ok := mustDecode(t, tt.raw).EnqueuedAt()
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("%s: EnqueuedAt = %v, %v, want %v", tt.raw, got, ok, tt.want)
		}
		if ok && got.Location() != time.UTC {
			t.Errorf("%s: EnqueuedAt not in UTC: %v", tt.raw, got)
		}
	}
}

// TestLookupSkipsTrickyText: the navigator skips over values without
// decoding them; strings holding braces, brackets, quotes, escapes and
// key-like text must not throw it off.
func TestLookupSkipsTrickyText(t *testing.T) {
	raw := `{ "a" : "}]\"{[" , "b\"":1,"c\\":{"id":"not me"},"d":[ "]", {"x":"}"}, [[]], -1.5e+3 ,true,false,null ],
		"\u0069d" : "escaped key", "id" : "second id", "args":[{"job_id":"\u00e9\ud83d\ude00"}], "z" : { } , "n":-0.0E-2 }`
	p := mustDecode(t, raw)
	tests := []struct {
		path, want string
		ok         bool
	}{
		{"a", "}]\"{[", true},
		{"b\"", "1", true},
		{`c\`, "", false}, // an object
		{`c\.id`, "not me", true},
		{"d.0", "]", true},
		{"d.1.x", "}", true},
		{"d.3", "-1.5e+3", true},
		{"d.4", "", false},
		{"d.6", "", false},
		{"d.7", "", false},
		{"id", "second id", true}, // "\u0069d" is "id" too, and the last key wins
		{"args.0.job_id", "é😀", true},
		{"z", "", false},
		{"n", "-0.0E-2", true},
	}
	for _, tt := range tests {
		got, ok := p.String(Path(strings.Split(tt.path, ".")))
		if got != tt.want || ok != tt.ok {
			t.Errorf("String(%s) = %q, %v, want %q, %v", tt.path, got, ok, tt.want, tt.ok)
		}
	}
	for path, want := range map[string]string{"d.2": "[[]]", "z": "{ }", "d": `[ "]", {"x":"}"}, [[]], -1.5e+3 ,true,false,null ]`, "d.5": "false"} {
		got, ok := p.Lookup(Path(strings.Split(path, ".")))
		if !ok || string(got) != want {
			t.Errorf("Lookup(%s) = %s, %v, want %s", path, got, ok, want)
		}
	}
}

func TestDuplicateKeysLastWins(t *testing.T) {
	// Ruby's JSON (what a Resque worker decodes with) keeps the last of
	// duplicate keys; the tool must read the same id and class.
	p, err := DecodePayload([]byte(`{"class":"A","id":"first","args":[{"job_id":"x","job_id":"y"}],"class":"B","id":"last"}`))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := p.ID([]Path{{"id"}}); id != "last" {
		t.Errorf("id = %q, want last", id)
	}
	if c := p.Class(); c != "B" {
		t.Errorf("class = %q, want B", c)
	}
	if id, _ := p.ID([]Path{{"args", "0", "job_id"}}); id != "y" {
		t.Errorf("args.0.job_id = %q, want y", id)
	}
}

func TestMarshal(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"html characters as Ruby writes them", map[string]string{"a": "<b>&</b>"}, `{"a":"<b>&</b>"}`},
		{"no trailing newline", []int{1, 2}, `[1,2]`},
		{"unicode kept", "é", `"é"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Marshal(tc.v); got != tc.want {
				t.Errorf("Marshal(%v) = %q, want %q", tc.v, got, tc.want)
			}
		})
	}
}
