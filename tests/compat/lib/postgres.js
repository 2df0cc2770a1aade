// A PostgreSQL cluster of the test's own: `initdb` into a temp dir and `pg_ctl` on a free
// 127.0.0.1 port (Debian's binaries in /usr/lib/postgresql/<version>/bin; as root, run as the
// `postgres` user, since PostgreSQL refuses root). Stopped through its data directory's PID
// file (pg_ctl stop), never by name, and removed.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

function binDir() {
  const versions = fs
    .readdirSync('/usr/lib/postgresql')
    .map((v) => path.join('/usr/lib/postgresql', v, 'bin'))
    .filter((d) => fs.existsSync(path.join(d, 'pg_ctl')))
    .sort();
  if (!versions.length) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  return versions[versions.length - 1];
}

/** Starts one; resolves to { url, stop() }. */
export async function startPostgres() {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-pg-'));
  const root = process.getuid?.() === 0;
  if (root) execFileSync('chown', ['postgres:', dir]);
  const bin = binDir();
  const run = (tool, args) =>
    root
      ? execFileSync('runuser', ['-u', 'postgres', '--', path.join(bin, tool), ...args], { stdio: 'pipe' })
      : execFileSync(path.join(bin, tool), args, { stdio: 'pipe' });
  const data = path.join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'herald', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  run('pg_ctl', ['-D', data, '-o', opts, '-l', path.join(dir, 'log'), '-w', '-t', '30', 'start']);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  process.on('exit', () => {
    try {
      stop();
    } catch {
      // already gone
    }
  });
  return { url: `postgres://herald@127.0.0.1:${port}/postgres`, stop };
}
