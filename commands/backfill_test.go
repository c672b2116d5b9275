package commands

import (
	"testing"
	"time"
)

func TestBackfillOptionsValidate(t *testing.T) {
	valid := func() backfillOptions { return backfillOptions{ttl: "24h", from: "enqueued", retention: "7d"} }
	cases := []struct {
		name string
		edit func(*backfillOptions)
		want string
	}{
		{"ttl", func(*backfillOptions) {}, ""},
		{"policy alone", func(o *backfillOptions) { o.ttl, o.policy = "", "policy.yaml" }, ""},
		{"days and decimals", func(o *backfillOptions) { o.ttl, o.retention = "1.5d", "2w" }, ""},
		{"from now", func(o *backfillOptions) { o.from = "now" }, ""},
		{"negative limit", func(o *backfillOptions) { o.limit = -1 }, "--limit must not be negative"},
		{"bad ttl", func(o *backfillOptions) { o.ttl = "soon" }, `--ttl "soon": `},
		{"ttl 0", func(o *backfillOptions) { o.ttl = "0s" }, `--ttl must be positive, got "0s"`},
		{"negative ttl", func(o *backfillOptions) { o.ttl = "-1d" }, `--ttl must be positive, got "-1d"`},
		{"neither ttl nor policy", func(o *backfillOptions) { o.ttl = "" }, "backfill needs --ttl or --policy"},
		{"bad from", func(o *backfillOptions) { o.from = "then" }, "--from: "},
		{"bad retention", func(o *backfillOptions) { o.retention = "forever" }, `--retention "forever": `},
		{"retention 0", func(o *backfillOptions) { o.retention = "0d" }, `--retention must be positive, got "0d"`},
	}
	for _, c := range cases {
		o := valid()
		c.edit(&o)
		checkValidation(t, c.name, &o, (*backfillOptions).validate, c.want)
	}
}

// TestBackfillOptionsRequest: the options Backfill is given.
func TestBackfillOptionsRequest(t *testing.T) {
	o := backfillOptions{filters: filters{delayed: true}, ttl: "1d12h", from: "now", retention: "7d", dryRun: true, limit: 5, fixKeyTTL: true}
	got, err := o.request()
	if err != nil || got.TTL != 36*time.Hour || got.Retention != 7*24*time.Hour || string(got.From) != "now" ||
		!got.DryRun || got.Limit != 5 || !got.FixKeyTTL || !got.Delayed {
		t.Errorf("request() = %+v, %v", got, err)
	}
}

func TestEnqueueOptionsValidate(t *testing.T) {
	valid := func() enqueueOptions {
		return enqueueOptions{queue: "mailers", class: "WelcomeMail", ttl: "1h", retention: "7d", args: []string{"42"}}
	}
	cases := []struct {
		name string
		edit func(*enqueueOptions)
		want string
	}{
		{"queue, class and ttl", func(*enqueueOptions) {}, ""},
		{"at", func(o *enqueueOptions) { o.at = "2030-01-02T03:04:05Z" }, ""},
		{"at in Unix seconds", func(o *enqueueOptions) { o.at = "1900000000" }, ""},
		{"in", func(o *enqueueOptions) { o.in = "30m" }, ""},
		{"no queue", func(o *enqueueOptions) { o.queue = "" }, "enqueue needs --queue, --class and --ttl"},
		{"no class", func(o *enqueueOptions) { o.class = "" }, "enqueue needs --queue, --class and --ttl"},
		{"no ttl", func(o *enqueueOptions) { o.ttl = "" }, "enqueue needs --queue, --class and --ttl"},
		{"bad ttl", func(o *enqueueOptions) { o.ttl = "1x" }, `--ttl "1x": `},
		{"ttl 0", func(o *enqueueOptions) { o.ttl = "0s" }, `--ttl must be positive, got "0s"`},
		{"bad retention", func(o *enqueueOptions) { o.retention = "x" }, `--retention "x": `},
		{"negative retention", func(o *enqueueOptions) { o.retention = "-1h" }, `--retention must be positive, got "-1h"`},
		{"at and in", func(o *enqueueOptions) { o.at, o.in = "1900000000", "1h" }, "give --at or --in, not both"},
		{"bad at", func(o *enqueueOptions) { o.at = "tomorrow" }, `--at "tomorrow": `},
		{"bad in", func(o *enqueueOptions) { o.in = "later" }, `--in "later": `},
		{"in 0", func(o *enqueueOptions) { o.in = "0s" }, `--in must be positive, got "0s"`},
	}
	for _, c := range cases {
		o := valid()
		c.edit(&o)
		checkValidation(t, c.name, &o, (*enqueueOptions).validate, c.want)
	}
}

// TestEnqueueOptionsRequest: --in counts from the run's now, and the id
// goes where the --id-path given says.
func TestEnqueueOptionsRequest(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	o := enqueueOptions{queue: "q", class: "C", ttl: "2h", retention: "1d", in: "30m", id: "j1", activeJob: true}
	req, err := o.request(now, []string{"jid"})
	if err != nil || !req.At.Equal(now.Add(30*time.Minute)) || req.TTL != 2*time.Hour || req.Retention != 24*time.Hour ||
		!req.Now().Equal(now) || req.ID != "j1" || !req.ActiveJob || len(req.IDPaths) != 1 || req.IDPaths[0] != "jid" {
		t.Errorf("request() = %+v, %v", req, err)
	}
}
