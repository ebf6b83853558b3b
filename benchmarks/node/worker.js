#!/usr/bin/env node
// graphile-worker side of the benchmark worker protocol (see benchmarks/_workerproc.py).
//
//   node worker.js --dsn DSN --migrate
//   node worker.js --dsn DSN --handler noop|sleep|latency --expect N [--concurrency C]
//
// Settings follow graphile-worker's own perfTest preset: concurrentJobs 24, a pool of
// concurrency + 1, localQueue size 500, completeJobBatchDelay/failJobBatchDelay 0
// (completion batching on). The perfTest's refetchDelay is left out: it holds back fetches
// after an empty one and so costs latency on an idle worker.
"use strict";

const { performance } = require("node:perf_hooks");
const { run, runMigrations, Logger } = require("graphile-worker");

const DRAIN_CONCURRENCY = 24;
const MAX_POOL = 50;
const SLEEP_MS = 10;

function parseArgs(argv) {
  const args = { handler: "noop", expect: 0, concurrency: 0, migrate: false };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    if (key === "--migrate") args.migrate = true;
    else if (key === "--dsn") args.dsn = argv[++i];
    else if (key === "--handler") args.handler = argv[++i];
    else if (key === "--expect") args.expect = Number(argv[++i]);
    else if (key === "--concurrency") args.concurrency = Number(argv[++i]);
    else throw new Error(`unknown argument ${key}`);
  }
  if (!args.dsn) throw new Error("--dsn is required");
  return args;
}

function emit(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
}

// Warnings and errors only, on stderr: per-job log lines would cost throughput.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") process.stderr.write(`${level}: ${message}\n`);
});

function preset(dsn, concurrency) {
  return {
    worker: {
      connectionString: dsn,
      concurrentJobs: concurrency,
      maxPoolSize: Math.min(concurrency + 1, MAX_POOL),
      localQueue: { size: 500 },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
      logger,
    },
  };
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const concurrency = args.concurrency || DRAIN_CONCURRENCY;
  if (args.migrate) {
    await runMigrations({ preset: preset(args.dsn, 1) });
    return;
  }
  let handled = 0;
  let runner = null;
  let stopping = null;
  const stop = () => {
    if (!stopping) stopping = runner.stop();
    return stopping;
  };
  const count = () => {
    handled += 1;
    if (handled === args.expect) stop();
  };
  const handlers = {
    noop: async () => count(),
    sleep: async () => {
      await new Promise((resolve) => setTimeout(resolve, SLEEP_MS));
      count();
    },
    latency: async (payload) => {
      const now = performance.timeOrigin + performance.now();
      emit("job", { lat_ms: now - payload.t * 1000 });
      count();
    },
  };
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  runner = await run({
    preset: preset(args.dsn, concurrency),
    noHandleSignals: true,
    taskList: { bench: handlers[args.handler] },
  });
  emit("ready");
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  await runner.promise;
  const cpu = process.cpuUsage(cpuStarted);
  emit("done", {
    handled,
    elapsed: (performance.now() - started) / 1000,
    cpu: (cpu.user + cpu.system) / 1e6,
  });
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  },
);
