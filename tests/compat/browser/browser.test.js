// A real browser: Debian's headless Chromium (driven by playwright-core, no browser
// download) loads a page that uses Laravel Echo + pusher-js from node_modules, joins a
// private and a presence channel through the default /broadcasting/auth (session cookie),
// and shows events sent from the Node SDK and another (Node) Echo user. The test asserts
// what the page shows and saves a screenshot to target/compat/browser.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from '../lib/chromium.js';
import { APPS, REPO_ROOT } from '../lib/herald.js';
import { newEcho } from '../lib/clients.js';
import { startStack } from '../lib/stack.js';

const SHOTS = path.join(REPO_ROOT, 'target', 'compat');
const TIMEOUT = 15000;

let stack;
let browser;
let context;
const consoleErrors = [];

before(async () => {
  // Two more apps with allowed origins: this page's origin (the backend's), and another one.
  stack = await startStack({
    options: (backend) => ({
      apps: [
        ...Object.values(APPS),
        { id: 'here-app', key: 'here-key', secret: 'here-secret', allowed_origins: [backend.url] },
        { id: 'there-app', key: 'there-key', secret: 'there-secret', allowed_origins: ['https://app.example.com'] },
      ],
    }),
  });
  browser = await launchChromium({ width: 900, height: 760 });
  context = browser.context;
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('Echo + pusher-js in Chromium: private and presence channels show SDK events', async () => {
  // Logged in as Ann (Laravel: the session cookie sent with /broadcasting/auth).
  await context.addCookies([{ name: 'test_user', value: '1', url: stack.backend.url }]);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  const q = new URLSearchParams({ key: APPS.main.key, wsHost: stack.herald.host, wsPort: String(stack.herald.port) });
  await page.goto(`${stack.backend.url}/page/index.html?${q}`);

  await page.locator('#status[data-state="connected"]').waitFor({ timeout: TIMEOUT });
  assert.match(await page.locator('#socket-id').textContent(), /^\d+\.\d+$/);
  await page.locator('[data-channel="private-orders.1"]').waitFor({ timeout: TIMEOUT });
  await page.locator('[data-channel="presence-room.1"]').waitFor({ timeout: TIMEOUT });
  assert.deepEqual(await page.locator('#members li').allTextContents(), ['Ann']);

  // The browser authorized over real HTTP, with the session cookie and Echo's CSRF header.
  const auths = stack.backend.authRequests.filter((r) => r.path === '/broadcasting/auth');
  assert.deepEqual(auths.map((r) => r.params.channel_name).sort(), ['presence-room.1', 'private-orders.1']);
  for (const r of auths) {
    assert.equal(r.user, '1');
    assert.equal(r.headers['x-csrf-token'], 'browser-csrf-token');
  }

  // Laravel: broadcast(new OrderShipped($order)) → the page lists it.
  await stack.sdk.trigger('private-orders.1', 'App\\Events\\OrderShipped', { order: { id: 1, status: 'shipped' } });
  await stack.sdk.trigger('private-orders.1', 'App\\Events\\OrderShipped', { order: { id: 2, status: 'delivered' } });
  await page.locator('[data-order="2"]').waitFor({ timeout: TIMEOUT });
  assert.deepEqual(await page.locator('#orders li').allTextContents(), ['Order #1 shipped', 'Order #2 delivered']);

  // Bob joins from another client (Node Echo), whispers, a chat message is broadcast, Bob leaves.
  const bob = newEcho(stack.herald, APPS.main, { backend: stack.backend, user: 2, label: 'bob' });
  const room = bob.echo.join('room.1');
  await bob.probe.waitFrame('pusher_internal:subscription_succeeded', 'presence-room.1');
  await page.locator('[data-member="2"]').waitFor({ timeout: TIMEOUT });
  assert.equal(await page.locator('#member-count').textContent(), '2');
  room.whisper('typing', { name: 'Bob' });
  await page.locator('#room-log li', { hasText: 'Bob is typing…' }).waitFor({ timeout: TIMEOUT });
  await stack.sdk.trigger('presence-room.1', 'chat.message', { from: 'Bob', text: 'Hi Ann!' });
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
  assert.equal(await page.locator('#member-count').textContent(), '1');

  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'browser.png'), fullPage: true });
  assert.deepEqual(consoleErrors, []);
  assert.equal(await page.locator('#status').textContent(), 'connected');
});

test('allowed origins: a page from an origin the app does not allow is refused with 4009', async () => {
  const page = await context.newPage();
  await page.goto(`${stack.backend.url}/page/blank.html`);
  const connect = (key) =>
    page.evaluate(
      ({ key, host, port }) =>
        new Promise((resolve) => {
          const p = new Pusher(key, {
            cluster: 'mt1', wsHost: host, wsPort: port, forceTLS: false, enabledTransports: ['ws'], disableStats: true,
          });
          p.connection.bind('connected', () => resolve({ connected: p.connection.socket_id }));
          p.connection.bind('error', (e) => resolve({ code: e?.error?.data?.code, message: e?.error?.data?.message }));
        }),
      { key, host: stack.herald.host, port: stack.herald.port },
    );
  const here = await connect('here-key');
  assert.match(String(here.connected), /^\d+\.\d+$/, JSON.stringify(here));
  const there = await connect('there-key');
  assert.deepEqual(there, { code: 4009, message: 'Origin not allowed' });
  await page.close();
});
