// Laravel's other path, end to end with real parts: Laravel's RedisBroadcaster (Debian's
// Illuminate 8) publishing into a real redis-server, Herald reading it, and Echo's socket.io
// connector (socket.io-client 4 and 2) beside Echo's pusher connector (pusher-js) on the same
// channels; private and presence subscriptions authorized by Laravel's RedisBroadcaster::auth
// behind `php -S`, which Herald calls as laravel-echo-server does.
//
// With COMPAT_CLUSTER set, the same tests run on two nodes (the redis driver; Laravel's Redis
// is another one), each client on a chosen node (socket.io polling needs sticky sessions, so
// no round-robin proxy here).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { APPS, startHerald } from '../lib/herald.js';
import { CLUSTER_NODES, startCluster, startRedis } from '../lib/cluster.js';
import { startBackend, sdkFor } from '../lib/backend.js';
import { newEcho, disconnectAll, Log, uniq } from '../lib/clients.js';
import { startLaravelAuth, laravelBroadcast } from '../lib/laravel.js';
import { newSioEcho, newSioSocket, disconnectSio } from '../lib/sio.js';

const APP = APPS.main;
let laravelRedis;
let auth;
let backend;
let herald;
let sdk;
let nodes;

before(async () => {
  laravelRedis = await startRedis();
  auth = await startLaravelAuth();
  backend = await startBackend({ app: APP });
  const options = {
    apps: [
      {
        ...APP,
        auth_host: auth.url,
        webhooks: [{ url: `${backend.url}/webhook`, events: ['member_added'] }],
        allowed_origins: ['https://app.example.com'],
      },
    ],
    socketio: { enabled: true, auth_timeout_ms: 1500, max_payload_bytes: 20000 },
    ingest: { enabled: true, redis_url: laravelRedis.url },
  };
  herald = CLUSTER_NODES > 0 ? await startCluster(options, 2) : await startHerald(options);
  nodes = herald.nodes ?? [herald];
  backend.attach(nodes[0]);
  sdk = sdkFor(nodes[0], APP);
});

after(async () => {
  disconnectSio();
  disconnectAll();
  await herald?.stop();
  await backend?.close();
  await auth?.stop();
  await laravelRedis?.stop();
});

/** The i-th node (round robin over the cluster's nodes; always the one node otherwise). */
const node = (i) => nodes[i % nodes.length];
const sio = (i, opts) => newSioEcho(node(i), opts);
const pusherEcho = (i, user) => newEcho(node(i), APP, { backend, user });
const broadcast = (event, payload, channels, socket = null) =>
  laravelBroadcast(laravelRedis.url, event, payload, channels, socket);

/** Waits until the cluster counts `n` subscriptions on `channel` (REST, as any backend sees). */
async function subscribed(channel, n, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    const res = await sdk.get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } });
    last = await res.json();
    if (last.subscription_count === n) return;
    if (Date.now() > deadline) throw new Error(`${channel}: wanted ${n} subscriptions, have ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * A Laravel broadcast of a marker on `channel`, awaited by each socket.io probe: Herald
 * delivers what it reads from Laravel's Redis in order, so anything before it has arrived.
 */
async function laravelMarker(channel, probes) {
  const id = uniq('m');
  await broadcast('compat-marker', { id }, [channel]);
  for (const p of probes) await p.wait('compat-marker', channel, (d) => d.id === id);
}

async function metric(nodeAddr, line) {
  const text = await (await fetch(`http://${nodeAddr}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line));
  return found ? Number(found.split(' ').pop()) : 0;
}

async function metricSum(line) {
  let sum = 0;
  for (const n of nodes) sum += await metric(n.metricsAddr, line);
  return sum;
}

