package redisconn

import (
	"errors"
	"strings"
	"testing"
)

// TestScrubShortPassword: a short password that also occurs inside ordinary
// words and JSON keys is redacted where it is a credential and nowhere
// else; replacing every occurrence ("xxxxxdis") would show what it is.
func TestScrubShortPassword(t *testing.T) {
	for _, c := range []struct {
		url, in, want string
	}{
		{"redis://:re@127.0.0.1:6379/0",
			`{"level":"debug","redis":"redis://:re@127.0.0.1:6379/0","message":"connected to redis"}`,
			`{"level":"debug","redis":"redis://:xxxxx@127.0.0.1:6379/0","message":"connected to redis"}`},
		{"redis://:re@127.0.0.1:6379/0",
			"resque-expire: connect to redis://:re@127.0.0.1:6379/0: WRONGPASS invalid username-password pair",
			"resque-expire: connect to redis://:xxxxx@127.0.0.1:6379/0: WRONGPASS invalid username-password pair"},
		{"redis://default:s@h:6379", `{"queues":3,"jobs":12,"message":"scanned queues: user s@h is default:s@h"}`,
			`{"queues":3,"jobs":12,"message":"scanned queues: user xxxxx@h is default:xxxxx@h"}`},
		{"redis://s@h:6379", "dial redis://s@h:6379: jobs lost", "dial redis://xxxxx@h:6379: jobs lost"},
		{"redis://u:re@h", "AUTH u re: refused; auth re failed (hello 3 AUTH u re)",
			"AUTH u xxxxx: refused; auth xxxxx failed (hello 3 AUTH u xxxxx)"},
		{"redis://u:re@h", "oauth re is not an auth argument, but re is a word", "oauth xxxxx is not an auth argument, but xxxxx is a word"},
		{"redis://u:re@h", "retries: 3, rere, are, re-try, (re)", "retries: 3, rere, are, re-try, (xxxxx)"},
	} {
		got := Scrub(c.in, Secrets(c.url)...)
		if got != c.want {
			t.Errorf("Scrub(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

// TestScrubURLWithoutKnownSecret: any URL's user:password pair is redacted.
func TestScrubURLWithoutKnownSecret(t *testing.T) {
	in := `sentinel said "redis://app:hunter2@10.0.0.5:6379/0" and rediss://:tok3n@h:6380`
	want := `sentinel said "redis://app:xxxxx@10.0.0.5:6379/0" and rediss://:xxxxx@h:6380`
	if got := Scrub(in); got != want {
		t.Errorf("Scrub = %q, want %q", got, want)
	}
	if got := Scrub("see https://example.com/a:b@c and user:pw"); got != "see https://example.com/a:b@c and user:pw" {
		t.Errorf("Scrub changed text without credentials: %q", got)
	}
}

func TestRedactErrorShortPassword(t *testing.T) {
	err := RedactError(errors.New("redis: pool: dial redis://:re@h:1: connection refused"), "redis://:re@h:1")
	if got := err.Error(); got != "redis: pool: dial redis://:xxxxx@h:1: connection refused" {
		t.Errorf("RedactError = %q", got)
	}
	if strings.Contains(err.Error(), "xxxxxdis") {
		t.Errorf("RedactError mangled a word: %q", err)
	}
}
