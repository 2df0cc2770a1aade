// Laravel Echo 2 (broadcaster 'pusher', pusher-js 8) against Herald, with events sent by the
// `pusher` Node SDK exactly as Laravel's PusherBroadcaster sends them.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { APPS } from '../lib/herald.js';
import { USERS } from '../lib/backend.js';
import { newEcho, newPusher, Log, marker, uniq } from '../lib/clients.js';
import { startStack } from '../lib/stack.js';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const echoAs = (user, label) => newEcho(stack.herald, APPS.main, { backend: stack.backend, user, label });
const succeeded = (probe, channel) => probe.waitFrame('pusher_internal:subscription_succeeded', channel);

test('Echo.channel().listen(): public channel, App\\Events namespace', async () => {
  const { echo, probe } = echoAs(undefined, 'guest');
  const name = uniq('orders.');
  const got = new Log('OrderShipped');
  echo.channel(name).listen('OrderShipped', (d) => got.push(d));
  await succeeded(probe, name);
  // Laravel: broadcast(new OrderShipped($order)) on a public Channel.
  await stack.sdk.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 1, status: 'shipped' } });
  assert.deepEqual(await got.wait(), { order: { id: 1, status: 'shipped' } });
  const frame = probe.framesOf('App\\Events\\OrderShipped', name)[0];
  assert.deepEqual(frame, {
    event: 'App\\Events\\OrderShipped',
    channel: name,
    data: { order: { id: 1, status: 'shipped' } },
  });
});

test('Echo.private().listen(): authorized through /broadcasting/auth, default namespace', async () => {
  const { echo, probe } = echoAs(1);
  const name = uniq('orders.');
  const got = new Log('private OrderShipped');
  const subscribed = new Log('subscribed');
  echo
    .private(name)
    .subscribed(() => subscribed.push(true))
    .listen('OrderShipped', (d) => got.push(d));
  await subscribed.wait();
  assert.deepEqual(probe.framesOf('pusher_internal:subscription_succeeded', `private-${name}`), [
    { event: 'pusher_internal:subscription_succeeded', channel: `private-${name}`, data: {} },
  ]);
  // pusher-js posted socket_id + channel_name, with Echo's CSRF header.
  const req = stack.backend.authRequests.find((r) => r.params.channel_name === `private-${name}`);
  assert.deepEqual(req.params, { socket_id: echo.socketId(), channel_name: `private-${name}` });
  assert.equal(req.headers['x-csrf-token'], 'compat-csrf-token');

  await stack.sdk.trigger(`private-${name}`, 'App\\Events\\OrderShipped', { order: { id: 2 } });
  assert.deepEqual(await got.wait(), { order: { id: 2 } });
});

test(".listen('.server.created'): broadcastAs names bypass the namespace", async () => {
  const { echo, probe } = echoAs(1);
  const name = uniq('servers.');
  const got = new Log('server.created');
  const namespaced = new Log('namespaced');
  echo
    .private(name)
    .listen('.server.created', (d) => got.push(d))
    .listen('server.created', (d) => namespaced.push(d)); // binds App\Events\server\created
  await succeeded(probe, `private-${name}`);
  await stack.sdk.trigger(`private-${name}`, 'server.created', { server: { id: 9, name: 'web-1' } });
  assert.deepEqual(await got.wait(), { server: { id: 9, name: 'web-1' } });
  assert.deepEqual(probe.framesOf('server.created', `private-${name}`), [
    { event: 'server.created', channel: `private-${name}`, data: { server: { id: 9, name: 'web-1' } } },
  ]);
  assert.deepEqual(namespaced.items, []);
});

