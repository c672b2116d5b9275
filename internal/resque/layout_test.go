package resque

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewLayout(t *testing.T) {
	tests := []struct {
		ns, template string
		wantNS       string
		wantErr      bool
	}{
		{"resque", "", "resque", false},
		{"resque:", "", "resque", false},
		{"", "", "", false},
		{"app", "exp:{id}", "app", false},
		{"app", "{id}", "app", false},
		{"app", "{ns}:job:{id}", "app", false},
		{"app", "no placeholder", "", true},
		{"app", "{id}:{id}", "", true},
		{"app", "{ns}:{ID}", "", true},
	}
	for _, tt := range tests {
		l, err := NewLayout(tt.ns, tt.template)
		if (err != nil) != tt.wantErr {
			t.Errorf("NewLayout(%q, %q) error = %v, want error %v", tt.ns, tt.template, err, tt.wantErr)
			continue
		}
		if err == nil && l.Namespace() != tt.wantNS {
			t.Errorf("NewLayout(%q).Namespace() = %q, want %q", tt.ns, l.Namespace(), tt.wantNS)
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("MustLayout with a bad template did not panic")
		}
	}()
	MustLayout("x", "nothing")
}

func TestLayoutKeys(t *testing.T) {
	tests := []struct {
		ns   string
		want map[string]string
	}{
		{"resque", map[string]string{
			"queues": "resque:queues", "queue": "resque:queue:mailers", "prefix": "resque:queue:",
			"pattern": "resque:queue:*", "failed": "resque:failed", "schedule": "resque:delayed_queue_schedule",
			"delayed": "resque:delayed:1717236000", "timestamps": `resque:timestamps:{"class":"A"}`,
			"lock": "resque:resque-expire:lock", "journal": "resque:resque-expire:journal",
			"restored": "resque:resque-expire:restored:abc", "expiration": "resque:job:j1:expiration",
			"expPattern": "resque:job:*:expiration", "loners": "resque:loners:queue:*",
		}},
		{"", map[string]string{
			"queues": "queues", "queue": "queue:mailers", "prefix": "queue:", "pattern": "queue:*",
			"failed": "failed", "schedule": "delayed_queue_schedule", "delayed": "delayed:1717236000",
			"timestamps": `timestamps:{"class":"A"}`, "lock": "resque-expire:lock", "journal": "resque-expire:journal",
			"restored": "resque-expire:restored:abc", "expiration": ":job:j1:expiration",
			"expPattern": ":job:*:expiration", "loners": "loners:queue:*",
		}},
		{"re[s]que*", map[string]string{
			"queues": "re[s]que*:queues", "queue": "re[s]que*:queue:mailers", "prefix": "re[s]que*:queue:",
			"pattern": `re\[s\]que\*:queue:*`, "failed": "re[s]que*:failed", "schedule": "re[s]que*:delayed_queue_schedule",
			"delayed": "re[s]que*:delayed:1717236000", "timestamps": `re[s]que*:timestamps:{"class":"A"}`,
			"lock": "re[s]que*:resque-expire:lock", "journal": "re[s]que*:resque-expire:journal",
			"restored": "re[s]que*:resque-expire:restored:abc", "expiration": "re[s]que*:job:j1:expiration",
			"expPattern": `re\[s\]que\*:job:*:expiration`, "loners": `re\[s\]que\*:loners:queue:*`,
		}},
		{"{app}", map[string]string{
			"queues": "{app}:queues", "queue": "{app}:queue:mailers", "pattern": "{app}:queue:*",
			"expiration": "{app}:job:j1:expiration", "expPattern": "{app}:job:*:expiration",
		}},
	}
	for _, tt := range tests {
		l := MustLayout(tt.ns, "")
		got := map[string]string{
			"queues": l.Queues(), "queue": l.Queue("mailers"), "prefix": l.QueuePrefix(), "pattern": l.QueuePattern(),
			"failed": l.Failed(), "schedule": l.DelayedSchedule(), "delayed": l.Delayed(1717236000),
			"timestamps": l.Timestamps(`{"class":"A"}`), "lock": l.Lock(), "journal": l.Journal(),
			"restored": l.RestoredMarker("abc"), "expiration": l.Expiration("j1"), "expPattern": l.ExpirationPattern(),
			"loners": l.LonerPattern(),
		}
		for k, want := range tt.want {
			if got[k] != want {
				t.Errorf("ns %q: %s = %q, want %q", tt.ns, k, got[k], want)
			}
		}
	}
	if DelayedMember(1717236000) != "delayed:1717236000" {
		t.Errorf("DelayedMember = %q", DelayedMember(1717236000))
	}
}

