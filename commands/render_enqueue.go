package commands

import (
	"time"

	"github.com/resque-expire/resque-expire/enqueue"
	"github.com/resque-expire/resque-expire/report"
)

type enqueueResult struct{ enqueue.Result }

func (r enqueueResult) Tables() []report.Table {
	delayed := ""
	if r.DelayedAt != 0 {
		delayed = report.Time(time.Unix(r.DelayedAt, 0))
	}
	return []report.Table{{
		Header: []string{"id", "queue", "class", "list", "deadline", "delayed_at", "expiration_key", "key_expires_at"},
		Rows: [][]string{{r.ID, r.Queue, r.Class, r.List, report.Time(r.Deadline), delayed, r.ExpirationKey,
			report.Time(r.KeyExpiresAt)}},
	}}
}
