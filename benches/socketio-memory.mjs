// Server memory per socket.io socket: opens N socket.io clients (each subscribed to one of
// 50 public channels through laravel-echo-server's `subscribe`) against a running Herald and
// reads the server's RSS from /proc before and after.
//
// Usage (after `cd tests/compat && npm ci`, with Herald started with [socketio] enabled):
//   node benches/socketio-memory.mjs PORT HERALD_PID [N=2000] [v4|v2] [websocket|polling]
// Start a fresh Herald for each measurement: freed memory is reused by the next one.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'tests', 'compat', 'package.json'));
const [port, pid, n = '2000', version = 'v4', transport = 'websocket'] = process.argv.slice(2);
const io = require(version === 'v2' ? 'socket.io-client-v2' : 'socket.io-client');
const N = Number(n);
const rss = () => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const before = rss();
const sockets = [];
let connected = 0;
for (let i = 0; i < N; i += 1) {
  const s = io(`http://127.0.0.1:${port}`, { transports: [transport], reconnection: false, forceNew: true });
  s.on('connect', () => {
    connected += 1;
    s.emit('subscribe', { channel: `c${i % 50}`, auth: { headers: {} } });
  });
  sockets.push(s);
  if (i % 100 === 99) await sleep(50);
}
const t0 = Date.now();
while (connected < N && Date.now() - t0 < 60000) await sleep(100);
await sleep(2000);
const after = rss();
console.log(
  `${version} ${transport}: ${connected}/${N} sockets, RSS ${before} → ${after} KiB, ` +
    `${Math.round(((after - before) * 1024) / connected)} bytes per socket`,
);
for (const s of sockets) s.close();
process.exit(0);
