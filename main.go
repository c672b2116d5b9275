// Command resque-expire maintains the Redis behind Resque job queues: it
// finds and removes expired jobs, backfills missing deadlines, audits
// idempotency keys and reports all of it. See README.md and docs/.
package main

import (
	"os"

	"github.com/resque-expire/resque-expire/commands"
)

func main() {
	os.Exit(commands.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