test('a RedisBroadcaster broadcast reaches socket.io-client 4 and 2 (polling and WebSocket) and pusher-js', async () => {
  const name = uniq('orders.');
  const clients = {
    sio4: sio(0, { version: 4 }),
    sio4ws: sio(1, { version: 4, transports: ['websocket'] }),
    sio2poll: sio(0, { version: 2, transports: ['polling'] }),
    sio2: sio(1, { version: 2 }),
  };
  const got = {};
  for (const [k, c] of Object.entries(clients)) {
    got[k] = new Log(k);
    c.echo
      .channel(name)
      .listen('.order.shipped', (d) => got[k].push(['as', d]))
      .listen('OrderShipped', (d) => got[k].push(['class', d]));
  }
  const pusher = pusherEcho(1);
  got.pusher = new Log('pusher');
  pusher.echo
    .channel(name)
    .listen('.order.shipped', (d) => got.pusher.push(['as', d]))
    .listen('OrderShipped', (d) => got.pusher.push(['class', d]));
  await subscribed(name, 5);

  // broadcastAs() 'order.shipped', then a class-named event; Laravel's data keeps `socket`.
  await broadcast('order.shipped', { order: { id: 1, items: [1, 2] }, total: 9.5 }, [name]);
  await broadcast('App\\Events\\OrderShipped', { order: { id: 2 } }, [name]);
  for (const [k, log] of Object.entries(got)) {
    const [first, second] = await log.waitCount(2);
    assert.deepEqual(first, ['as', { order: { id: 1, items: [1, 2] }, total: 9.5, socket: null }], k);
    assert.deepEqual(second, ['class', { order: { id: 2 }, socket: null }], k);
  }
  assert.equal(clients.sio2poll.socket.io.engine.transport.name, 'polling');
  assert.equal(clients.sio4ws.socket.io.engine.transport.name, 'websocket');
  // The REST API sees socket.io sockets like any others.
  const res = await (await sdk.get({ path: '/channels', params: { filter_by_prefix: 'orders.' } })).json();
  assert.ok(res.channels[name], JSON.stringify(res));
});

test('toOthers(): the sender is left out, whichever protocol it uses', async () => {
  const name = uniq('chat.');
  const a = sio(0, { version: 4, label: 'a' });
  const b = sio(1, { version: 2, label: 'b' });
  const p = pusherEcho(0);
  for (const c of [a, b]) c.echo.channel(name).listen('.said', () => {});
  const pGot = new Log('pusher said');
  p.echo.channel(name).listen('.said', (d) => pGot.push(d));
  await subscribed(name, 3);
  await a.probe.connected();

  // X-Socket-ID of a socket.io page: Echo's socketId() is the socket.io id.
  await broadcast('said', { by: 'a' }, [name], a.echo.socketId());
  assert.deepEqual(await b.probe.wait('said', name), { by: 'a', socket: a.echo.socketId() });
  assert.equal((await pGot.wait()).by, 'a');
  await laravelMarker(name, [a.probe]);
  assert.deepEqual(a.probe.of('said'), [], 'the socket.io sender got its own broadcast');

  // X-Socket-ID of a pusher-js page.
  await broadcast('said', { by: 'p' }, [name], p.echo.socketId());
  assert.equal((await a.probe.wait('said', name, (d) => d.by === 'p')).by, 'p');
  assert.equal((await b.probe.wait('said', name, (d) => d.by === 'p')).by, 'p');
  await laravelMarker(name, [a.probe]);
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(pGot.filter((d) => d.by === 'p').length, 0, 'the pusher sender got its own broadcast');
});

