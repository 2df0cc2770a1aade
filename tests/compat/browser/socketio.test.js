// A real browser on Laravel's other path: Debian's headless Chromium loads a page that uses
// Laravel Echo's socket.io connector with socket.io-client 4 (from node_modules), logged in by
// its session cookie, which Herald forwards to Laravel's RedisBroadcaster::auth (php -S). The
// page shows what Laravel's RedisBroadcaster publishes and what another (Node, socket.io-client
// 2) user does in the presence channel. Screenshot: target/compat/browser-socketio.png.
// With COMPAT_CLUSTER set, the page and the other user are on different nodes of two.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from '../lib/chromium.js';
import { APPS, REPO_ROOT, startHerald } from '../lib/herald.js';
import { CLUSTER_NODES, startCluster, startRedis } from '../lib/cluster.js';
import { startBackend } from '../lib/backend.js';
import { startLaravelAuth, laravelBroadcast } from '../lib/laravel.js';
import { newSioEcho, disconnectSio } from '../lib/sio.js';

const SHOTS = path.join(REPO_ROOT, 'target', 'compat');
const TIMEOUT = 15000;

let redis;
let auth;
let site;
let herald;
let nodes;
let browser;
let context;
const consoleErrors = [];

before(async () => {
  redis = await startRedis();
  auth = await startLaravelAuth();
  // Only the page's files come from here (the site's origin); auth goes to php -S via Herald.
  site = await startBackend({ app: APPS.main });
  const options = {
    apps: [{ ...APPS.main, auth_host: auth.url }],
    socketio: { enabled: true },
    ingest: { enabled: true, redis_url: redis.url },
  };
  herald = CLUSTER_NODES > 0 ? await startCluster(options, 2) : await startHerald(options);
  nodes = herald.nodes ?? [herald];
  browser = await launchChromium({ width: 900, height: 700 });
  context = browser.context;
});

after(async () => {
  disconnectSio();
  await browser?.close();
  await herald?.stop();
  await site?.close();
  await auth?.stop();
  await redis?.stop();
});

test('Echo socket.io connector in Chromium: private and presence channels from the session cookie', async () => {
  const pageNode = nodes[0];
  const bobNode = nodes[nodes.length - 1];
  // Logged in as Ann: a cookie on 127.0.0.1, which the browser also sends to Herald's port.
  await context.addCookies([{ name: 'test_user', value: '1', url: site.url }]);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const q = new URLSearchParams({ host: `http://${pageNode.host}:${pageNode.port}` });
  await page.goto(`${site.url}/page/sio.html?${q}`);
  await page.locator('#status[data-state="connected"]').waitFor({ timeout: TIMEOUT });
  await page.locator('#members li[data-member="1"]').waitFor({ timeout: TIMEOUT });
  // Polling first, then the upgrade (CORS with credentials on the polling requests).
  await page.locator('#transport', { hasText: 'websocket' }).waitFor({ timeout: TIMEOUT });

  // Herald authorized with the browser's cookie and the page's CSRF token.
  const calls = auth.requests().filter((r) => ['private-orders.1', 'presence-room.1'].includes(r.channel));
  assert.deepEqual(calls.map((r) => r.channel).sort(), ['presence-room.1', 'private-orders.1']);
  for (const r of calls) {
    assert.match(r.headers.cookie, /test_user=1/);
    assert.equal(r.headers['x-csrf-token'], 'compat-csrf-token');
  }

  // Laravel: broadcast(new OrderShipped($order)) through the redis driver.
  const order = (id, status) => laravelBroadcast(redis.url, 'App\\Events\\OrderShipped', { order: { id, status } }, ['private-orders.1']);
  await order(1, 'shipped');
  await order(2, 'delivered');
  await page.locator('[data-order="2"]').waitFor({ timeout: TIMEOUT });
  assert.deepEqual(await page.locator('#orders li').allTextContents(), ['Order #1 shipped', 'Order #2 delivered']);

  // Bob (socket.io-client 2, in Node) joins, whispers, chats through Laravel, leaves.
  const bob = newSioEcho(bobNode, { version: 2, user: 2, label: 'bob' });
  const room = bob.echo.join('room.1');
  await page.locator('[data-member="2"]').waitFor({ timeout: TIMEOUT });
  assert.equal(await page.locator('#member-count').textContent(), '2');
  room.whisper('typing', { name: 'Bob' });
  await page.locator('#room-log li', { hasText: 'Bob is typing…' }).waitFor({ timeout: TIMEOUT });
  await laravelBroadcast(redis.url, 'chat.message', { from: 'Bob', text: 'Hi Ann!' }, ['presence-room.1'], bob.echo.socketId());
  await page.locator('#room-log li', { hasText: 'Bob: Hi Ann!' }).waitFor({ timeout: TIMEOUT });
  bob.echo.leave('room.1');
  await page.locator('#room-log li', { hasText: 'Bob left' }).waitFor({ timeout: TIMEOUT });
  assert.deepEqual(await page.locator('#room-log li').allTextContents(), [
    'Bob joined',
    'Bob is typing…',
    'Bob: Hi Ann!',
    'Bob left',
  ]);
  assert.deepEqual(await page.locator('#members li').allTextContents(), ['Ann']);

  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'browser-socketio.png'), fullPage: true });
  assert.deepEqual(consoleErrors, []);
});
