// Package commands owns the command line: global flags, one file per
// subcommand (flags, one library call, the result handed to report), logging
// and progress on stderr, and the exit codes. It holds no Redis logic of its
// own; that lives in the inspect and sweep packages.
package commands
