// Node-wide admission as pusher-js sees it: a node at server.max_connections, or over its
// new-connection rate, refuses the upgrade with HTTP 503 before any handshake work;
// pusher-js keeps retrying (its transport timeout: 15 s, then longer) and connects once
// the node has room again.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, APPS } from '../lib/herald.js';
import { newPusher, disconnectAll } from '../lib/clients.js';

const cleanups = [];
after(async () => {
  disconnectAll();
  for (const c of cleanups.reverse()) await c();
});

/** `herald_rejected_total{reason}` of a running Herald. */
async function rejected(herald, reason) {
  const text = await (await fetch(`http://${herald.metricsAddr}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`herald_rejected_total{reason="${reason}"} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

/** Polls until `herald` has refused at least one upgrade for `reason` (bounded). */
async function refusedOnce(herald, reason, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while ((await rejected(herald, reason)) < 1) {
    if (Date.now() > deadline) throw new Error(`no upgrade was refused for ${reason}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function nodeFull() {
  const herald = await startHerald({ server: { max_connections: 1 } });
  cleanups.push(() => herald.stop());
  const first = newPusher(herald, APPS.main, { label: 'first' });
  await first.probe.connected();
  const second = newPusher(herald, APPS.main, { label: 'second' });
  await refusedOnce(herald, 'node_full');
  assert.notEqual(second.pusher.connection.state, 'connected');
  // A place frees: the refused client gets in on its own next attempt.
  first.pusher.disconnect();
  await second.probe.connected(60000);
  assert.match(second.pusher.connection.socket_id, /^\d+\.\d+$/);
}

async function tooFast() {
  const herald = await startHerald({ server: { max_connections_per_second: 1, connections_burst: 1 } });
  cleanups.push(() => herald.stop());
  const first = newPusher(herald, APPS.main, { label: 'first' });
  await first.probe.connected();
  const second = newPusher(herald, APPS.main, { label: 'second' });
  await refusedOnce(herald, 'connect_rate');
  assert.notEqual(second.pusher.connection.state, 'connected');
  // The bucket refills at one a second: the retry is admitted; the first never noticed.
  await second.probe.connected(60000);
  assert.equal(first.pusher.connection.state, 'connected');
}

test('refused with 503 (max_connections, connection rate), pusher-js retries and connects', { timeout: 90000 }, async () => {
  await Promise.all([nodeFull(), tooFast()]);
});
