// pusher-js connection lifecycle against Herald: connect, reconnect after Herald's drain
// (close 4200), and a receive-only client kept alive past the activity timeout.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, APPS } from '../lib/herald.js';
import { startBackend, sdkFor } from '../lib/backend.js';
import { newPusher, newEcho, disconnectAll, uniq } from '../lib/clients.js';
import { startStack } from '../lib/stack.js';
import { startProxy } from '../lib/proxy.js';
import { rawConnect } from '../lib/rawws.js';

const cleanups = [];
after(async () => {
  disconnectAll();
  for (const c of cleanups.reverse()) await c();
});

test('pusher-js connects: socket id format, activity timeout from connection_established', async () => {
  const stack = await startStack({ options: () => ({ websocket: { activity_timeout_secs: 45 } }) });
  cleanups.push(() => stack.stop());
  const { pusher, probe } = newPusher(stack.herald, APPS.main);
  await probe.connected();
  assert.equal(pusher.connection.state, 'connected');
  assert.match(pusher.connection.socket_id, /^\d+\.\d+$/);
  // pusher-js keeps min(its own activityTimeout, the server's activity_timeout).
  assert.equal(pusher.connection.activityTimeout, 45000);
  assert.deepEqual(probe.errors.items, []);
  assert.deepEqual(
    probe.states.items.map((s) => s.current),
    ['connected'],
  );

  // A second client gets a different socket id; a public subscription succeeds with "{}".
  const other = newPusher(stack.herald, APPS.main);
  await other.probe.connected();
  assert.notEqual(other.pusher.connection.socket_id, pusher.connection.socket_id);
  const name = uniq('public-');
  const ch = pusher.subscribe(name);
  const f = await probe.waitFrame('pusher_internal:subscription_succeeded', name);
  assert.deepEqual(f, { event: 'pusher_internal:subscription_succeeded', channel: name, data: {} });
  assert.equal(ch.subscribed, true);
});

test('reconnects after Herald closes with 4200 (drain), resubscribes with fresh auth', async () => {
  // Two Herald nodes behind a load balancer (a TCP pass-through); the client talks to the
  // balancer. A rolling restart: the balancer takes node A out of rotation, A is stopped
  // (SIGTERM: drain with 4200), the client reconnects at once and lands on node B.
  const backend = await startBackend({ app: APPS.main });
  cleanups.push(() => backend.close());
  const nodeA = await startHerald();
  cleanups.push(() => nodeA.stop());
  const nodeB = await startHerald();
  cleanups.push(() => nodeB.stop());
  const lb = await startProxy(nodeA);
  cleanups.push(() => lb.close());
  backend.attach(nodeA);

  const { echo, probe } = newEcho(lb, APPS.main, { backend, user: 1 });
  const pub = uniq('news.');
  const got = [];
  echo.private('orders.1').listen('OrderShipped', (d) => got.push(['private', d]));
  echo.channel(pub).listen('.news.posted', (d) => got.push(['public', d]));
  await probe.waitFrame('pusher_internal:subscription_succeeded', 'private-orders.1');
  await probe.waitFrame('pusher_internal:subscription_succeeded', pub);
  const firstSocket = echo.socketId();

  lb.setTarget(nodeB);
  backend.attach(nodeB);
  const exit = nodeA.stop();
  // What pusher-js sees: pusher:error 4200, then (close 4200) an immediate reconnect.
  const err = await probe.errors.wait((e) => e.data?.code === 4200, 10000, 'pusher:error 4200');
  assert.equal(err.type, 'PusherError');
  assert.equal(typeof err.data.message, 'string');
  await exit;
  await probe.states.wait(
    () => probe.states.filter((s) => s.current === 'connected').length >= 2,
    10000,
    'connected again',
  );
  assert.deepEqual(
    probe.states.items.map((s) => s.current),
    ['connected', 'connecting', 'connected'],
  );
  const secondSocket = echo.socketId();
  assert.match(secondSocket, /^\d+\.\d+$/);
  assert.notEqual(secondSocket, firstSocket);

  // Every channel is subscribed again, the private one re-authorized for the new socket id.
  const succeeded = (name) => (f) => f.event === 'pusher_internal:subscription_succeeded' && f.channel === name;
  await probe.frames.waitCount(2, succeeded('private-orders.1'));
  await probe.frames.waitCount(2, succeeded(pub));
  const authFor = backend.authRequests
    .filter((r) => r.params.channel_name === 'private-orders.1')
    .map((r) => r.params.socket_id);
  assert.deepEqual(authFor, [firstSocket, secondSocket]);

  const sdk = sdkFor(nodeB, APPS.main);
  await sdk.trigger('private-orders.1', 'App\\Events\\OrderShipped', { order: { id: 7 } });
  await sdk.trigger(pub, 'news.posted', { title: 'back' });
  await probe.waitFrame('news.posted', pub);
  await probe.waitFrame('App\\Events\\OrderShipped', 'private-orders.1');
  assert.deepEqual(got, [
    ['private', { order: { id: 7 } }],
    ['public', { title: 'back' }],
  ]);
});