test('private channels: Herald asks Laravel (cookie, X-CSRF-TOKEN forwarded); a refusal is subscription_error(channel, 403)', async () => {
  const id = uniq('');
  const ann = sio(0, { version: 4, user: 1, label: 'ann' });
  const bob = sio(1, { version: 2, user: 2, label: 'bob' });
  const got = new Log('ann orders');
  ann.echo.private(`orders.${id}`).listen('.status', (d) => got.push(d));
  await subscribed(`private-orders.${id}`, 1);
  await broadcast('status', { state: 'paid' }, [`private-orders.${id}`]);
  assert.deepEqual(await got.wait(), { state: 'paid', socket: null });

  const call = auth.requests().find((r) => r.channel === `private-orders.${id}`);
  assert.ok(call, 'Herald called the auth endpoint');
  assert.equal(call.headers.cookie, 'test_user=1');
  assert.equal(call.headers['x-csrf-token'], 'compat-csrf-token');
  assert.equal(call.headers['x-requested-with'], 'XMLHttpRequest');
  assert.match(call.headers['content-type'], /application\/x-www-form-urlencoded/);
  assert.match(call.socket_id, /^\d+\.\d+$/, 'a Pusher-format socket_id for the pusher broadcaster');

  // routes/channels.php refuses Bob on Ann's user channel; a guest gets 403 on any guarded one.
  bob.echo.private('App.Models.User.1').notification(() => {});
  assert.equal(await bob.probe.wait('subscription_error', 'private-App.Models.User.1'), 403);
  const guest = sio(0, { version: 4, label: 'guest' });
  guest.echo.private(`orders.${id}`);
  assert.equal(await guest.probe.wait('subscription_error', `private-orders.${id}`), 403);
  assert.equal(await subscriberCount('private-App.Models.User.1'), 0, 'nobody holds the refused channel');
});

async function subscriberCount(channel) {
  const res = await sdk.get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } });
  return (await res.json()).subscription_count ?? 0;
}

test('.notification() on App.Models.User.{id} from a Laravel notification', async () => {
  const ann = sio(1, { version: 2, user: 1 });
  const got = new Log('notifications');
  ann.echo.private('App.Models.User.1').notification((n) => got.push(n));
  await subscribed('private-App.Models.User.1', 1);
  const payload = { id: '8f1b4e4e-6f7c-4c7a-9d8e-0a4f4a1f0c2b', type: 'App\\Notifications\\InvoicePaid', invoice_id: 42 };
  await broadcast('Illuminate\\Notifications\\Events\\BroadcastNotificationCreated', payload, [
    'private-App.Models.User.1',
  ]);
  assert.deepEqual(await got.wait(), { ...payload, socket: null });
});

test('presence: one roster across protocols and nodes, exact per user (Ann in two tabs)', async () => {
  const room = uniq('room.');
  const channel = `presence-${room}`;
  const ann = { id: 1, name: 'Ann' };
  const bob = { id: 2, name: 'Bob' };
  // Ann's first tab: Echo on socket.io-client 4.
  const annSio = sio(0, { version: 4, user: 1, label: 'ann sio' });
  const annSioHere = new Log('ann sio here');
  const annSioJoining = new Log('ann sio joining');
  const annSioLeaving = new Log('ann sio leaving');
  annSio.echo
    .join(room)
    .here((h) => annSioHere.push(h))
    .joining((m) => annSioJoining.push(m))
    .leaving((m) => annSioLeaving.push(m));
  assert.deepEqual(await annSioHere.wait(), [ann]);
  // The app's webhooks hear of a socket.io member as of any other.
  const hook = await backend.waitForWebhook((h) =>
    h.body.events.some((e) => e.name === 'member_added' && e.channel === channel && e.user_id === '1'),
  );
  assert.ok(hook.headers['x-pusher-signature']);
  // A repeated subscribe (a client that re-sends it) changes nothing and is not refused.
  annSio.socket.emit('subscribe', { channel, auth: { headers: { 'X-CSRF-TOKEN': 'compat-csrf-token' } } });

  // Ann's second tab: Echo on pusher-js, on the other node. One user, one member.
  const annPusher = pusherEcho(1, 1);
  const annPusherHere = new Log('ann pusher here');
  const annPusherJoining = new Log('ann pusher joining');
  annPusher.echo
    .join(room)
    .here((h) => annPusherHere.push(h))
    .joining((m) => annPusherJoining.push(m));
  assert.deepEqual(await annPusherHere.wait(), [ann]);

  // Bob on socket.io-client 2: sees Ann once; both of Ann's tabs see Bob join once.
  const bobSio = sio(1, { version: 2, user: 2, label: 'bob sio2' });
  const bobHere = new Log('bob here');
  const bobLeaving = new Log('bob leaving');
  bobSio.echo
    .join(room)
    .here((h) => bobHere.push(h))
    .leaving((m) => bobLeaving.push(m));
  const here = await bobHere.wait();
  assert.deepEqual([...here].sort((x, y) => x.id - y.id), [ann, bob]);
  assert.deepEqual(await annSioJoining.wait(), bob);
  assert.deepEqual(await annPusherJoining.wait(), bob);

  // The REST API and the node gauges count users, not sockets.
  const users = await (await sdk.get({ path: `/channels/${channel}/users` })).json();
  assert.deepEqual(users.users.map((u) => u.id).sort(), ['1', '2']);
  const info = await (await sdk.get({ path: `/channels/${channel}`, params: { info: 'user_count' } })).json();
  assert.equal(info.user_count, 2);

  await laravelMarker(channel, [annSio.probe]);
  assert.deepEqual(annSio.probe.of('subscription_error'), []);
  assert.equal(annSioHere.items.length, 1);

  // Ann closes her socket.io tab: she is still here (pusher tab), nobody sees her leave.
  annSio.echo.disconnect();
  await subscribed(channel, 2);
  await laravelMarker(channel, [bobSio.probe]);
  assert.deepEqual(bobLeaving.items, []);
  // Her last tab goes: Bob sees Ann leave, with her user_info.
  annPusher.echo.disconnect();
  assert.deepEqual(await bobLeaving.wait(), ann);
  assert.deepEqual(annSioLeaving.items, []);
});

