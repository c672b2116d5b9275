"use strict";
// resque-expire against node-resque 9.x: node-resque writes the jobs, the
// resque-expire binary sweeps, and node-resque's own API, scheduler and
// workers check what is left. See README.md.

const { describe, it, before, after, beforeEach } = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { Queue, Worker, Scheduler } = require("node-resque");

const h = require("./harness");
const { WRAPPER, NS } = h;

const HOUR = 3600;
const DAY = 86400;

if (!process.env.RESQUE_EXPIRE_BIN) {
  console.error("interop: RESQUE_EXPIRE_BIN is not set; every test will fail. Set it to the resque-expire binary (see README.md).");
}

let bin;
let srv;
let redis;
const cleanups = [];

// track registers something to end after the current test, whatever happens.
function track(fn) {
  cleanups.push(fn);
}

async function runCleanups() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try {
      await h.withTimeout(Promise.resolve().then(fn), 8000, "cleanup");
    } catch (e) {
      console.error("cleanup failed:", e.message);
    }
  }
}

async function newQueue() {
  const queue = new Queue({ connection: h.connection(srv.port) }, {});
  const errors = [];
  queue.on("error", (e) => errors.push(e));
  await h.withTimeout(queue.connect(), 5000, "node-resque Queue.connect");
  if (errors.length) throw errors[0];
  track(() => queue.end());
  return queue;
}

// startWorkers starts n node-resque workers on queues and returns the
// events they emitted (failures and errors must stay empty).
async function startWorkers(n, queues, jobs, { timeout = 50 } = {}) {
  const events = { failures: [], errors: [], successes: 0 };
  const workers = [];
  for (let i = 0; i < n; i++) {
    const qs = i % 2 === 0 ? queues.slice() : queues.slice().reverse();
    const worker = new Worker(
      { connection: h.connection(srv.port), queues: qs, timeout, name: `interop-${process.pid}-${i}` },
      jobs,
    );
    worker.on("failure", (queue, job, err) => events.failures.push({ queue, job, err: String(err && err.stack) }));
    worker.on("error", (err, queue, job) => events.errors.push({ queue, job, err: String(err && err.stack) }));
    worker.on("success", () => events.successes++);
    await h.withTimeout(worker.connect(), 5000, "node-resque Worker.connect");
    workers.push(worker);
  }
  let ended = false;
  const stop = async () => {
    if (ended) return;
    ended = true;
    await Promise.all(workers.map((w) => h.withTimeout(w.end(), 8000, `worker ${w.name} end`)));
  };
  track(stop);
  for (const w of workers) await w.start();
  return { workers, events, stop };
}

async function startScheduler() {
  const scheduler = new Scheduler({ connection: h.connection(srv.port), timeout: 50, name: `interop-scheduler-${process.pid}` });
  const transfers = [];
  const errors = [];
  scheduler.on("transferredJob", (timestamp, job) => transfers.push({ timestamp, job, at: Date.now() }));
  scheduler.on("error", (e) => errors.push(e));
  await h.withTimeout(scheduler.connect(), 5000, "node-resque Scheduler.connect");
  let ended = false;
  const stop = async () => {
    if (ended) return;
    ended = true;
    await h.withTimeout(scheduler.end(), 8000, "scheduler end");
  };
  track(stop);
  const startedAt = Date.now();
  await scheduler.start();
  return { scheduler, transfers, errors, stop, startedAt };
}

const ids = (jobs) => jobs.map((j) => h.idOf(j) ?? `plain:${JSON.stringify(j.args)}`);

function queueResult(summary, name) {
  const q = summary.queues.find((x) => x.queue === name);
  assert.ok(q, `summary has no entry for queue ${name}: ${JSON.stringify(summary.queues.map((x) => x.queue))}`);
  return q;
}

