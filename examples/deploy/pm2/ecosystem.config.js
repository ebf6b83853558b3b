// PM2: Cineqo's web app and its jobrunner workers on one host.
//
//   cp ../worker.env.example worker.env     # then fill it in
//   pm2 start ecosystem.config.js
//   pm2 scale worker 4                      # four worker processes
//   pm2 logs worker
//
// Paths come from the environment of `pm2 start` (defaults in brackets):
//   CINEQO_APP_DIR     the web app's checkout, run with `npm start`  [/srv/cineqo/web]
//   CINEQO_VENV        the virtualenv with jobrunner and jobrunner-cineqo  [/srv/cineqo/venv]
//   CINEQO_LOG_DIR     where PM2 writes the log files  [/var/log/cineqo]
//   WORKER_ENV_FILE    the worker's settings, KEY=value lines  [worker.env beside this file]
//   WORKER_INSTANCES   worker processes to start  [2]
// See docs/deployment.md.

const fs = require("fs");
const path = require("path");

const APP_DIR = process.env.CINEQO_APP_DIR || "/srv/cineqo/web";
const VENV = process.env.CINEQO_VENV || "/srv/cineqo/venv";
const LOG_DIR = process.env.CINEQO_LOG_DIR || "/var/log/cineqo";
const ENV_FILE = process.env.WORKER_ENV_FILE || path.join(__dirname, "worker.env");

// KEY=value lines, as systemd's EnvironmentFile= and Compose's env_file: read them.
function readEnvFile(file) {
  if (!fs.existsSync(file)) {
    // A worker without DATABASE_URL would quietly use a local SQLite file: refuse instead.
    throw new Error(`${file} is missing: copy worker.env.example there and fill it in`);
  }
  const env = {};
  for (const raw of fs.readFileSync(file, "utf8").split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 1) throw new Error(`${file}: not KEY=value: ${line}`);
    env[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return env;
}

// Seconds in a jobrunner duration: 30, 30s, 2m, 1h.
function seconds(text) {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(String(text).trim());
  if (!match) throw new Error(`JOBRUNNER_SHUTDOWN_TIMEOUT: not a duration: ${text}`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 }[match[2] || "s"];
  return Number(match[1]) * unit;
}

const workerEnv = readEnvFile(ENV_FILE);
const drain = seconds(workerEnv.JOBRUNNER_SHUTDOWN_TIMEOUT || "30");

module.exports = {
  apps: [
    {
      name: "web",
      script: "npm",
      args: ["start"],
      cwd: APP_DIR,
      exec_mode: "fork",
      env: { NODE_ENV: "production", PORT: "3000", DATABASE_URL: workerEnv.DATABASE_URL },
      out_file: path.join(LOG_DIR, "web.out.log"),
      error_file: path.join(LOG_DIR, "web.err.log"),
      time: true,
    },
    {
      name: "worker",
      script: path.join(VENV, "bin", "jobrunner"),
      args: ["run", "--plugin", "cineqo"],
      interpreter: "none", // a program, not a Node script
      exec_mode: "fork", // PM2's cluster mode is for Node only; instances still work
      instances: Number(process.env.WORKER_INSTANCES || 2),
      env: workerEnv,
      // PM2 stops with SIGINT, which jobrunner treats like SIGTERM: stop claiming, let running
      // jobs finish for JOBRUNNER_SHUTDOWN_TIMEOUT, hand the rest back. Only then SIGKILL.
      kill_timeout: (drain + 15) * 1000,
      // jobrunner's own limit (JOBRUNNER_MAX_MEMORY, exit code 75 after a drain) comes first;
      // this is the backstop for a worker that cannot get there.
      max_memory_restart: "1500M",
      autorestart: true,
      exp_backoff_restart_delay: 1000,
      // Exit code 2 is bad settings or a missing plugin: restarting cannot fix it.
      stop_exit_codes: [2],
      out_file: path.join(LOG_DIR, "worker.out.log"),
      error_file: path.join(LOG_DIR, "worker.err.log"),
      merge_logs: true, // one file for all instances
      time: false, // jobrunner's lines carry their own time
    },
  ],
};