test('a receive-only client on a busy channel stays connected past the activity timeout', async () => {
  // Herald pings after 1 s of inbound silence and closes (4201) 2 s after an unanswered ping.
  const stack = await startStack({ options: () => ({ websocket: { activity_timeout_secs: 1, pong_timeout_secs: 2 } }) });
  cleanups.push(() => stack.stop());
  const { pusher, probe } = newPusher(stack.herald, APPS.main);
  await probe.connected();
  const sid = pusher.connection.socket_id;
  assert.equal(pusher.connection.activityTimeout, 1000);

  // Record what the client sends from now on: it must stay silent (receive-only).
  const sent = [];
  const transport = pusher.connection.connection;
  const origSend = transport.send.bind(transport);
  transport.send = (data) => {
    sent.push(JSON.parse(data));
    return origSend(data);
  };

  const name = uniq('ticker.');
  pusher.subscribe(name);
  await probe.waitFrame('pusher_internal:subscription_succeeded', name);

  // Control: a peer that never answers Herald's pings is closed with 4201 meanwhile, so the
  // timeouts are live while the pusher-js client below stays connected.
  const dead = await rawConnect(stack.herald.host, stack.herald.port, `/app/${APPS.main.key}?protocol=7&client=js&version=8.6.0&flash=false`);

  // 40 events, one every 200 ms: 8 s, well past activity + pong timeout (3 s).
  const total = 40;
  for (let i = 0; i < total; i++) {
    await stack.sdk.trigger(name, 'tick', { i });
    await new Promise((r) => setTimeout(r, 200));
  }
  const ticks = await probe.frames.waitCount(total, (f) => f.event === 'tick', 10000);
  assert.deepEqual(
    ticks.map((f) => f.data.i),
    [...Array(total).keys()],
  );
  assert.equal(pusher.connection.state, 'connected');
  assert.equal(pusher.connection.socket_id, sid);
  assert.deepEqual(
    probe.states.items.map((s) => s.current),
    ['connected'],
  );
  assert.deepEqual(probe.errors.items, []);
  // pusher-js's own activity timer never fired (the busy channel keeps resetting it): it sent
  // no pusher:ping. It only answered Herald's pusher:ping probes with pusher:pong.
  assert.deepEqual(
    sent.map((m) => m.event).filter((e) => e !== 'pusher:pong'),
    ['pusher:subscribe'],
    'the client sent nothing but its subscription and answers to Herald\'s pings',
  );
  assert.ok(!sent.some((m) => m.event === 'pusher:ping'), 'pusher-js never needed to ping');
  const end = await dead.closed;
  assert.equal(end.code, 4201);
  assert.ok(end.frames.some((f) => f.type === 'ping'), 'Herald pinged the silent peer');
  assert.deepEqual(
    end.frames.filter((f) => f.type === 'text').map((f) => f.data.event),
    ['pusher:connection_established', 'pusher:ping', 'pusher:error'],
  );
  assert.equal(end.frames.find((f) => f.data?.event === 'pusher:error').data.data.code, 4201);
});