describe("resque-expire with node-resque 9.x", () => {
  before(async () => {
    bin = h.resqueExpireBin();
    srv = await h.startRedis();
    redis = h.redisClient(srv.port);
    redis.on("error", () => {});
  });

  after(async () => {
    await runCleanups();
    if (redis) redis.disconnect();
    if (srv) await srv.stop();
  });

  beforeEach(async () => {
    await runCleanups();
    await redis.flushall();
  });

  // ------------------------------------------------------------------ 1
  it("sweep removes exactly the expired jobs; node-resque sees the rest in order and works them", { timeout: 30000 }, async () => {
    const queue = await newQueue();
    const now = h.nowSeconds();
    const deadlineOf = { E: now - HOUR, E0: now, L: now + DAY, Lnear: now + 120, M: null };

    // Immediate jobs, in push order per queue. P is a plain node-resque job
    // with no id at all: resque-expire must leave it alone.
    const plan = {
      critical: ["E", "L", "M", "E0", "L"],
      default: ["L", "E", "E", "M", "Lnear", "E", "P", "L"],
      mailers: ["E", "E", "E"],
    };
    const expected = {}; // queue -> kept ids in order
    const expiredIds = new Set();
    const allKept = [];
    const keptDeadline = new Map(); // id -> deadline or null
    for (const [q, kinds] of Object.entries(plan)) {
      expected[q] = [];
      let n = 0;
      for (const kind of kinds) {
        n++;
        if (kind === "P") {
          const args = [n, "plain", q];
          await queue.enqueue(q, "PlainJob", args);
          expected[q].push(`plain:${JSON.stringify(args)}`);
          allKept.push(`plain:${JSON.stringify(args)}`);
          continue;
        }
        const args = h.activeJobArgs(q, { arguments: [kind, n] });
        const id = args[0].job_id;
        if (deadlineOf[kind] !== null) await redis.set(h.expirationKey(id), String(deadlineOf[kind]));
        await queue.enqueue(q, WRAPPER, args);
        if (kind.startsWith("E")) expiredIds.add(id);
        else {
          expected[q].push(id);
          allKept.push(id);
          keptDeadline.set(id, deadlineOf[kind]);
        }
      }
    }

    // Delayed jobs (resque-scheduler layout, written by node-resque's
    // enqueueAt). Bucket B holds only expired jobs, so it must disappear.
    const t0 = Date.now();
    const at = { A: t0 + 1500, B: t0 + 2500, C: t0 + 3500 };
    const ts = Object.fromEntries(Object.entries(at).map(([k, ms]) => [k, Math.round(ms / 1000)]));
    const delayedPlan = [
      ["A", "reports", "L"],
      ["A", "default", "E"],
      ["A", "default", "L"],
      ["A", "reports", "M"],
      ["B", "reports", "E"],
      ["B", "reports", "E"],
      ["C", "critical", "L"],
    ];
    const delayedKept = { A: [], C: [] };
    const delayedArgs = {}; // id -> {q, args, bucket}
    const delayedExpired = new Set();
    for (const [bucket, q, kind] of delayedPlan) {
      const args = h.activeJobArgs(q, { arguments: ["delayed", kind], scheduledAt: new Date(at[bucket]).toISOString() });
      const id = args[0].job_id;
      if (deadlineOf[kind] !== null) await redis.set(h.expirationKey(id), String(deadlineOf[kind]));
      await queue.enqueueAt(at[bucket], q, WRAPPER, args);
      delayedArgs[id] = { q, args, bucket };
      if (kind === "E") delayedExpired.add(id);
      else {
        delayedKept[bucket].push(id);
        allKept.push(id);
        keptDeadline.set(id, deadlineOf[kind]);
      }
    }

    const { summary, run } = await h.sweep(bin, srv.url);

    // The JSON summary counts exactly the expired jobs.
    const expiredIn = (q) => plan[q].filter((k) => k.startsWith("E")).length;
    for (const q of Object.keys(plan)) {
      const r = queueResult(summary, q);
      assert.equal(r.scanned, plan[q].length, `${q}: scanned`);
      assert.equal(r.expired, expiredIn(q), `${q}: expired`);
      assert.equal(r.removed, expiredIn(q), `${q}: removed`);
      assert.equal(r.already_gone, 0, `${q}: already_gone`);
      assert.equal(r.changed, 0, `${q}: changed`);
    }
    assert.deepEqual(summary.queues.map((x) => x.queue).sort(), Object.keys(plan).sort(), "queues swept");
    assert.ok(summary.delayed, "summary has a delayed entry");
    assert.equal(summary.delayed.scanned, delayedPlan.length, "delayed: scanned");
    assert.equal(summary.delayed.expired, delayedExpired.size, "delayed: expired");
    assert.equal(summary.delayed.removed, delayedExpired.size, "delayed: removed");
    const totalExpired = expiredIds.size + delayedExpired.size;
    assert.equal(summary.expired, totalExpired, "total expired");
    assert.equal(summary.removed, totalExpired, "total removed");
    assert.equal(summary.already_gone, 0);
    assert.equal(summary.changed, 0);
    assert.equal(summary.dry_run, false);
    assert.equal(summary.destination, "deleted");
    assert.ok(!summary.stopped, `sweep stopped early: ${summary.stopped}`);
    assert.deepEqual(summary.problems, [], "no problems in node-resque's layout");

    // node-resque's own view: kept jobs, in order; none of the expired ones.
    for (const q of Object.keys(plan)) {
      const jobs = await queue.queued(q, 0, -1);
      assert.deepEqual(ids(jobs), expected[q], `queue ${q} after the sweep`);
      assert.equal(await queue.length(q), expected[q].length, `length(${q})`);
      for (const j of jobs) assert.equal(j.queue, q);
    }
    const delayed = await queue.allDelayed();
    assert.deepEqual(
      Object.keys(delayed).sort(),
      [String(ts.A * 1000), String(ts.C * 1000)].sort(),
      "delayed timestamps after the sweep (the all-expired bucket is gone)",
    );
    assert.deepEqual(ids(delayed[String(ts.A * 1000)]), delayedKept.A, "bucket A");
    assert.deepEqual(ids(delayed[String(ts.C * 1000)]), delayedKept.C, "bucket C");
    for (const [id, d] of Object.entries(delayedArgs)) {
      const want = delayedExpired.has(id) ? [] : [ts[d.bucket]];
      assert.deepEqual(await queue.scheduledAt(d.q, WRAPPER, d.args), want, `scheduledAt for ${id}`);
    }
    const schedule = await redis.zrange(`${NS}:delayed_queue_schedule`, 0, -1);
    assert.deepEqual(schedule.sort(), [String(ts.A), String(ts.C)].sort(), "delayed_queue_schedule");
    assert.equal(await redis.exists(`${NS}:delayed:${ts.B}`), 0, "empty bucket key deleted");
    // Deadline keys: the removed jobs' are gone, the kept jobs' untouched.
    for (const id of [...expiredIds, ...delayedExpired]) {
      assert.equal(await redis.exists(h.expirationKey(id)), 0, `expiration key of removed ${id}`);
    }
    for (const [id, deadline] of keptDeadline) {
      const want = deadline === null ? null : String(deadline);
      assert.equal(await redis.get(h.expirationKey(id)), want, `expiration key of kept ${id}`);
    }

    // Now node-resque runs what is left: the scheduler promotes the delayed
    // jobs on time, the workers perform each remaining job exactly once.
    const performed = new Map(); // id -> [{at, queue}]
    const record = (id, q) => {
      if (!performed.has(id)) performed.set(id, []);
      performed.get(id).push({ at: Date.now(), queue: q });
    };
    const jobs = {
      [WRAPPER]: {
        perform: async function (job) {
          record(job.job_id, this.queue);
          return job.job_id;
        },
      },
      PlainJob: {
        perform: async function (...args) {
          record(`plain:${JSON.stringify(args)}`, this.queue);
        },
      },
    };
    const sched = await startScheduler();
    const { events, stop } = await startWorkers(1, ["critical", "default", "mailers", "reports"], jobs);
    const waitMs = Math.max(0, at.C - Date.now()) + 8000;
    await h.waitFor(() => performed.size >= allKept.length, {
      timeoutMs: waitMs,
      what: "every kept job to be performed",
      describe: () => `performed ${performed.size} of ${allKept.length}; failures ${JSON.stringify(events.failures)}`,
    });
    await h.sleep(300); // long enough to see a duplicate perform
    await stop();
    await sched.stop();

    assert.deepEqual([...performed.keys()].sort(), allKept.slice().sort(), "performed exactly the kept jobs");
    for (const [id, runs] of performed) assert.equal(runs.length, 1, `${id} performed ${runs.length} times`);
    for (const id of [...expiredIds, ...delayedExpired]) assert.ok(!performed.has(id), `expired ${id} was performed`);

    // On time: node-resque's scheduler rounds now to the nearest second, so
    // it may promote up to 500ms before the bucket's second.
    assert.deepEqual(sched.errors, [], "scheduler errors");
    const transferred = new Map(sched.transfers.map((t) => [h.idOf(t.job), t]));
    for (const [id, d] of Object.entries(delayedArgs)) {
      if (delayedExpired.has(id)) {
        assert.ok(!transferred.has(id), `expired delayed job ${id} was promoted`);
        continue;
      }
      const t = transferred.get(id);
      assert.ok(t, `delayed job ${id} was not promoted`);
      assert.equal(Number(t.timestamp), ts[d.bucket], `${id} promoted from its bucket`);
      const due = ts[d.bucket] * 1000;
      assert.ok(t.at >= due - 550, `${id} promoted ${due - t.at}ms early`);
      assert.ok(t.at <= Math.max(due, sched.startedAt) + 2000, `${id} promoted ${t.at - due}ms late`);
      assert.equal(performed.get(id)[0].queue, d.q, `${id} performed from its queue`);
      assert.ok(performed.get(id)[0].at >= t.at, `${id} performed before it was promoted`);
    }
    assert.equal(await queue.failedCount(), 0, "failed list");
    assert.deepEqual(events.failures, [], "worker failures");
    assert.deepEqual(events.errors, [], "worker errors");
    for (const q of [...Object.keys(plan), "reports"]) assert.equal(await queue.length(q), 0, `${q} drained`);
    assert.deepEqual(await queue.allDelayed(), {}, "no delayed jobs left");
    console.log(`# scenario 1: sweep took ${run.ms}ms; removed ${summary.removed}; kept ${allKept.length}`);
  });

  // ------------------------------------------------------------------ 2
  it("--to-failed writes failures node-resque can read and retry", { timeout: 30000 }, async () => {
    const queue = await newQueue();
    const now = h.nowSeconds();
    // Arguments with characters JSON encoders like to treat differently:
    // non-ASCII, astral, U+2028/U+2029, HTML-ish, quotes, backslashes,
    // control characters, numbers.
    const tricky = ["héllo ✓ 😀", "line\u2028sep\u2029para", "</script> & <b>", 'q"uote\\back', "tab\tnl\n\u0001\u001f", 1.5, -0, 1e21, 12345678901234567890, null, true, { nested: { k: [1, "x"] } }];

    const expiredJobs = []; // {id, q, payload}
    const keptIds = { default: [], mailers: [] };
    const push = async (q, kind, extra) => {
      const args = h.activeJobArgs(q, { arguments: [kind, ...extra] });
      const id = args[0].job_id;
      if (kind === "E") await redis.set(h.expirationKey(id), String(now - HOUR));
      if (kind === "L") await redis.set(h.expirationKey(id), String(now + DAY));
      await queue.enqueue(q, WRAPPER, args);
      if (kind === "E") expiredJobs.push({ id, q, payload: queue.encode(q, WRAPPER, args) });
      else keptIds[q].push(id);
    };
    await push("default", "L", [1]);
    await push("default", "E", tricky);
    await push("default", "M", [2]);
    await push("default", "E", [3, "plain"]);
    await push("mailers", "E", [{ to: "ü@example.test" }]);
    await push("mailers", "L", [4]);
    // And one expired delayed job, on a queue that has no list yet.
    const dArgs = h.activeJobArgs("reports", { arguments: ["E", "delayed"] });
    const dId = dArgs[0].job_id;
    await redis.set(h.expirationKey(dId), String(now - HOUR));
    await queue.enqueueAt(Date.now() + 60000, "reports", WRAPPER, dArgs);
    expiredJobs.push({ id: dId, q: "reports", payload: queue.encode("reports", WRAPPER, dArgs), delayed: true });

    // What node-resque actually stored, byte for byte.
    const stored = new Map();
    for (const q of ["default", "mailers"]) {
      for (const raw of await redis.lrange(`${NS}:queue:${q}`, 0, -1)) stored.set(h.idOf(JSON.parse(raw)), raw);
    }
    const bucket = (await redis.keys(`${NS}:delayed:*`))[0];
    stored.set(dId, (await redis.lrange(bucket, 0, -1))[0]);

    const { summary } = await h.sweep(bin, srv.url, ["--to-failed"]);
    assert.equal(summary.removed, expiredJobs.length, "removed");
    assert.equal(summary.destination, "failed list");
    assert.equal(await queue.failedCount(), expiredJobs.length, "failedCount after --to-failed");

    const failed = await queue.failed(0, -1);
    const rawFailed = await redis.lrange(`${NS}:failed`, 0, -1);
    const byId = new Map(failed.map((f, i) => [h.idOf(f.payload), { f, raw: rawFailed[i] }]));
    assert.deepEqual([...byId.keys()].sort(), expiredJobs.map((j) => j.id).sort(), "one failure per expired job");
    const mismatches = [];
    for (const j of expiredJobs) {
      const { f, raw } = byId.get(j.id);
      assert.equal(f.exception, "ResqueExpire::JobExpired", `${j.id} exception`);
      assert.equal(f.queue, j.q, `${j.id} queue`);
      assert.equal(f.payload.class, WRAPPER, `${j.id} payload.class`);
      assert.deepEqual(f.payload, JSON.parse(stored.get(j.id)), `${j.id} payload intact`);
      assert.equal(JSON.stringify(f.payload), stored.get(j.id), `${j.id} payload bytes as node-resque wrote them`);
      assert.equal(typeof f.error, "string");
      assert.match(f.error, /expired/, `${j.id} error message`);
      assert.match(f.failed_at, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d UTC$/, `${j.id} failed_at (Resque format)`);
      assert.ok(Array.isArray(f.backtrace), `${j.id} backtrace is an array`);
      assert.equal(typeof f.worker, "string");
      // removeFailed / retryAndRemoveFailed find the entry by LREM of
      // JSON.stringify(parsed entry): the stored bytes must be exactly that.
      const d = h.firstDifference(raw, JSON.stringify(f));
      if (d) mismatches.push(`${j.id}: stored failure entry differs from node's JSON.stringify: ${d}`);
    }
    assert.deepEqual(mismatches, [], "failure entries byte-identical to JSON.stringify(JSON.parse(entry))");

    // Retry each through node-resque: back in its queue, failed list empty.
    for (const f of failed) await queue.retryAndRemoveFailed(f);
    assert.equal(await queue.failedCount(), 0, "failed list empty after retryAndRemoveFailed");
    const after = {};
    for (const q of ["default", "mailers", "reports"]) after[q] = await redis.lrange(`${NS}:queue:${q}`, 0, -1);
    for (const j of expiredJobs) {
      assert.ok(after[j.q].includes(j.payload), `${j.id} is back in ${j.q} with its original bytes`);
    }
    assert.deepEqual(
      after.default.map((r) => h.idOf(JSON.parse(r))),
      [...keptIds.default, ...expiredJobs.filter((j) => j.q === "default").map((j) => j.id)],
      "default: kept jobs in order, then the retried ones",
    );
    assert.deepEqual(await queue.allDelayed(), {}, "the delayed job left the schedule");

    // And a worker runs them all without a failure.
    const seen = [];
    const { events, stop } = await startWorkers(1, ["default", "mailers", "reports"], {
      [WRAPPER]: { perform: async (job) => seen.push(job.job_id) },
    });
    const total = after.default.length + after.mailers.length + after.reports.length;
    await h.waitFor(() => seen.length >= total, { timeoutMs: 8000, what: "retried jobs to be performed" });
    await stop();
    assert.equal(new Set(seen).size, seen.length, "each performed once");
    for (const j of expiredJobs) assert.ok(seen.includes(j.id), `retried ${j.id} performed`);
    assert.equal(await queue.failedCount(), 0);
    assert.deepEqual(events.failures, []);
    assert.deepEqual(events.errors, []);
  });

  // ------------------------------------------------------------------ 2b
  it("sweep --failed: node-resque's failed() sees exactly the survivors, and retryAndRemoveFailed works on one", { timeout: 30000 }, async () => {
    const queue = await newQueue();
    const now = h.nowSeconds();
    // Real node-resque failures: a worker runs jobs that throw.
    const kinds = ["E", "L", "M", "E", "L", "E"];
    const byKind = { E: [], L: [], M: [] };
    for (const [i, kind] of kinds.entries()) {
      const args = h.activeJobArgs("work", { arguments: [kind, i] });
      const id = args[0].job_id;
      if (kind === "E") await redis.set(h.expirationKey(id), String(now - HOUR));
      if (kind === "L") await redis.set(h.expirationKey(id), String(now + DAY));
      await queue.enqueue("work", WRAPPER, args);
      byKind[kind].push(id);
    }
    const { events, stop } = await startWorkers(1, ["work"], {
      [WRAPPER]: { perform: async () => { throw new Error("boom"); } },
    });
    await h.waitFor(async () => (await queue.failedCount()) >= kinds.length, { timeoutMs: 8000, what: "jobs to fail" });
    await stop();
    assert.deepEqual(events.errors, []);
    // And one entry the tool writes itself for an expired job (--to-failed).
    const mArgs = h.activeJobArgs("mailers", { arguments: ["E", "moved"] });
    await redis.set(h.expirationKey(mArgs[0].job_id), String(now - HOUR));
    await queue.enqueue("mailers", WRAPPER, mArgs);
    await h.sweep(bin, srv.url, ["--to-failed", "--queue", "mailers"]);
    byKind.E.push(mArgs[0].job_id);

    const before = await queue.failed(0, -1);
    assert.equal(before.length, kinds.length + 1);
    const { summary } = await h.sweep(bin, srv.url, ["--failed", "--only", "failed"]);
    assert.equal(summary.removed, byKind.E.length, "removed the expired failure entries");
    assert.equal(summary.failed.removed, byKind.E.length);

    const after = await queue.failed(0, -1);
    const expected = before.filter((f) => !byKind.E.includes(h.idOf(f.payload)));
    assert.deepEqual(after, expected, "node-resque's failed() is exactly the survivors, in order");
    assert.deepEqual(after.map((f) => h.idOf(f.payload)).sort(), [...byKind.L, ...byKind.M].sort());
    assert.equal(await queue.failedCount(), expected.length);

    // retryAndRemoveFailed on a survivor: off the failed list, back in its queue.
    const survivor = after.find((f) => h.idOf(f.payload) === byKind.L[0]);
    await queue.retryAndRemoveFailed(survivor);
    assert.equal(await queue.failedCount(), expected.length - 1, "one fewer failure");
    const queued = (await redis.lrange(`${NS}:queue:work`, 0, -1)).map((r) => h.idOf(JSON.parse(r)));
    assert.deepEqual(queued, [byKind.L[0]], "the survivor is back in its queue");
    const rest = (await queue.failed(0, -1)).map((f) => h.idOf(f.payload));
    assert.ok(!rest.includes(byKind.L[0]), "the retried entry left the failed list");
  });

  // ------------------------------------------------------------------ 3
  it("concurrent sweeps, producer and workers: every job accounted for exactly once", { timeout: 45000 }, async () => {
    await concurrentScenario({ copyEngine: false });
  });

  // The same race with the copy engine doing the removal: its thresholds
  // lowered by the binary's test hook, so that queues of a few hundred jobs
  // are copied and swapped while node-resque's workers pop them and the
  // producer pushes.
  it("concurrent sweeps by the copy engine, producer and workers: every job accounted for exactly once", { timeout: 45000 }, async () => {
    await concurrentScenario({ copyEngine: true });
  });

  async function concurrentScenario({ copyEngine }) {
    const queue = await newQueue();
    const QUEUES = ["alpha", "beta"];
    const N = 6000;
    const BURST = 100;
    const PAUSE_MS = 30;
    const now = h.nowSeconds();
    const archiveDir = fs.mkdtempSync(path.join(os.tmpdir(), "resque-expire-interop-archive-"));
    track(() => fs.rmSync(archiveDir, { recursive: true, force: true }));

    const produced = new Map(); // id -> {kind, q, deadline, enqueuedAt}
    const performed = new Map(); // id -> count
    const garbage = [];
    const jobs = {
      [WRAPPER]: {
        perform: async function (job) {
          const id = job && job.job_id;
          if (!produced.has(id)) garbage.push(job);
          performed.set(id, (performed.get(id) || 0) + 1);
          await h.sleep(5);
        },
      },
    };
    const { events, stop: stopWorkers } = await startWorkers(3, QUEUES, jobs);

    let producerDone = false;
    const producer = (async () => {
      for (let i = 0; i < N; i++) {
        const q = QUEUES[i % 2];
        const kind = ["E", "L", "E", "L", "M"][i % 5];
        const args = h.activeJobArgs(q, { arguments: [i] });
        const id = args[0].job_id;
        const deadline = kind === "E" ? now - DAY : kind === "L" ? now + 365 * DAY : null;
        // The deadline goes in before the job, so no one ever sees the job without it.
        if (deadline !== null) await redis.set(h.expirationKey(id), String(deadline));
        produced.set(id, { kind, q, deadline });
        await queue.enqueue(q, WRAPPER, args);
        produced.get(id).enqueuedAt = Date.now();
        if (i % BURST === BURST - 1) await h.sleep(PAUSE_MS);
      }
      producerDone = true;
    })();
    producer.catch(() => {});

    const sweeps = [];
    const sweeper = (async () => {
      for (let k = 0; k < 3; k++) {
        // Spread the sweeps over the producer's run: at 1/4, 2/4, 3/4.
        const mark = Math.floor((N * (k + 1)) / 4);
        await h.waitFor(() => produced.size >= mark || producerDone, { timeoutMs: 20000, what: `${mark} jobs produced` });
        const archive = path.join(archiveDir, `sweep-${k}.jsonl`);
        const startedAt = Date.now();
        const duringProducer = !producerDone;
        const env = copyEngine ? { RESQUE_EXPIRE_TEST_COPY_THRESHOLDS: "20:200" } : {};
        const { summary, run } = await h.sweep(bin, srv.url, ["--batch", "50", "--archive", archive], { env });
        sweeps.push({ summary, ms: run.ms, startedAt, duringProducer, archive });
      }
    })();

    await h.withTimeout(Promise.all([producer, sweeper]), 30000, "producer and sweeps");
    await stopWorkers();

    // Account for every job.
    const archived = new Map(); // id -> record
    const dupArchived = [];
    for (const s of sweeps) {
      if (!fs.existsSync(s.archive)) continue;
      for (const line of fs.readFileSync(s.archive, "utf8").split("\n")) {
        if (!line.trim()) continue;
        const rec = JSON.parse(line);
        assert.ok(rec.id, `archive record without an id: ${line}`);
        if (archived.has(rec.id)) dupArchived.push(rec.id);
        archived.set(rec.id, rec);
      }
    }
    const queued = new Map();
    const dupQueued = [];
    for (const q of QUEUES) {
      for (const j of await queue.queued(q, 0, -1)) {
        const id = h.idOf(j);
        if (queued.has(id)) dupQueued.push(id);
        queued.set(id, q);
      }
    }

    const stats = {
      produced: produced.size,
      performed: performed.size,
      archived: archived.size,
      queued: queued.size,
      sweeps: sweeps.map((s) => ({
        ms: s.ms,
        duringProducer: s.duringProducer,
        scanned: s.summary.scanned,
        removed: s.summary.removed,
        already_gone: s.summary.already_gone,
        changed: s.summary.changed,
        engines: (s.summary.queues || []).map((q) => `${q.queue}:${q.engine}`),
        problems: (s.summary.problems || []).map((p) => `${p.kind}: ${p.detail}`),
      })),
    };
    console.log(`# scenario 3${copyEngine ? " (copy engine)" : ""}: ${JSON.stringify(stats)}`);

    assert.deepEqual(garbage, [], "workers performed only jobs the producer made");
    assert.deepEqual(events.failures, [], "worker failures");
    assert.deepEqual(events.errors, [], "worker errors");
    assert.equal(await queue.failedCount(), 0, "failed list");
    assert.deepEqual(dupArchived, [], "ids archived twice");
    assert.deepEqual(dupQueued, [], "ids queued twice");
    const twice = [...performed].filter(([, n]) => n !== 1);
    assert.deepEqual(twice, [], "ids performed more than once");

    const unaccounted = [];
    const multiple = [];
    for (const id of produced.keys()) {
      const n = (performed.has(id) ? 1 : 0) + (archived.has(id) ? 1 : 0) + (queued.has(id) ? 1 : 0);
      if (n === 0) unaccounted.push(id);
      if (n > 1) multiple.push({ id, performed: performed.has(id), archived: archived.has(id), queued: queued.has(id) });
    }
    assert.deepEqual(unaccounted, [], "jobs neither performed, removed nor queued");
    assert.deepEqual(multiple, [], "jobs in more than one place");
    for (const id of [...archived.keys(), ...queued.keys()]) assert.ok(produced.has(id), `unknown id ${id}`);

    // Only expired jobs were removed, each with its own deadline and payload.
    const wrongly = [...archived.values()].filter((r) => produced.get(r.id).kind !== "E");
    assert.deepEqual(wrongly, [], "live or deadline-less jobs removed");
    for (const rec of archived.values()) {
      const p = produced.get(rec.id);
      assert.equal(rec.queue, p.q, `${rec.id} archived from its queue`);
      assert.equal(rec.deadline, String(p.deadline), `${rec.id} archived deadline`);
      assert.equal(h.idOf(JSON.parse(rec.payload)), rec.id, `${rec.id} archived payload`);
    }
    const removedTotal = sweeps.reduce((a, s) => a + s.summary.removed, 0);
    assert.equal(removedTotal, archived.size, "sweep summaries agree with the archive");

    // No skipped job: an expired job already in its queue before the last
    // sweep started, and still there at the end, sat in the list for the
    // whole of that sweep.
    const last = sweeps[sweeps.length - 1];
    const missed = [...queued.keys()].filter((id) => {
      const p = produced.get(id);
      return p.kind === "E" && p.enqueuedAt < last.startedAt;
    });
    assert.deepEqual(missed, [], "expired jobs the last sweep should have removed");

    // Deadline keys: deleted with the removed jobs, kept for the others.
    const removedKeys = await Promise.all([...archived.keys()].map((id) => redis.exists(h.expirationKey(id))));
    assert.equal(removedKeys.reduce((a, b) => a + b, 0), 0, "deadline keys of removed jobs deleted");
    const liveQueued = [...queued.keys()].filter((id) => produced.get(id).kind !== "M");
    const liveKeys = await Promise.all(liveQueued.map((id) => redis.exists(h.expirationKey(id))));
    assert.equal(liveKeys.reduce((a, b) => a + b, 0), liveQueued.length, "deadline keys of queued jobs kept");

    // The scenario really was concurrent and really exercised both sides.
    assert.ok(sweeps.filter((s) => s.duringProducer).length >= 2, `at least two sweeps ran while the producer did: ${JSON.stringify(stats.sweeps)}`);
    assert.ok(archived.size > 0, "sweeps removed something");
    assert.ok(performed.size > 0, "workers performed something");
    if (copyEngine) {
      // The copy engine really did the removal: at least one queue of a
      // sweep that ran while the producer did was swapped.
      const copied = sweeps.filter((s) => s.duringProducer && (s.summary.queues || []).some((q) => q.engine === "copy"));
      assert.ok(copied.length >= 1, `a sweep during the producer used the copy engine: ${JSON.stringify(stats.sweeps)}`);
    }
  }
});
