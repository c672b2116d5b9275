"use strict";
// Shared plumbing for the interop suite: a throwaway redis-server on
// loopback, the resque-expire binary, node-resque connections, ActiveJob
// shaped payloads, and bounded waiting. Nothing here talks to anything but
// 127.0.0.1.

const { spawn } = require("node:child_process");
const crypto = require("node:crypto");
const fs = require("node:fs");
const net = require("node:net");
const os = require("node:os");
const path = require("node:path");
const Redis = require("ioredis");

const NS = "resque";
const WRAPPER = "ActiveJob::QueueAdapters::ResqueAdapter::JobWrapper";

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const nowSeconds = () => Math.floor(Date.now() / 1000);

// waitFor polls fn until it returns a truthy value and returns that value;
// it throws (with describe()'s text, when given) once timeoutMs has passed.
async function waitFor(fn, { timeoutMs = 5000, intervalMs = 20, what = "condition", describe } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= deadline) {
      const extra = describe ? `: ${await describe()}` : "";
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${extra}`);
    }
    await sleep(intervalMs);
  }
}

// settlesWithin resolves to true once p settles, or to false after ms;
// unlike racing against sleep(), it leaves no timer behind.
function settlesWithin(p, ms) {
  let timer;
  return Promise.race([
    Promise.resolve(p).then(
      () => true,
      () => true,
    ),
    new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// withTimeout rejects if p has not settled within ms.
function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------- binary

// resqueExpireBin returns the binary named by RESQUE_EXPIRE_BIN, or throws
// an error that says how to set it.
function resqueExpireBin() {
  const bin = process.env.RESQUE_EXPIRE_BIN;
  if (!bin) {
    throw new Error(
      "RESQUE_EXPIRE_BIN is not set. Build the binary and point the suite at it, e.g.\n" +
        "  cd /path/to/resque-expire && go build -o bin/resque-expire .\n" +
        "  cd test/interop && npm ci && RESQUE_EXPIRE_BIN=$PWD/../../bin/resque-expire npm test",
    );
  }
  const abs = path.resolve(bin);
  try {
    fs.accessSync(abs, fs.constants.X_OK);
  } catch (e) {
    throw new Error(`RESQUE_EXPIRE_BIN=${bin} is not an executable file (${e.code || e.message})`);
  }
  return abs;
}

// childEnv is this process's environment without the variables that would
// change how resque-expire behaves (REDIS_URL, RESQUE_*), so the suite's
// flags alone decide.
function childEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("REDIS_") || k.startsWith("RESQUE_")) continue;
    env[k] = v;
  }
  return env;
}

// runResqueExpire runs the binary with args and resolves to
// {code, signal, stdout, stderr, ms}; it kills the process after timeoutMs.
// env adds variables after the clean environment (a test hook such as
// RESQUE_EXPIRE_TEST_COPY_THRESHOLDS).
function runResqueExpire(bin, args, { timeoutMs = 30000, env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(bin, args, { env: { ...childEnv(), ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (b) => out.push(b));
    child.stderr.on("data", (b) => err.push(b));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const res = {
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ms: Date.now() - started,
      };
      if (timedOut) {
        reject(new Error(`resque-expire ${args.join(" ")} killed after ${timeoutMs}ms\nstderr:\n${res.stderr}`));
        return;
      }
      resolve(res);
    });
  });
}

// sweep runs `resque-expire sweep --yes --format json` plus extra flags
// against url, insists on exit code 0 and returns {summary, run}.
async function sweep(bin, url, extra = [], opts = {}) {
  const args = ["sweep", "--yes", "--redis", url, "--format", "json", "--log-format", "json", "--no-progress", ...extra];
  const run = await runResqueExpire(bin, args, opts);
  if (run.code !== 0) {
    throw new Error(
      `resque-expire ${args.join(" ")} exited with ${run.code}${run.signal ? " (" + run.signal + ")" : ""}\n` +
        `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`,
    );
  }
  let summary;
  try {
    summary = JSON.parse(run.stdout);
  } catch (e) {
    throw new Error(`resque-expire ${args.join(" ")}: stdout is not one JSON document (${e.message}):\n${run.stdout}`);
  }
  return { summary, run };
}

// ---------------------------------------------------------------- redis

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// pingOnce opens a raw TCP connection and checks that the server answers PING.
function pingOnce(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on("error", () => done(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\r\n")) done(buf.startsWith("+PONG"));
    });
  });
}

// startRedis starts `redis-server` on a free 127.0.0.1 port in a fresh temp
// dir, with persistence off, and resolves to {port, url, dir, stop()}.
async function startRedis({ bin = process.env.REDIS_SERVER || "redis-server" } = {}) {
  let lastErr;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "resque-expire-interop-"));
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir];
    let child;
    try {
      child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    let log = "";
    const keep = (d) => {
      log = (log + d.toString()).slice(-8192);
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let exited = null;
    const exitP = new Promise((resolve) => child.on("exit", (code, sig) => resolve((exited = { code, sig }))));
    const spawnErr = new Promise((resolve) => child.on("error", (e) => resolve(e)));
    // Never leave the server behind if this process dies without after().
    const onExit = () => {
      try {
        child.kill("SIGKILL");
      } catch (_) {}
    };
    process.on("exit", onExit);

    const ready = await Promise.race([
      (async () => {
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline && !exited) {
          if (await pingOnce(port)) return true;
          await sleep(25);
        }
        return false;
      })(),
      spawnErr.then((e) => {
        throw new Error(`cannot start ${bin}: ${e.message} (is redis-server installed and on PATH?)`);
      }),
    ]).catch((e) => {
      process.removeListener("exit", onExit);
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    });
    if (ready) {
      const stop = async () => {
        if (!exited) {
          child.kill("SIGTERM");
          if (!(await settlesWithin(exitP, 5000))) {
            child.kill("SIGKILL");
            await settlesWithin(exitP, 2000);
          }
        }
        process.removeListener("exit", onExit);
        fs.rmSync(dir, { recursive: true, force: true });
      };
      return { port, url: `redis://127.0.0.1:${port}/0`, dir, stop, log: () => log };
    }
    lastErr = new Error(`redis-server on port ${port} did not come up (attempt ${attempt}): ${exited ? JSON.stringify(exited) : "no PONG"}\n${log}`);
    onExit();
    await settlesWithin(exitP, 2000);
    process.removeListener("exit", onExit);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  throw lastErr;
}

