// Package audit owns judging the keys around Resque's jobs and repairing
// them: Run reads the idempotency key families (config.go), the jobs and
// their duplicates, resque-loner's markers (digest.go re-encodes payloads as
// resque-loner does) and the deadline keys, and reports TTLs, stuck keys and
// orphans with bounded memory; Thresholds turn a report into check's pass or
// fail; Fix repairs what the audit reports, each key with a script
// (fix_delete.lua, fix_ttl.lua, internal/orphan's orphan_expire.lua) that
// re-checks it is still in the state judged.
package audit