test('whisper across protocols (private channel): relayed to the others, never echoed', async () => {
  const name = uniq('chat.');
  const channel = `private-${name}`;
  const s4 = sio(0, { version: 4, user: 1, label: 'sio4' });
  const s2 = sio(1, { version: 2, user: 2, label: 'sio2' });
  const p = pusherEcho(1, 3);
  const got = { s4: new Log('s4'), s2: new Log('s2'), p: new Log('p') };
  s4.echo.private(name).listenForWhisper('typing', (d) => got.s4.push(d));
  s2.echo.private(name).listenForWhisper('typing', (d) => got.s2.push(d));
  p.echo.private(name).listenForWhisper('typing', (d) => got.p.push(d));
  await subscribed(channel, 3);

  s4.echo.private(name).whisper('typing', { from: 'sio4' });
  assert.deepEqual(await got.s2.wait((d) => d.from === 'sio4'), { from: 'sio4' });
  assert.deepEqual(await got.p.wait((d) => d.from === 'sio4'), { from: 'sio4' });
  p.echo.private(name).whisper('typing', { from: 'pusher', n: [1, 2] });
  assert.deepEqual(await got.s4.wait((d) => d.from === 'pusher'), { from: 'pusher', n: [1, 2] });
  assert.deepEqual(await got.s2.wait((d) => d.from === 'pusher'), { from: 'pusher', n: [1, 2] });
  s2.echo.private(name).whisper('typing', { from: 'sio2' });
  await got.s4.wait((d) => d.from === 'sio2');
  await got.p.wait((d) => d.from === 'sio2');
  // The senders' own whispers were published before the marker: none came back.
  await laravelMarker(channel, [s4.probe, s2.probe]);
  assert.deepEqual(got.s4.filter((d) => d.from === 'sio4'), []);
  assert.deepEqual(got.s2.filter((d) => d.from === 'sio2'), []);
  assert.deepEqual(got.p.filter((d) => d.from === 'pusher'), []);

  // Not on a public channel, and only `client-` events (laravel-echo-server's rules).
  const pub = uniq('pub.');
  const raw = newSioSocket(node(0), { version: 4, user: 1 });
  const listener = sio(0, { version: 4 });
  listener.echo.channel(pub).listen('.x', () => {});
  raw.socket.emit('subscribe', { channel: pub, auth: { headers: {} } });
  await subscribed(pub, 2);
  raw.socket.emit('client event', { channel: pub, event: 'client-typing', data: { no: 1 } });
  raw.socket.emit('client event', { channel, event: 'typing', data: { no: 2 } });
  await laravelMarker(pub, [listener.probe]);
  await laravelMarker(channel, [s2.probe]);
  assert.deepEqual(listener.probe.of('client-typing'), []);
  assert.deepEqual(got.s2.filter((d) => d.no), []);
});

