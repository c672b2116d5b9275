package commands

import (
	"testing"
	"time"

	"github.com/resque-expire/resque-expire/internal/resque"
)

func TestRestoreOptionsValidate(t *testing.T) {
	file := []string{"removed.jsonl"}
	cases := []struct {
		name string
		o    restoreOptions
		want string
	}{
		{"one file", restoreOptions{args: file}, ""},
		{"deadline ttl", restoreOptions{args: file, deadlineTTL: time.Hour}, ""},
		{"no file", restoreOptions{}, "restore takes exactly one archive file"},
		{"two files", restoreOptions{args: []string{"a", "b"}}, `unexpected argument "b"; restore takes exactly one archive file`},
		{"negative deadline ttl", restoreOptions{args: file, deadlineTTL: -time.Second}, "--deadline-ttl must not be negative"},
		{"to-namespace", restoreOptions{args: file, toNamespace: "staging", toNamespaceSet: true, expirationKey: resque.DefaultExpirationTemplate}, ""},
		{"bad expiration key", restoreOptions{args: file, toNamespace: "staging", toNamespaceSet: true, expirationKey: "exp:{id}:{id}"}, "--to-namespace: "},
	}
	for _, c := range cases {
		checkValidation(t, c.name, &c.o, (*restoreOptions).validate, c.want)
	}
}

// TestRestoreOptionsLayout: records go to --namespace unless
// --to-namespace names another, which then takes records of any namespace.
func TestRestoreOptionsLayout(t *testing.T) {
	def, err := resque.NewLayout("resque", resque.DefaultExpirationTemplate)
	if err != nil {
		t.Fatal(err)
	}
	o := restoreOptions{args: []string{"a"}}
	if l, anyNS, err := o.layout(def); err != nil || anyNS || l.Namespace() != "resque" {
		t.Errorf("without --to-namespace: %q %v %v", l.Namespace(), anyNS, err)
	}
	o.toNamespace, o.toNamespaceSet, o.expirationKey = "staging", true, resque.DefaultExpirationTemplate
	if l, anyNS, err := o.layout(def); err != nil || !anyNS || l.Namespace() != "staging" {
		t.Errorf("with --to-namespace staging: %q %v %v", l.Namespace(), anyNS, err)
	}
}
