// Starts and stops a real `herald` binary for the compatibility suite.
//
// Each test file starts its own Herald on 127.0.0.1 with free ports (server.port = 0,
// metrics.port = 0), reads the ports from the JSON "herald listening" log line, waits for
// `GET /ready` = 200, and stops it by PID (SIGTERM, then SIGKILL after a timeout). Every
// started process is also killed by PID when the test process exits, whatever happened.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const HERALD_BIN = process.env.HERALD_BIN
  ? path.resolve(process.env.HERALD_BIN)
  : path.join(REPO_ROOT, 'target', 'debug', 'herald');

/** The apps every test Herald serves (see config/herald.toml for the keys). */
export const APPS = {
  // The app the Laravel/Echo tests use: client events on, Pusher's default limits.
  main: { id: 'compat-app', key: 'compat-key', secret: 'compat-secret', client_events: true },
  // Client events off (Pusher's default for new apps).
  noclient: { id: 'noclient-app', key: 'noclient-key', secret: 'noclient-secret', client_events: false },
  // Disabled: sockets refused with 4003, REST with 403.
  disabled: { id: 'disabled-app', key: 'disabled-key', secret: 'disabled-secret', enabled: false },
  // At most two simultaneous connections: the third is refused with 4004.
  quota: { id: 'quota-app', key: 'quota-key', secret: 'quota-secret', max_connections: 2 },
  // Two client events per second per connection.
  ratelimit: {
    id: 'ratelimit-app',
    key: 'ratelimit-key',
    secret: 'ratelimit-secret',
    client_events: true,
    limits: { client_events_per_second: 2 },
  },
  // `pusher_internal:subscription_count` on non-presence channels.
  counts: { id: 'counts-app', key: 'counts-key', secret: 'counts-secret', subscription_count: true },
};

/** The app secret a misconfigured backend would sign with (bad signatures). */
export const WRONG_SECRET = 'not-the-app-secret';

function tomlValue(v) {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (v && typeof v === 'object') {
    return `{ ${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)} = ${tomlValue(x)}`)
      .join(', ')} }`;
  }
  throw new Error(`cannot render ${v} as TOML`);
}

function tomlTable(header, obj) {
  const lines = [header];
  for (const [k, v] of Object.entries(obj)) lines.push(`${k} = ${tomlValue(v)}`);
  return lines.join('\n');
}

/**
 * Renders a herald.toml. `server`, `websocket`, `webhooks`, `adapter`, `ingest`, `socketio` and
 * `appStore` ([app_store]) add keys to those tables.
 * `apps` is a list of app objects as in APPS, each optionally with
 * `limits` (an [apps.limits] table) and `webhooks` (a list of [[apps.webhooks]] tables).
 */
export function renderConfig({
  port = 0,
  server = {},
  websocket = {},
  webhooks = {},
  adapter = {},
  ingest = {},
  socketio = {},
  appStore = {},
  apps = Object.values(APPS),
} = {}) {
  const parts = [
    tomlTable('[server]', { host: '127.0.0.1', port, workers: 2, ...server }),
    tomlTable('[metrics]', { host: '127.0.0.1', port: 0 }),
    tomlTable('[log]', { format: 'json', level: 'info' }),
    tomlTable('[shutdown]', { drain_secs: 0, ready_grace_secs: 0 }),
    tomlTable('[websocket]', websocket),
    tomlTable('[webhooks]', webhooks),
    tomlTable('[adapter]', adapter),
    tomlTable('[ingest]', ingest),
    tomlTable('[socketio]', socketio),
    tomlTable('[app_store]', appStore),
  ];
  for (const app of apps) {
    const { limits, webhooks: hooks, ...keys } = app;
    parts.push(tomlTable('[[apps]]', keys));
    if (limits) parts.push(tomlTable('[apps.limits]', limits));
    for (const hook of hooks ?? []) parts.push(tomlTable('[[apps.webhooks]]', hook));
  }
  return `${parts.join('\n\n')}\n`;
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * Starts Herald with the given config options (see renderConfig). Resolves to
 * { addr, host, port, metricsAddr, logs, stop(), waitForExit() } once `/ready` answers 200.
 */
export async function startHerald(options = {}, { timeoutMs = 20000 } = {}) {
  if (!fs.existsSync(HERALD_BIN)) {
    throw new Error(`${HERALD_BIN} is missing: run \`cargo build --bin herald\` (tests/compat/run.sh does)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-'));
  const configPath = path.join(dir, 'herald.toml');
  fs.writeFileSync(configPath, renderConfig(options));

  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('HERALD_')) delete env[k];
  const child = spawn(HERALD_BIN, ['--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env });
  running.add(child);
  const logs = [];
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      exited = { code, signal };
      resolve(exited);
    });
  });

  let onListening;
  const listening = new Promise((resolve) => {
    onListening = resolve;
  });
  const onLine = (line) => {
    logs.push(line);
    if (!line.startsWith('{')) return;
    try {
      const rec = JSON.parse(line);
      if (rec.fields?.message === 'herald listening') onListening(rec.fields);
    } catch {
      // not a log record
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
  }

  const stop = async () => {
    if (exited) return exited;
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 10000);
    const res = await exitPromise;
    clearTimeout(timer);
    fs.rmSync(dir, { recursive: true, force: true });
    return res;
  };

  const deadline = Date.now() + timeoutMs;
  const fail = async (why) => {
    await stop();
    throw new Error(`herald did not start: ${why}\n${logs.slice(-30).join('\n')}`);
  };
  const fields = await Promise.race([
    listening,
    exitPromise.then((e) => ({ exitedEarly: e })),
    new Promise((resolve) => setTimeout(() => resolve({ timedOut: true }), timeoutMs).unref()),
  ]);
  if (fields.exitedEarly) await fail(`exited with ${JSON.stringify(fields.exitedEarly)}`);
  if (fields.timedOut) await fail('no "herald listening" log line');

  const addr = fields.addr;
  const metricsAddr = fields.metrics_addr;
  // Readiness: /ready answers 200 once Herald serves.
  for (;;) {
    try {
      const res = await fetch(`http://${metricsAddr}/ready`);
      if (res.status === 200) break;
    } catch {
      // not accepting yet
    }
    if (exited) await fail(`exited with ${JSON.stringify(exited)}`);
    if (Date.now() > deadline) await fail('/ready never answered 200');
    await new Promise((r) => setTimeout(r, 20));
  }
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return {
    addr,
    host,
    port,
    metricsAddr,
    logs,
    pid: child.pid,
    stop,
    waitForExit: () => exitPromise,
    get exited() {
      return exited;
    },
  };
}
