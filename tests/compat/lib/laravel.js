// The Laravel side of the `redis` broadcaster path, with Laravel's own code (Debian's
// Illuminate 8 packages, tests/laravel/): RedisBroadcaster publishing into a Redis, and a
// Laravel-like app answering POST /broadcasting/auth through RedisBroadcaster::auth, served by
// `php -S`. Everything started here is stopped by its PID.

import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './herald.js';
import { freePort } from './ports.js';

const LARAVEL = path.join(REPO_ROOT, 'tests', 'laravel');

async function accepting(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => resolve(false));
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
  });
}

/**
 * Starts the app's /broadcasting/auth (tests/laravel/auth.php) on a free port. Resolves to
 * { url, requests() (each call Herald made: channel, socket_id, headers), stop() }.
 */
export async function startLaravelAuth() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-laravel-'));
  const log = path.join(dir, 'requests.jsonl');
  fs.writeFileSync(log, '');
  // Its own process group: with PHP_CLI_SERVER_WORKERS, php -S forks workers, which must
  // stop with it (killing the group by its id, the server's PID).
  const child = spawn('php', ['-S', `127.0.0.1:${port}`, path.join(LARAVEL, 'auth.php')], {
    stdio: 'ignore',
    detached: true,
    env: { ...process.env, AUTH_LOG: log, PHP_CLI_SERVER_WORKERS: '8' },
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const kill = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
  process.on('exit', kill);
  const deadline = Date.now() + 10000;
  while (!(await accepting(port))) {
    if (Date.now() > deadline) throw new Error('php -S did not start (apt-get install php-cli)');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    requests() {
      return fs
        .readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l));
    },
    async stop() {
      kill();
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Broadcasts one event as a Laravel app on the `redis` driver does (RedisBroadcaster through
 * predis, key prefix `laravel_database_`), to the Redis at `redisUrl`. `socket` is the
 * X-Socket-ID of the request that fired it (toOthers()), or null.
 */
export function laravelBroadcast(redisUrl, event, payload, channels, socket = null) {
  const port = new URL(redisUrl).port;
  return new Promise((resolve, reject) => {
    const child = execFile(
      'php',
      [path.join(LARAVEL, 'broadcast.php'), port, event, socket ?? '-', ...channels],
      (err, stdout, stderr) => (err ? reject(new Error(`broadcast.php failed: ${stderr || err}`)) : resolve(stdout)),
    );
    child.stdin.end(JSON.stringify(payload));
  });
}
