// Package resque owns the Resque data model as resque-expire sees it: the
// Redis key layout of Resque, resque-scheduler and the expiration convention
// (Layout), the decoding of job payloads and the lookup of a job's id inside
// them (Payload, IDPaths), and the parsing of deadline values (ParseDeadline).
//
// It does no I/O; every function here is pure and safe for concurrent use.
package resque