test('Echo.join(): here / joining / leaving, one user in two tabs', async () => {
  const room = uniq('room.');
  const channel = `presence-${room}`;
  const ann = echoAs(1, 'ann');
  const annHere = new Log('ann here');
  const annJoining = new Log('ann joining');
  const annLeaving = new Log('ann leaving');
  ann.echo
    .join(room)
    .here((users) => annHere.push(users))
    .joining((u) => annJoining.push(u))
    .leaving((u) => annLeaving.push(u));
  assert.deepEqual(await annHere.wait(), [USERS[1]]);
  assert.deepEqual(ann.probe.framesOf('pusher_internal:subscription_succeeded', channel), [
    {
      event: 'pusher_internal:subscription_succeeded',
      channel,
      data: { presence: { ids: ['1'], hash: { 1: USERS[1] }, count: 1 } },
    },
  ]);

  // Bob, first tab.
  const bob1 = echoAs(2, 'bob tab 1');
  const bob1Here = new Log('bob1 here');
  const bob1Joining = new Log('bob1 joining');
  bob1.echo
    .join(room)
    .here((users) => bob1Here.push(users))
    .joining((u) => bob1Joining.push(u));
  assert.deepEqual(await bob1Here.wait(), [USERS[1], USERS[2]]);
  assert.deepEqual(await annJoining.wait(), USERS[2]);
  assert.deepEqual(ann.probe.framesOf('pusher_internal:member_added', channel), [
    { event: 'pusher_internal:member_added', channel, data: { user_id: '2', user_info: USERS[2] } },
  ]);

  // Bob, second tab: same user, so nobody sees a second "joining".
  const bob2 = echoAs(2, 'bob tab 2');
  const bob2Here = new Log('bob2 here');
  bob2.echo.join(room).here((users) => bob2Here.push(users));
  assert.deepEqual(await bob2Here.wait(), [USERS[1], USERS[2]]);
  await marker(stack.sdk, channel, [ann.probe, bob1.probe]);
  assert.equal(annJoining.items.length, 1);
  assert.deepEqual(bob1Joining.items, []);
  assert.equal(ann.pusher.channel(channel).members.count, 2);
  const users = await stack.sdk.get({ path: `/channels/${channel}/users` }).then((r) => r.json());
  assert.deepEqual(users, { users: [{ id: '1' }, { id: '2' }] });

  // Bob closes tab 1 (Echo.leave): Bob is still here through tab 2.
  bob1.echo.leave(room);
  await bob1.probe.roundTrip();
  await marker(stack.sdk, channel, ann.probe);
  assert.deepEqual(annLeaving.items, []);
  assert.deepEqual(ann.probe.framesOf('pusher_internal:member_removed', channel), []);

  // Bob closes tab 2 (the socket goes away): now Bob leaves.
  bob2.echo.disconnect();
  assert.deepEqual(await annLeaving.wait(), USERS[2]);
  assert.deepEqual(ann.probe.framesOf('pusher_internal:member_removed', channel), [
    { event: 'pusher_internal:member_removed', channel, data: { user_id: '2' } },
  ]);
  assert.equal(ann.pusher.channel(channel).members.count, 1);
});

test('whisper / listenForWhisper: relayed to others, never echoed to the sender', async () => {
  const name = uniq('chat.');
  const ann = echoAs(1, 'ann');
  const bob = echoAs(2, 'bob');
  const annGot = new Log('ann whispers');
  const bobGot = new Log('bob whispers');
  ann.echo.private(name).listenForWhisper('typing', (d) => annGot.push(d));
  bob.echo.private(name).listenForWhisper('typing', (d) => bobGot.push(d));
  await succeeded(ann.probe, `private-${name}`);
  await succeeded(bob.probe, `private-${name}`);

  ann.echo.private(name).whisper('typing', { name: 'Ann', typing: true });
  assert.deepEqual(await bobGot.wait(), { name: 'Ann', typing: true });
  assert.deepEqual(bob.probe.framesOf('client-typing', `private-${name}`), [
    { event: 'client-typing', channel: `private-${name}`, data: { name: 'Ann', typing: true } },
  ]);
  await marker(stack.sdk, `private-${name}`, ann.probe);
  assert.deepEqual(annGot.items, []);
  assert.deepEqual(ann.probe.framesOf('client-typing'), []);
  assert.deepEqual(ann.probe.errors.items, []);

  // On a presence channel the relayed event carries the sender's user_id (pusher-js metadata).
  const room = uniq('room.');
  const bobRoom = new Log('bob room whispers');
  const annRoom = new Log('ann room whispers');
  ann.echo.join(room).listenForWhisper('typing', (d, meta) => annRoom.push([d, meta]));
  bob.echo.join(room).listenForWhisper('typing', (d, meta) => bobRoom.push([d, meta]));
  await succeeded(ann.probe, `presence-${room}`);
  await succeeded(bob.probe, `presence-${room}`);
  bob.echo.join(room).whisper('typing', { name: 'Bob' });
  assert.deepEqual(await annRoom.wait(), [{ name: 'Bob' }, { user_id: '2' }]);
  assert.deepEqual(ann.probe.framesOf('client-typing', `presence-${room}`), [
    { event: 'client-typing', channel: `presence-${room}`, data: { name: 'Bob' }, user_id: '2' },
  ]);
  await marker(stack.sdk, `presence-${room}`, bob.probe);
  assert.deepEqual(bobRoom.items, []);
});

test('.notification() on App.User.{id}', async () => {
  const { echo, probe } = echoAs(1);
  const got = new Log('notifications');
  echo.private('App.User.1').notification((n) => got.push(n));
  await succeeded(probe, 'private-App.User.1');
  // Laravel: $user->notify(new InvoicePaid($invoice)) with the broadcast channel.
  const payload = {
    invoice_id: 42,
    amount: '99.50',
    id: '8f1b4e4e-6f7c-4c7a-9d8e-0a4f4a1f0c2b',
    type: 'App\\Notifications\\InvoicePaid',
  };
  await stack.sdk.trigger('private-App.User.1', 'Illuminate\\Notifications\\Events\\BroadcastNotificationCreated', payload);
  assert.deepEqual(await got.wait(), payload);
  assert.deepEqual(probe.framesOf('Illuminate\\Notifications\\Events\\BroadcastNotificationCreated'), [
    {
      event: 'Illuminate\\Notifications\\Events\\BroadcastNotificationCreated',
      channel: 'private-App.User.1',
      data: payload,
    },
  ]);
});

