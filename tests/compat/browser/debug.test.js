// The debug console in a real browser: Debian's headless Chromium opens /debug on Herald's
// metrics listener, types the admin token, picks the app and connects; a pusher-js client
// subscribes and the `pusher` Node SDK triggers. The test asserts the page shows the trigger
// within a second, the channel panel and the filter, and saves a screenshot to
// target/compat/debug-console.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { launchChromium } from '../lib/chromium.js';
import { APPS, REPO_ROOT, startHerald } from '../lib/herald.js';
import { sdkFor } from '../lib/backend.js';
import { newPusher, disconnectAll, uniq } from '../lib/clients.js';

const SHOTS = path.join(REPO_ROOT, 'target', 'compat');
const TOKEN = 'compat-debug-console-token';
const TIMEOUT = 15000;

let herald;
let browser;
let context;
const pageErrors = [];

before(async () => {
  herald = await startHerald({ appStore: { admin_token: TOKEN } });
  browser = await launchChromium({ width: 1280, height: 720 });
  context = browser.context;
});

after(async () => {
  disconnectAll();
  await browser?.close();
  await herald?.stop();
});

test('the debug console shows an SDK trigger within a second, the channel and its filter', async () => {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  await page.goto(`http://${herald.metricsAddr}/debug`);
  await page.fill('#token', TOKEN);
  await page.dispatchEvent('#token', 'change');
  await page.locator(`#app option[value="${APPS.main.id}"]`).waitFor({ state: 'attached', timeout: TIMEOUT });
  await page.selectOption('#app', APPS.main.id);
  await page.click('#connect');
  await page.locator('#status.live').waitFor({ timeout: TIMEOUT });

  // A socket of the app connects and subscribes: both show up as they happen.
  const { pusher, probe } = newPusher(herald, APPS.main);
  await probe.connected();
  const channel = uniq('debug-');
  pusher.subscribe(channel);
  await probe.waitFrame('pusher_internal:subscription_succeeded', channel);
  await page.locator('tr[data-type="connection"]').first().waitFor({ timeout: TIMEOUT });
  await page.locator(`tr[data-type="subscribed"]`, { hasText: channel }).waitFor({ timeout: TIMEOUT });

  // The SDK's trigger appears on the page within a second of the API's answer.
  const sdk = sdkFor(herald, APPS.main);
  const res = await sdk.trigger(channel, 'order.shipped', { id: 42 });
  assert.equal(res.status, 200);
  const answered = Date.now();
  await page.locator('tr[data-event="order.shipped"]').waitFor({ timeout: 1000 });
  const shownAfter = Date.now() - answered;
  console.log(`debug console: trigger shown ${shownAfter} ms after the REST answer`);
  const row = await page.locator('tr[data-event="order.shipped"]').textContent();
  assert.match(row, new RegExp(`api message.*order\\.shipped.*${channel}`));
  await probe.waitFrame('order.shipped', channel);

  // The channel panel (refreshed every two seconds) lists the channel with its subscriber.
  await page.locator(`.channel[data-channel="${channel}"]`).waitFor({ timeout: TIMEOUT });
  assert.match(await page.locator(`.channel[data-channel="${channel}"] .counts`).textContent(), /^1 subscriber/);

  // The filter hides what does not match.
  await page.fill('#filter', 'order.shipped');
  await page.locator('tr[data-type="connection"]').first().waitFor({ state: 'hidden', timeout: TIMEOUT });
  assert.equal(await page.locator('tr[data-event="order.shipped"]').isVisible(), true);
  await page.fill('#filter', '');

  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, 'debug-console.png'), fullPage: true });
  assert.deepEqual(pageErrors, []);
});

test('the console refuses a wrong token and is not on the public port', async () => {
  const page = await context.newPage();
  await page.goto(`http://${herald.metricsAddr}/debug`);
  await page.fill('#token', 'not-the-admin-token');
  await page.dispatchEvent('#token', 'change');
  await page.locator('#status', { hasText: 'wrong admin token' }).waitFor({ timeout: TIMEOUT });
  const publicPort = await fetch(`http://${herald.addr}/debug`);
  assert.equal(publicPort.status, 404);
});