func TestQueueName(t *testing.T) {
	l := MustLayout("resque", "")
	for _, name := range []string{"mailers", "with space", "ünï ✓", "a:b", "*", "new\nline", "x"} {
		got, ok := l.QueueName(l.Queue(name))
		if !ok || got != name {
			t.Errorf("QueueName(Queue(%q)) = %q, %v", name, got, ok)
		}
	}
	for _, key := range []string{"resque:queue:", "resque:queues", "other:queue:a", "resque:queuex", "queue:a", ""} {
		if n, ok := l.QueueName(key); ok {
			t.Errorf("QueueName(%q) = %q, want no queue", key, n)
		}
	}
}

// TestExpirationRoundTrip: every id, whatever it contains, maps to a key
// and back, for the default and custom templates.
func TestExpirationRoundTrip(t *testing.T) {
	ids := []string{"j1", "*", "?", "[", "]", "a*b", "a?b", "[ab]", `\`, "a:b:c", ":", "a b", "a\nb", "ünï✓", "{id}", "{ns}", "x\x00y", "\xff\xfe"}
	templates := []string{"", "{id}", "exp:{id}", "{id}:exp", "{ns}:{id}", "{ns}:job:{id}:expiration:v2", "prefix-{id}-suffix"}
	for _, ns := range []string{"resque", "", "re[s]que*", "{app}"} {
		for _, tmpl := range templates {
			l := MustLayout(ns, tmpl)
			for _, id := range ids {
				key := l.Expiration(id)
				got, ok := l.ExpirationID(key)
				if !ok || got != id {
					t.Errorf("ns %q template %q: ExpirationID(Expiration(%q)) = %q, %v (key %q)", ns, tmpl, id, got, ok, key)
				}
			}
		}
	}
	l := MustLayout("resque", "")
	for _, key := range []string{"resque:job::expiration", "resque:job:expiration", "resque:job:1:expirations", "other:job:1:expiration", "resque:queue:x", ""} {
		if id, ok := l.ExpirationID(key); ok {
			t.Errorf("ExpirationID(%q) = %q, want no id", key, id)
		}
	}
}

func TestEscapeGlob(t *testing.T) {
	tests := map[string]string{
		"":           "",
		"resque":     "resque",
		"re[s]que*":  `re\[s\]que\*`,
		"a?b":        `a\?b`,
		`a\b`:        `a\\b`,
		"^x":         `\^x`,
		"{app}":      "{app}",
		"ünï*":       `ünï\*`,
		"*?[]\\^":    `\*\?\[\]\\\^`,
		"new\nline*": "new\nline\\*",
	}
	for in, want := range tests {
		if got := EscapeGlob(in); got != want {
			t.Errorf("EscapeGlob(%q) = %q, want %q", in, got, want)
		}
	}
}

// unescape undoes EscapeGlob.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestEscapeGlobKeepsBytes: Redis keys are bytes, not UTF-8. Escaping must
// not change any byte but add backslashes; a namespace such as
// "app\xff*" must give a pattern that matches its own keys.
func TestEscapeGlobKeepsBytes(t *testing.T) {
	for _, s := range []string{"a*\xff", "\xfe[x]", "ok*\xc3", "\xff", "plain\xff"} {
		got := EscapeGlob(s)
		if unescape(got) != s {
			t.Errorf("EscapeGlob(%q) = %q: unescaped it is %q", s, got, unescape(got))
		}
		if utf8.ValidString(s) != utf8.ValidString(got) {
			t.Errorf("EscapeGlob(%q) = %q changed the bytes", s, got)
		}
	}
}
