// TLS in Herald's own process ([server.tls]): pusher-js with forceTLS/wssPort and the
// `pusher` Node SDK with useTLS, against certificates tests/compat/run.sh makes with rcgen
// (examples/tls-cert.rs) and that Node trusts through NODE_EXTRA_CA_CERTS. The certificate
// is renewed mid-test: new connections get the new one, the open socket keeps delivering.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { startHerald, APPS } from '../lib/herald.js';
import { sdkFor } from '../lib/backend.js';
import { newPusher, disconnectAll, once, uniq } from '../lib/clients.js';
import { newSioEcho, disconnectSio } from '../lib/sio.js';

const certs = process.env.COMPAT_TLS_DIR;
const cleanups = [];
after(async () => {
  disconnectSio();
  disconnectAll();
  for (const c of cleanups.reverse()) await c();
});

/** Puts certificate `name` (a or b) where Herald reads it, the way a secret update does. */
function install(dir, name) {
  for (const ext of ['key', 'crt']) {
    fs.copyFileSync(path.join(certs, `${name}.${ext}`), path.join(dir, `tls.${ext}.new`));
    fs.renameSync(path.join(dir, `tls.${ext}.new`), path.join(dir, `tls.${ext}`));
  }
}

function fingerprint(name) {
  return new crypto.X509Certificate(fs.readFileSync(path.join(certs, `${name}.crt`))).fingerprint256;
}

/** The fingerprint of the certificate a fresh TLS connection to Herald is shown. */
function served(herald) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: herald.host, port: herald.port, ALPNProtocols: ['http/1.1'] }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ fingerprint: cert.fingerprint256, alpn: socket.alpnProtocol });
      socket.end();
    });
    socket.on('error', reject);
    socket.setTimeout(10000, () => {
      socket.destroy();
      reject(new Error('TLS handshake timed out'));
    });
  });
}

async function metric(herald, series) {
  const text = await (await fetch(`http://${herald.metricsAddr}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Waits (bounded) until `series` is above `floor`: the reload runs on Herald's own clock. */
async function waitAbove(herald, series, floor, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await metric(herald, series);
    if (v > floor) return v;
    if (Date.now() > deadline) throw new Error(`${series} stayed at ${v}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('pusher-js (forceTLS, wssPort) and the Node SDK (useTLS) over TLS, through a certificate renewal', async () => {
  assert.ok(certs, 'COMPAT_TLS_DIR is set by tests/compat/run.sh');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-tls-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  install(dir, 'a');
  const herald = await startHerald({
    server: {
      tls: {
        cert_file: path.join(dir, 'tls.crt'),
        key_file: path.join(dir, 'tls.key'),
        reload_interval_secs: 1,
      },
    },
  });
  cleanups.push(() => herald.stop());
  assert.deepEqual(await served(herald), { fingerprint: fingerprint('a'), alpn: 'http/1.1' });

  const app = APPS.main;
  const { pusher, probe } = newPusher(herald, app, { forceTLS: true, enabledTransports: ['ws'] });
  await probe.connected();
  const channel = uniq('tls-');
  pusher.subscribe(channel);
  await probe.waitFrame('pusher_internal:subscription_succeeded', channel);
  const sdk = sdkFor(herald, app, { useTLS: true });
  const first = await sdk.trigger(channel, 'before-renewal', { n: 1 });
  assert.equal(first.status, 200);
  assert.deepEqual((await probe.waitFrame('before-renewal', channel)).data, { n: 1 });

  // The renewal: Herald notices the new files within its reload interval.
  const loaded = 'herald_tls_certificate_reloads_total{outcome="loaded"}';
  const before = await metric(herald, loaded);
  install(dir, 'b');
  await waitAbove(herald, loaded, before);
  assert.equal((await served(herald)).fingerprint, fingerprint('b'), 'new connections get the new certificate');

  // A new SDK client (a new connection, so the new certificate) reaches the socket opened
  // before the renewal, which never dropped.
  const renewed = sdkFor(herald, app, { useTLS: true });
  assert.equal((await renewed.trigger(channel, 'after-renewal', { n: 2 })).status, 200);
  assert.deepEqual((await probe.waitFrame('after-renewal', channel)).data, { n: 2 });
  assert.deepEqual(
    probe.states.items.map((s) => s.current).filter((s) => s !== 'connecting'),
    ['connected'],
    'the socket opened before the renewal stayed connected',
  );
  assert.deepEqual(probe.errors.items, []);

  // A client that connects now is served the new certificate and gets the same events.
  const late = newPusher(herald, app, { forceTLS: true, enabledTransports: ['ws'] });
  await late.probe.connected();
  late.pusher.subscribe(channel);
  await late.probe.waitFrame('pusher_internal:subscription_succeeded', channel);
  assert.equal((await renewed.trigger(channel, 'both', { n: 3 })).status, 200);
  await Promise.all([probe.waitFrame('both', channel), late.probe.waitFrame('both', channel)]);

  // Plain ws:// on the TLS port is not a TLS handshake: refused and counted, nobody else hurt.
  const failed = 'herald_tls_handshakes_total{outcome="failed"}';
  const failedBefore = await metric(herald, failed);
  const plain = newPusher(herald, app, { forceTLS: false, enabledTransports: ['ws'] });
  await waitAbove(herald, failed, failedBefore);
  plain.pusher.disconnect();
  assert.equal((await renewed.trigger(channel, 'still-fine', {})).status, 200);
  await probe.waitFrame('still-fine', channel);
});

test("Echo's socket.io connector over the same TLS port: polling, then the wss:// upgrade", async () => {
  assert.ok(certs, 'COMPAT_TLS_DIR is set by tests/compat/run.sh');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-tls-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  install(dir, 'a');
  const app = APPS.main;
  const herald = await startHerald({
    server: { tls: { cert_file: path.join(dir, 'tls.crt'), key_file: path.join(dir, 'tls.key') } },
    socketio: { enabled: true, app_id: app.id },
  });
  cleanups.push(() => herald.stop());
  const { echo, probe, socket } = newSioEcho(herald, { host: `https://${herald.host}:${herald.port}` });
  await probe.connected();
  // The upgrade may be done already; otherwise wait for it (checked and registered in one tick).
  const engine = socket.io.engine;
  const upgraded =
    engine.transport.name === 'websocket'
      ? Promise.resolve()
      : once((cb) => engine.once('upgrade', cb), 10000, 'the wss:// upgrade');
  const channel = uniq('tls-sio-');
  echo.channel(channel);
  await upgraded;
  assert.equal(socket.io.engine.transport.name, 'websocket');
  // The subscription is in once the cluster counts it (REST, as a backend sees it).
  const sdk = sdkFor(herald, app, { useTLS: true });
  const deadline = Date.now() + 10000;
  for (;;) {
    const res = await sdk.get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } });
    if ((await res.json()).subscription_count === 1) break;
    if (Date.now() > deadline) throw new Error('the socket.io subscription never showed');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal((await sdk.trigger(channel, 'over-tls', { ok: true })).status, 200);
  assert.deepEqual(await probe.wait('over-tls', channel), { ok: true });
});
