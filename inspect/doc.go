// Package inspect owns reading Resque's Redis without changing it: it
// discovers queues and delayed buckets, streams every job of a list in
// bounded LRANGE pages (keeping its place while workers pop and producers
// push), fetches each page's deadlines with one MGET, and classifies every
// job into exactly one State. Inspect and List summarise and enumerate; the
// sweep package drives the same Scanner to remove what it finds expired.
package inspect