// redisClient is a plain ioredis client for the suite's own reads and
// writes (deadline keys, raw list contents).
function redisClient(port) {
  return new Redis({ host: "127.0.0.1", port, db: 0, lazyConnect: false, maxRetriesPerRequest: 2 });
}

// connection is a fresh node-resque connection description (node-resque
// mutates the object it is given, so never share one).
function connection(port) {
  return { pkg: "ioredis", host: "127.0.0.1", port, database: 0, namespace: NS, options: { maxRetriesPerRequest: 2 } };
}

// ---------------------------------------------------------------- jobs

// activeJobArgs is the single argument ActiveJob's Resque adapter enqueues:
// job.serialize, with the job's id at args[0].job_id.
function activeJobArgs(queue, { id = crypto.randomUUID(), jobClass = "MyJob", arguments: a = [], scheduledAt = null } = {}) {
  return [
    {
      job_class: jobClass,
      job_id: id,
      provider_job_id: null,
      queue_name: queue,
      priority: null,
      arguments: a,
      executions: 0,
      exception_executions: {},
      locale: "en",
      timezone: "UTC",
      enqueued_at: new Date().toISOString(),
      scheduled_at: scheduledAt,
    },
  ];
}

const expirationKey = (id) => `${NS}:job:${id}:expiration`;

// idOf is the job id of a node-resque job object (parsed payload), or null.
function idOf(job) {
  const a = job && Array.isArray(job.args) ? job.args[0] : null;
  return a && typeof a === "object" && typeof a.job_id === "string" ? a.job_id : null;
}

// firstDifference describes where two strings first differ, for messages
// about byte-level mismatches.
function firstDifference(a, b) {
  const ba = Buffer.from(a, "utf8");
  const bb = Buffer.from(b, "utf8");
  let i = 0;
  while (i < ba.length && i < bb.length && ba[i] === bb[i]) i++;
  if (i === ba.length && i === bb.length) return null;
  const ctx = (buf) => JSON.stringify(buf.subarray(Math.max(0, i - 20), i + 30).toString("utf8"));
  const hex = (buf) => buf.subarray(i, i + 12).toString("hex");
  return `first difference at byte ${i} (lengths ${ba.length} vs ${bb.length}): ${ctx(ba)} [${hex(ba)}] vs ${ctx(bb)} [${hex(bb)}]`;
}

module.exports = {
  NS,
  WRAPPER,
  sleep,
  nowSeconds,
  waitFor,
  withTimeout,
  resqueExpireBin,
  runResqueExpire,
  sweep,
  startRedis,
  redisClient,
  connection,
  activeJobArgs,
  expirationKey,
  idOf,
  firstDifference,
};