test('Echo.leave(): unsubscribes every variant; nothing more arrives; others see leaving', async () => {
  const name = uniq('project.');
  const ann = echoAs(1, 'ann');
  const bob = echoAs(2, 'bob');
  const got = new Log('ann events');
  ann.echo.channel(name).listen('.updated', (d) => got.push(['public', d]));
  ann.echo.private(name).listen('.updated', (d) => got.push(['private', d]));
  ann.echo.join(name).listen('.updated', (d) => got.push(['presence', d]));
  const bobLeaving = new Log('bob sees leaving');
  bob.echo.join(name).leaving((u) => bobLeaving.push(u));
  for (const c of [name, `private-${name}`, `presence-${name}`]) await succeeded(ann.probe, c);
  await succeeded(bob.probe, `presence-${name}`);
  // A channel Ann stays on, for the marker.
  const stay = uniq('stay.');
  ann.echo.channel(stay);
  await succeeded(ann.probe, stay);

  ann.echo.leave(name);
  await ann.probe.roundTrip();
  assert.deepEqual(await bobLeaving.wait(), USERS[1]);
  for (const c of [name, `private-${name}`, `presence-${name}`]) {
    await stack.sdk.trigger(c, 'updated', { c });
  }
  await marker(stack.sdk, stay, ann.probe);
  assert.deepEqual(got.items, []);
  assert.deepEqual(ann.probe.framesOf('updated'), []);
  for (const c of [name, `private-${name}`]) {
    const info = await stack.sdk.get({ path: `/channels/${c}` }).then((r) => r.json());
    assert.deepEqual(info, { occupied: false }, c);
  }
  const info = await stack.sdk
    .get({ path: `/channels/presence-${name}`, params: { info: 'user_count' } })
    .then((r) => r.json());
  assert.deepEqual(info, { occupied: true, user_count: 1 });
});

test('toOthers(): the X-Socket-ID socket is excluded', async () => {
  const name = uniq('orders.');
  const ann = echoAs(1, 'ann');
  const bob = echoAs(2, 'bob');
  const annGot = new Log('ann');
  const bobGot = new Log('bob');
  ann.echo.private(name).listen('OrderShipped', (d) => annGot.push(d));
  bob.echo.private(name).listen('OrderShipped', (d) => bobGot.push(d));
  await succeeded(ann.probe, `private-${name}`);
  await succeeded(bob.probe, `private-${name}`);
  // Laravel: broadcast(new OrderShipped($o))->toOthers() in a request from Ann's page,
  // whose X-Socket-ID header is Echo.socketId().
  const socketId = ann.echo.socketId();
  await stack.sdk.trigger(`private-${name}`, 'App\\Events\\OrderShipped', { order: { id: 3 } }, { socket_id: socketId });
  assert.deepEqual(await bobGot.wait(), { order: { id: 3 } });
  await marker(stack.sdk, `private-${name}`, ann.probe);
  assert.deepEqual(annGot.items, []);
  assert.deepEqual(ann.probe.framesOf('App\\Events\\OrderShipped'), []);
});

test('Echo.encryptedPrivate(): end-to-end encrypted round trip (encryptionMasterKeyBase64)', async () => {
  const name = uniq('vault.');
  const channel = `private-encrypted-${name}`;
  const { echo, probe } = echoAs(1);
  const got = new Log('secret');
  echo.encryptedPrivate(name).listen('.secret.shared', (d) => got.push(d));
  await succeeded(probe, channel);
  // The auth endpoint handed out the channel's shared secret; Herald never sees it.
  const req = stack.backend.authRequests.find((r) => r.params.channel_name === channel);
  assert.ok(req);
  const secret = { pin: '1234', note: 'für Ann ✓' };
  await stack.sdk.trigger(channel, 'secret.shared', secret);
  assert.deepEqual(await got.wait(), secret);
  // On the wire: only nonce + ciphertext.
  const [frame] = probe.framesOf('secret.shared', channel);
  assert.deepEqual(Object.keys(frame.data).sort(), ['ciphertext', 'nonce']);
  assert.equal(Buffer.from(frame.data.nonce, 'base64').length, 24);
  assert.ok(!JSON.stringify(frame).includes('1234'));
});

test("broadcaster 'reverb' (Laravel Reverb apps pointed at Herald): same client path", async () => {
  const { echo, probe } = newEcho(stack.herald, APPS.main, { backend: stack.backend, user: 1, broadcaster: 'reverb' });
  const name = uniq('reverb.');
  const got = new Log('reverb');
  echo.private(name).listen('OrderShipped', (d) => got.push(d));
  await succeeded(probe, `private-${name}`);
  await stack.sdk.trigger(`private-${name}`, 'App\\Events\\OrderShipped', { order: { id: 5 } });
  assert.deepEqual(await got.wait(), { order: { id: 5 } });
  assert.equal(echo.connectionStatus(), 'connected');
});