test('the auth endpoint hangs or answers garbage: subscription_error 504 / 502, bystanders unaffected', async () => {
  const id = uniq('');
  const ann = sio(0, { version: 4, user: 1, label: 'ann' });
  const bystander = sio(0, { version: 4, user: 2, label: 'bystander' });
  const got = new Log('bystander');
  bystander.echo.channel(`news.${id}`).listen('.n', (d) => got.push(d));
  await subscribed(`news.${id}`, 1);

  const started = Date.now();
  ann.echo.private(`hang.${id}`);
  ann.echo.private(`garbage.${id}`);
  // While Ann's first call hangs, the bystander's deliveries go on.
  await broadcast('n', { k: 1 }, [`news.${id}`]);
  assert.equal((await got.wait()).k, 1);
  assert.equal(await ann.probe.wait('subscription_error', `private-hang.${id}`), 504);
  const waited = Date.now() - started;
  assert.ok(waited >= 1400, `refused after the 1.5 s auth timeout, not before (${waited} ms)`);
  assert.equal(await ann.probe.wait('subscription_error', `private-garbage.${id}`), 502);
  // Ann's socket still works after both refusals.
  const ok = new Log('ann ok');
  ann.echo.private(`orders.${id}`).listen('.ok', (d) => ok.push(d));
  await subscribed(`private-orders.${id}`, 1);
  await broadcast('ok', { fine: true }, [`private-orders.${id}`]);
  assert.equal((await ok.wait()).fine, true);
  assert.ok((await metricSum('herald_socketio_auth_total{outcome="timeout"}')) >= 1);
  assert.ok((await metricSum('herald_socketio_auth_total{outcome="bad_answer"}')) >= 1);
});

