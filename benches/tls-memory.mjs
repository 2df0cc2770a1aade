// Server memory per WebSocket over Herald's own TLS ([server.tls]) against plain ws://: opens
// N Pusher-protocol sockets (each subscribed to one of 50 public channels) against a running
// Herald and reads the server's RSS from /proc before and after.
//
// Usage (after `cd tests/compat && npm ci`; for wss://, Herald started with [server.tls] and
// its certificate trusted, e.g. NODE_EXTRA_CA_CERTS=cert.pem):
//   node benches/tls-memory.mjs PORT HERALD_PID [N=2000] [wss|ws] [app-key]
// Start a fresh Herald for each measurement: freed memory is reused by the next one.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'compat', 'package.json'));
const WebSocket = require('ws');
const [port, pid, n = '2000', scheme = 'wss', key = 'app-key'] = process.argv.slice(2);
const N = Number(n);
const rss = () => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const before = rss();
const sockets = [];
let subscribed = 0;
for (let i = 0; i < N; i += 1) {
  const ws = new WebSocket(`${scheme}://127.0.0.1:${port}/app/${key}?protocol=7&client=js&version=8.4.0`);
  ws.on('message', (m) => {
    const e = JSON.parse(m);
    if (e.event === 'pusher:connection_established') {
      ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: `c${i % 50}` } }));
    } else if (e.event === 'pusher_internal:subscription_succeeded') {
      subscribed += 1;
    }
  });
  ws.on('error', () => {});
  sockets.push(ws);
  if (i % 100 === 99) await sleep(50);
}
const t0 = Date.now();
while (subscribed < N && Date.now() - t0 < 60000) await sleep(100);
await sleep(2000);
const after = rss();
console.log(
  `${scheme}: ${subscribed}/${N} sockets, RSS ${before} → ${after} KiB, ` +
    `${Math.round(((after - before) * 1024) / subscribed)} bytes per socket`,
);
for (const ws of sockets) ws.terminate();
