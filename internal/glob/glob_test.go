package glob

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "anything:at/all", true},
		{"mail*", "mailers", true},
		{"mail*", "xmailers", false},
		{"Reports::*", "Reports::Daily", true},
		{"q?", "q1", true},
		{"q?", "q12", false},
		{"q[0-9]", "q7", true},
		{"q[!0-9]", "q7", false},
		{"q[!0-9]", "qa", true},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"a.b", "axb", false},
		{"crit(al)", "crit(al)", true},
		{"", "", true},
		{"", "x", false},
		{"line*", "line\nbreak", true},
	}
	for _, tt := range tests {
		p, err := Compile(tt.pattern)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.pattern, err)
		}
		if got := p.Match(tt.name); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, bad := range []string{"[abc", `abc\`, "[]"} {
		if _, err := Compile(bad); err == nil {
			t.Errorf("Compile(%q) succeeded, want error", bad)
		}
	}
}

func TestSet(t *testing.T) {
	var empty Set
	if !empty.Match("x") {
		t.Error("empty set must match everything")
	}
	s, err := CompileSet([]string{"a*", "b"})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Match("abc") || !s.Match("b") || s.Match("c") {
		t.Error("set matching wrong")
	}
}
