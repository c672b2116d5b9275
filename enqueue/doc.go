// Package enqueue owns pushing a job together with its deadline: Run writes
// the payload, the queue's registration (or resque-scheduler's delayed
// entry) and the deadline key atomically with enqueue.lua; the payload
// builders write Resque's and ActiveJob's shapes, NewJobID the job ids, and
// ParseArgs the command line's job arguments.
package enqueue
