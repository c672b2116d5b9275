// Package sweep owns every change resque-expire makes to Redis: removing
// expired jobs from queues and delayed buckets (Sweeper), the lock that keeps
// two sweeps apart, the archive journal and restore, and the orphaned
// deadline keys. Each destructive step is one Lua script per batch that
// re-checks what it removes, so a sweep never removes a job that was not
// expired, whatever workers and producers do meanwhile.
package sweep
