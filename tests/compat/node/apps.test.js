// Hosted operation with real clients: apps in PostgreSQL (a cluster of the test's own),
// created, re-keyed and disabled through Herald's admin API while pusher-js is connected and
// the pusher Node SDK triggers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald } from '../lib/herald.js';
import { startPostgres } from '../lib/postgres.js';
import { sdkFor } from '../lib/backend.js';
import { newPusher, disconnectAll, Log } from '../lib/clients.js';

const TOKEN = 'compat-admin-token-0123456789';
let pg;
let herald;

before(async () => {
  pg = await startPostgres();
  herald = await startHerald({
    // A [[apps]] table is still rendered; with the postgres store it is not served.
    appStore: { driver: 'postgres', database_url: pg.url, admin_token: TOKEN },
  });
  // The change listener is connected (changes made before it would be missed).
  const deadline = Date.now() + 10000;
  for (;;) {
    const text = await (await fetch(`http://${herald.metricsAddr}/metrics`)).text();
    if (/herald_app_store_events_total\{event="listening"\} [1-9]/.test(text)) break;
    if (Date.now() > deadline) throw new Error('the app store listener did not connect');
    await new Promise((r) => setTimeout(r, 20));
  }
});

after(async () => {
  disconnectAll();
  await herald?.stop();
  pg?.stop();
});

async function admin(method, path = '', body) {
  const res = await fetch(`http://${herald.metricsAddr}/admin/apps${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

test('an app created through the admin API serves pusher-js and the Node SDK at once', async () => {
  const created = await admin('POST', '', { id: 'signup-1', client_events: true });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const app = created.body;
  const started = Date.now();
  const { pusher, probe } = newPusher(herald, app);
  await probe.connected();
  console.log(`# connected ${Date.now() - started} ms after the app was created`);
  const got = new Log('events');
  pusher.subscribe('news').bind('hello', (d) => got.push(d));
  await probe.waitFrame('pusher_internal:subscription_succeeded', 'news');
  await sdkFor(herald, app).trigger('news', 'hello', { n: 1 });
  assert.deepEqual(await got.wait(), { n: 1 });
});

test('a secret rotated while the SDK triggers: old refused at once, new accepted, sockets reconnect', async () => {
  const app = (await admin('POST', '', { id: 'signup-2' })).body;
  const { pusher, probe } = newPusher(herald, app);
  await probe.connected();
  const firstSocket = probe.socketId;
  const old = sdkFor(herald, app);
  // The SDK keeps triggering with the old secret; every answer is 200 until the rotation,
  // 401 after it, never a 5xx.
  const statuses = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        await old.trigger('news', 'tick', {});
        statuses.push(200);
      } catch (e) {
        statuses.push(e.status);
      }
    }
  })();
  while (!statuses.includes(200)) await new Promise((r) => setImmediate(r));
  const rotated = await admin('POST', '/signup-2/rotate-secret');
  assert.equal(rotated.status, 200);
  while (!statuses.includes(401)) await new Promise((r) => setImmediate(r));
  running = false;
  await loop;
  const firstRefusal = statuses.indexOf(401);
  assert.deepEqual(statuses.slice(firstRefusal).filter((s) => s !== 401), [], `after the rotation: ${statuses}`);
  assert.deepEqual(statuses.slice(0, firstRefusal).filter((s) => s !== 200), [], `before it: ${statuses}`);
  // The socket was asked to reconnect (4200) and is back with a new id.
  await probe.states.wait((s) => s.current === 'connected' && probe.socketId !== firstSocket, 10000, 'reconnected');
  const got = new Log('after rotation');
  pusher.subscribe('fresh').bind('e', (d) => got.push(d));
  await probe.waitFrame('pusher_internal:subscription_succeeded', 'fresh');
  await sdkFor(herald, rotated.body).trigger('fresh', 'e', { ok: true });
  assert.deepEqual(await got.wait(), { ok: true });
});

test('a disabled app: pusher-js gets 4003, the SDK 403; enabled again, it serves', async () => {
  const app = (await admin('POST', '', { id: 'signup-3' })).body;
  const { probe } = newPusher(herald, app);
  await probe.connected();
  assert.equal((await admin('POST', '/signup-3/disable')).status, 200);
  const error = await probe.errors.wait((e) => e?.data?.code === 4003 || e?.error?.data?.code === 4003);
  assert.ok(error);
  await assert.rejects(sdkFor(herald, app).trigger('news', 'e', {}), (e) => e.status === 403);
  assert.equal((await admin('POST', '/signup-3/enable')).status, 200);
  await sdkFor(herald, app).trigger('news', 'e', {});
});
