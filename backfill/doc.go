// Package backfill owns giving deadlines to jobs that have none: Run walks
// the queues and delayed buckets with an inspect.Scanner and writes each
// page's missing deadlines with backfill_page.lua (never replacing one
// someone set), and LoadPolicy reads the per-queue and per-class
// TTL rules of a policy file.
package backfill
