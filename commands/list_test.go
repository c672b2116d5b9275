package commands

import (
	"reflect"
	"testing"

	"github.com/resque-expire/resque-expire/inspect"
)

func TestListOptionsValidate(t *testing.T) {
	cases := []struct {
		name string
		o    listOptions
		want string
	}{
		{"defaults", listOptions{state: "all"}, ""},
		{"a state", listOptions{state: "expired"}, ""},
		{"bad state", listOptions{state: "dead"}, `--state: want expired, live, missing, unidentified, invalid or all, got "dead"`},
		{"negative limit", listOptions{state: "all", limit: -1}, "--limit must not be negative"},
		{"bad state before bad limit", listOptions{state: "x", limit: -1}, "--state"},
		{"sources", listOptions{state: "all", sources: []string{"queues", "delayed"}}, ""},
		{"failed alone", listOptions{state: "all", sources: []string{"failed"}}, ""},
		{"bad source", listOptions{state: "all", sources: []string{"schedule"}}, `--source: want queues, delayed or failed, got "schedule"`},
		{"failed with queues", listOptions{state: "all", sources: []string{"failed", "queues"}}, "--source failed lists failure entries, whose columns differ: give it alone"},
	}
	for _, c := range cases {
		checkValidation(t, c.name, &c.o, (*listOptions).validate, c.want)
	}
}

// TestListOptionsLists: --source and --delayed/--no-delayed together say
// which lists are read.
func TestListOptionsLists(t *testing.T) {
	cases := []struct {
		sources                 []string
		delayed                 bool
		queues, delay, failures bool
	}{
		{nil, true, true, true, false},
		{nil, false, true, false, false},
		{[]string{"queues"}, true, true, false, false},
		{[]string{"delayed"}, true, false, true, false},
		{[]string{"delayed"}, false, false, false, false},
		{[]string{"failed"}, true, false, false, true},
	}
	for _, c := range cases {
		o := listOptions{filters: filters{delayed: c.delayed}, state: "all", sources: c.sources}
		q, d, f, err := o.lists()
		if err != nil || q != c.queues || d != c.delay || f != c.failures {
			t.Errorf("sources %v delayed %v: lists() = %v %v %v %v, want %v %v %v", c.sources, c.delayed, q, d, f, err, c.queues, c.delay, c.failures)
		}
	}
	o := listOptions{state: "missing"}
	if got, _ := o.states(); !reflect.DeepEqual(got, []inspect.State{inspect.StateMissing}) {
		t.Errorf("states() = %v", got)
	}
}

// TestFilterNames: inspect's note names the filters that can leave jobs
// uncounted.
func TestFilterNames(t *testing.T) {
	for _, c := range []struct {
		f    filters
		want string
	}{
		{filters{}, "--class"},
		{filters{classes: []string{"C"}}, "--class"},
		{filters{queues: []string{"q"}}, "--queue"},
		{filters{queues: []string{"q"}, classes: []string{"C"}}, "--queue or --class"},
	} {
		if got := c.f.filterNames(); got != c.want {
			t.Errorf("%+v: filterNames() = %q, want %q", c.f, got, c.want)
		}
	}
}
