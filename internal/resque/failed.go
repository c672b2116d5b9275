package resque

import "strings"

// FailedQueues is the SET of failed-list names that Resque's multi-queue
// failure backend (Resque::Failure::RedisMultiQueue) keeps
// (<ns>:failed_queues): "<queue>_failed" for each queue a job failed in.
func (l Layout) FailedQueues() string { return l.key("failed_queues") }

// FailedList is the LIST of failure entries named name: "failed" for
// Resque's default backend (Resque::Failure::Redis), "<queue>_failed" for
// the multi-queue backend.
func (l Layout) FailedList(name string) string { return l.key(name) }

// IsFailedListName reports whether name can name a failed list: "failed",
// or a queue name followed by "_failed" (Resque::Failure.failure_queue_name).
// Anything else in <ns>:failed_queues is not read, so that a stray member
// can never make one of Resque's other lists pass for a failed list.
func IsFailedListName(name string) bool {
	if name == "failed" {
		return true
	}
	q, ok := strings.CutSuffix(name, "_failed")
	return ok && q != "" && !strings.ContainsAny(q, ":*?[]\\")
}

// FailedListQueue is the job queue a multi-queue failed list is for
// (Resque::Failure.job_queue_name), "" for the default failed list.
func FailedListQueue(name string) string {
	if name == "failed" {
		return ""
	}
	return strings.TrimSuffix(name, "_failed")
}
