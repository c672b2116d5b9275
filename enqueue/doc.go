// Package enqueue owns pushing a job together with its deadline: Run writes
// the payload, the queue's registration (or resque-scheduler's delayed
// entry) and the deadline key atomically with enqueue.lua. payload.go builds
// Resque's and ActiveJob's payloads (with a random UUID when no job id is
// given), and ParseArgs turns the command line's words into job arguments.
package enqueue