test('bad input: malformed packets and payloads, oversized messages, a subscribe flood', async () => {
  const news = uniq('news.');
  const bystander = sio(0, { version: 4, label: 'bystander' });
  const got = new Log('bystander');
  bystander.echo.channel(news).listen('.n', (d) => got.push(d));
  await subscribed(news, 1);
  const malformedBefore = await metricSum('herald_rejected_total{reason="malformed_message"}');

  // What crashes laravel-echo-server (a null subscribe) is counted and ignored; the socket lives.
  const odd = newSioSocket(node(0), { version: 2, label: 'odd' });
  await odd.probe.connected();
  odd.socket.emit('subscribe', null);
  odd.socket.emit('subscribe', 42);
  odd.socket.emit('subscribe', { auth: {} });
  odd.socket.emit('unsubscribe', 'x');
  odd.socket.emit('client event', { channel: 'private-x' });
  odd.socket.emit('subscribe', { channel: news });
  await subscribed(news, 2);
  const malformedAfter = await metricSum('herald_rejected_total{reason="malformed_message"}');
  assert.ok(malformedAfter - malformedBefore >= 5, `${malformedBefore} → ${malformedAfter}`);

  // Broken socket.io packets on a raw WebSocket: socketioxide drops that socket only.
  const target = node(0);
  const raw = new WebSocket(`ws://${target.host}:${target.port}/socket.io/?EIO=4&transport=websocket`);
  const closed = new Promise((resolve) => raw.on('close', resolve));
  await new Promise((resolve, reject) => {
    raw.on('message', (m) => (String(m).startsWith('0') ? resolve() : null));
    raw.on('error', reject);
  });
  raw.send('40');
  raw.send('42["subscribe",{"channel":');
  raw.send('4{{{{');
  await closed;

  // Oversized: a polling POST over max_payload_bytes is 413; a WebSocket message over it closes.
  const base = `http://${target.host}:${target.port}/socket.io/?EIO=4&transport=polling`;
  const open = await (await fetch(base)).text();
  const sid = JSON.parse(open.slice(1)).sid;
  const big = await fetch(`${base}&sid=${sid}`, { method: 'POST', body: `42["x","${'a'.repeat(30000)}"]` });
  assert.equal(big.status, 413);
  const huge = newSioSocket(node(0), { version: 4, transports: ['websocket'], label: 'huge' });
  await huge.probe.connected();
  huge.socket.emit('client event', { channel: 'private-x', event: 'client-x', data: 'b'.repeat(30000) });
  await huge.probe.closes.wait();

  // A subscribe flood, over either transport: the socket is cut as a transport failure (so
  // the client reconnects later, as after Pusher's 4100), its neighbours are not.
  for (const [version, transports] of [
    [4, ['websocket']],
    [2, ['polling']],
  ]) {
    const flood = newSioSocket(node(0), { version, transports, label: `flood ${transports}` });
    await flood.probe.connected();
    for (let i = 0; i < 3000; i += 1) flood.socket.emit('subscribe', { channel: `flood-${i}` });
    const reason = await flood.probe.closes.wait(() => true, 20000);
    assert.match(reason, /^transport (close|error)$/, `flood over ${transports}: ${reason}`);
  }
  // (The polling client batches its flood into POSTs over max_payload_bytes: 413, counted too.)
  assert.ok((await metricSum('herald_rejected_total{reason="inbound_flood"}')) >= 1);
  assert.ok((await metricSum('herald_rejected_total{reason="message_too_big"}')) >= 2);

  await broadcast('n', { still: 'here' }, [news]);
  assert.equal((await got.wait()).still, 'here');
  assert.equal(bystander.socket.connected, true);
  assert.equal(odd.socket.connected, true);
});

test('allowed origins: a socket.io page from another origin is refused (no reconnect), one from the app\'s is served', async () => {
  const evil = newSioSocket(node(0), { version: 4, extraHeaders: { Origin: 'https://evil.example.net' }, label: 'evil' });
  assert.equal(await evil.probe.closes.wait(), 'io server disconnect');
  const evil2 = newSioSocket(node(1), { version: 2, extraHeaders: { Origin: 'https://evil.example.net' }, label: 'evil2' });
  await evil2.probe.closes.wait();
  const good = newSioSocket(node(0), { version: 4, extraHeaders: { Origin: 'https://app.example.com' }, label: 'good' });
  await good.probe.connected();
  good.socket.emit('subscribe', { channel: 'origin-check' });
  await subscribed('origin-check', 1);
  assert.ok((await metricSum('herald_rejected_total{reason="origin_not_allowed"}')) >= 2);
});

test('a node that drains makes its socket.io clients reconnect (the transport ends, not a server disconnect)', async () => {
  // The last test: it stops a node (the only one, or the cluster's second).
  const target = nodes[nodes.length - 1];
  const clients = [
    newSioSocket(target, { version: 4, transports: ['websocket'], label: 'ws4' }),
    newSioSocket(target, { version: 2, transports: ['websocket'], label: 'ws2' }),
    newSioSocket(target, { version: 4, transports: ['polling'], label: 'poll4' }),
    newSioSocket(target, { version: 2, transports: ['polling'], label: 'poll2' }),
  ];
  for (const c of clients) await c.probe.connected();
  const stopped = target.stop();
  for (const c of clients) {
    const reason = await c.probe.closes.wait(() => true, 15000);
    assert.match(reason, /^transport (close|error)$/, `${c.probe.closes.label}: ${reason}`);
  }
  await stopped;
});
