// The `pusher` Node SDK (5.x) against Herald's REST API, observed through pusher-js
// clients: multi-channel triggers, batch_events, info on publish, channel and user queries,
// signin + sendToUser + terminate_connections, cache channels and subscription_count.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { APPS } from '../lib/herald.js';
import { newPusher, newEcho, Log, uniq } from '../lib/clients.js';
import { startStack } from '../lib/stack.js';

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const client = (user, label) => newPusher(stack.herald, APPS.main, { backend: stack.backend, user, label });
const json = (p) => p.then((r) => r.json());
async function subscribed(c, ...names) {
  for (const n of names) c.pusher.subscribe(n);
  for (const n of names) await c.probe.waitFrame('pusher_internal:subscription_succeeded', n);
}

test('trigger to several channels: each subscriber gets the event once, response {}', async () => {
  const [a, b, c] = [uniq('multi-a.'), uniq('multi-b.'), `private-${uniq('multi-c.')}`];
  const one = client(1, 'one');
  const two = client(2, 'two');
  await subscribed(one, a, b);
  await subscribed(two, b, c);
  const res = await json(stack.sdk.trigger([a, b, c], 'App\\Events\\Multi', { n: 1 }));
  assert.deepEqual(res, {});
  await one.probe.waitFrame('App\\Events\\Multi', b);
  await two.probe.waitFrame('App\\Events\\Multi', c);
  await Promise.all([stack.sdk.trigger(a, 'end', {}), stack.sdk.trigger(c, 'end', {})]);
  await one.probe.waitFrame('end', a);
  await two.probe.waitFrame('end', c);
  const seen = (p) => p.framesOf('App\\Events\\Multi').map((f) => [f.channel, f.data]);
  assert.deepEqual(seen(one.probe).sort(), [
    [a, { n: 1 }],
    [b, { n: 1 }],
  ]);
  assert.deepEqual(seen(two.probe).sort(), [
    [b, { n: 1 }],
    [c, { n: 1 }],
  ]);
});

test('pusher-http-php request shape: single `channel`, escaped slashes, socket_id', async () => {
  // Laravel's PHP SDK sends `channel` (a string) when there is one channel, and PHP's
  // json_encode escapes "/" as "\/" in data; the data must reach clients as sent.
  const name = `private-${uniq('php.')}`;
  const ann = client(1, 'ann');
  const bob = client(2, 'bob');
  await subscribed(ann, name);
  await subscribed(bob, name);
  const data = '{"order":{"id":1,"url":"https:\\/\\/shop.test\\/orders\\/1"}}';
  const res = await json(
    stack.sdk.post({
      path: '/events',
      body: { name: 'App\\Events\\OrderShipped', data, channel: name, socket_id: ann.probe.socketId },
    }),
  );
  assert.deepEqual(res, {});
  const frame = await bob.probe.waitFrame('App\\Events\\OrderShipped', name);
  assert.deepEqual(frame.data, { order: { id: 1, url: 'https://shop.test/orders/1' } });
  await stack.sdk.trigger(name, 'end', {});
  await ann.probe.waitFrame('end', name);
  assert.deepEqual(ann.probe.framesOf('App\\Events\\OrderShipped'), []);
});

test('batch_events: every event on its channel, in order; info per item', async () => {
  const pub = uniq('batch.');
  const room = `presence-${uniq('batch-room.')}`;
  const c = client(1);
  await subscribed(c, pub, room);
  const res = await json(
    stack.sdk.triggerBatch([
      { channel: pub, name: 'first', data: { i: 1 } },
      { channel: room, name: 'second', data: 'plain text' },
      { channel: pub, name: 'third', data: { i: 3 } },
    ]),
  );
  assert.deepEqual(res, {});
  await c.probe.waitFrame('third', pub);
  const got = c.probe.frames.filter((f) => ['first', 'second', 'third'].includes(f.event));
  assert.deepEqual(got, [
    { event: 'first', channel: pub, data: { i: 1 } },
    { event: 'second', channel: room, data: 'plain text' },
    { event: 'third', channel: pub, data: { i: 3 } },
  ]);

  const withInfo = await json(
    stack.sdk.triggerBatch([
      { channel: room, name: 'x', data: {}, info: 'user_count' },
      { channel: pub, name: 'x', data: {} },
      { channel: pub, name: 'x', data: {}, info: 'subscription_count' },
      // As pusher-http-php's acceptance tests ask: both counts of a presence channel.
      { channel: room, name: 'x', data: {}, info: 'user_count,subscription_count' },
    ]),
  );
  assert.deepEqual(withInfo, {
    batch: [{ user_count: 1 }, {}, { subscription_count: 1 }, { user_count: 1, subscription_count: 1 }],
  });
});

test('info on publish: user_count and subscription_count for presence, subscription_count for others', async () => {
  const pub = uniq('info.');
  const room = `presence-${uniq('info-room.')}`;
  const ann = client(1, 'ann');
  const bob = client(2, 'bob');
  const bob2 = client(2, 'bob tab 2');
  await subscribed(ann, pub, room);
  await subscribed(bob, pub, room);
  await subscribed(bob2, room);
  const res = await json(stack.sdk.trigger([pub, room], 'ping', {}, { info: 'user_count,subscription_count' }));
  assert.deepEqual(res.channels[pub], { subscription_count: 2 });
  // Both counts on a presence channel, as the hosted service answers (two users, three sockets).
  assert.deepEqual(res.channels[room], { user_count: 2, subscription_count: 3 });
  const single = await json(stack.sdk.trigger(pub, 'ping', {}, { info: 'subscription_count' }));
  assert.deepEqual(single, { channels: { [pub]: { subscription_count: 2 } } });
  const presence = await json(stack.sdk.trigger(room, 'ping', {}, { info: 'user_count' }));
  assert.deepEqual(presence, { channels: { [room]: { user_count: 2 } } });
});

test('channel queries: /channels (prefix, user_count), /channels/{name}, /users', async () => {
  const tag = uniq('q');
  const room = `presence-${tag}-room`;
  const priv = `private-${tag}-feed`;
  const pub = `${tag}-news`;
  const ann = client(1, 'ann');
  const bob = client(2, 'bob');
  await subscribed(ann, room, priv, pub);
  await subscribed(bob, room, pub);

  assert.deepEqual(await json(stack.sdk.get({ path: '/channels', params: { filter_by_prefix: `presence-${tag}` } })), {
    channels: { [room]: {} },
  });
  assert.deepEqual(
    await json(stack.sdk.get({ path: '/channels', params: { filter_by_prefix: `presence-${tag}`, info: 'user_count' } })),
    { channels: { [room]: { user_count: 2 } } },
  );
  assert.deepEqual(await json(stack.sdk.get({ path: '/channels', params: { filter_by_prefix: tag } })), {
    channels: { [pub]: {} },
  });
  assert.deepEqual(await json(stack.sdk.get({ path: '/channels', params: { filter_by_prefix: `private-${tag}` } })), {
    channels: { [priv]: {} },
  });
  assert.deepEqual(await json(stack.sdk.get({ path: '/channels', params: { filter_by_prefix: `nothing-${tag}` } })), {
    channels: {},
  });
  const all = await json(stack.sdk.get({ path: '/channels' }));
  for (const c of [room, priv, pub]) assert.deepEqual(all.channels[c], {}, c);

  assert.deepEqual(await json(stack.sdk.get({ path: `/channels/${pub}`, params: { info: 'subscription_count' } })), {
    occupied: true,
    subscription_count: 2,
  });
  assert.deepEqual(await json(stack.sdk.get({ path: `/channels/${priv}` })), { occupied: true });
  assert.deepEqual(await json(stack.sdk.get({ path: `/channels/${room}`, params: { info: 'user_count' } })), {
    occupied: true,
    user_count: 2,
  });
  assert.deepEqual(await json(stack.sdk.get({ path: `/channels/${tag}-empty` })), { occupied: false });
  assert.deepEqual(await json(stack.sdk.get({ path: `/channels/${room}/users` })), {
    users: [{ id: '1' }, { id: '2' }],
  });
  assert.deepEqual(await json(stack.sdk.get({ path: `/channels/presence-${tag}-empty/users` })), { users: [] });

  // Refusals the SDK surfaces as RequestError with Herald's status and body.
  await assert.rejects(stack.sdk.get({ path: `/channels/${pub}`, params: { info: 'user_count' } }), (e) => {
    assert.equal(e.status, 400);
    assert.deepEqual(JSON.parse(e.body), {
      error: 'Cannot retrieve the user count unless the channel is a presence channel',
    });
    return true;
  });
  await assert.rejects(stack.sdk.get({ path: `/channels/${pub}/users` }), (e) => e.status === 400);
});

test('signin(), sendToUser and terminate_connections', async () => {
  const ann1 = client(1, 'ann tab 1');
  const ann2 = client(1, 'ann tab 2');
  const bob = client(2, 'bob');
  const member = client(1, 'ann presence-only (not signed in)');
  const room = `presence-${uniq('term.')}`;
  await subscribed(member, room);

  const welcomed = new Log('ann1 user events');
  ann1.pusher.user.bind('welcome', (d) => welcomed.push(d));
  for (const c of [ann1, ann2, bob]) c.pusher.signin();
  for (const [c, id] of [
    [ann1, '1'],
    [ann2, '1'],
    [bob, '2'],
  ]) {
    const ok = await c.probe.waitFrame('pusher:signin_success');
    assert.deepEqual(ok, {
      event: 'pusher:signin_success',
      data: { user_data: JSON.stringify({ id, user_info: { name: id === '1' ? 'Ann' : 'Bob' } }) },
    });
    await c.probe.waitFrame('pusher_internal:subscription_succeeded', `#server-to-user-${id}`);
  }
  assert.equal(ann1.pusher.user.user_data.id, '1');

  // sendToUser reaches every socket signed in as the user, through pusher.user.bind().
  assert.deepEqual(await json(stack.sdk.sendToUser('1', 'welcome', { msg: 'hi Ann' })), {});
  assert.deepEqual(await welcomed.wait(), { msg: 'hi Ann' });
  await ann2.probe.waitFrame('welcome', '#server-to-user-1');
  await stack.sdk.sendToUser('2', 'welcome', { msg: 'hi Bob' });
  await bob.probe.waitFrame('welcome', '#server-to-user-2');
  assert.deepEqual(welcomed.items, [{ msg: 'hi Ann' }]);

  // terminate_connections: Ann's signed-in sockets are closed; pusher-js does not come back.
  assert.deepEqual(await json(stack.sdk.terminateUserConnections('1')), {});
  for (const c of [ann1, ann2]) {
    // pusher:error 4009, then close 4009 (pusher-js: "refused", no reconnect).
    const frame = await c.probe.waitFrame('pusher:error', undefined, 10000, (f) => f.data?.code === 4009);
    assert.equal(typeof frame.data.message, 'string');
    assert.ok(frame.data.message.length > 0);
    await c.probe.states.wait((s) => s.current === 'disconnected');
    assert.ok(c.probe.errors.filter((e) => e.type === 'PusherError' && e.data?.code === 4009).length >= 1);
  }
  // Bob and the presence member with user id 1 (not signed in) keep their connections.
  for (const c of [bob, member]) {
    await c.probe.roundTrip();
    assert.equal(c.pusher.connection.state, 'connected');
    assert.deepEqual(c.probe.errors.items, []);
  }
  assert.deepEqual(await json(stack.sdk.get({ path: `/channels/${room}/users` })), { users: [{ id: '1' }] });
  assert.deepEqual(ann1.probe.states.items.map((s) => s.current), ['connected', 'disconnected']);
});

test('presence through user authentication (pusher-js >= 7.4, no channel_data)', async () => {
  const room = `presence-signedin.${uniq('r')}`;
  const ann = client(1, 'ann');
  const bob = client(2, 'bob');
  for (const c of [ann, bob]) {
    c.pusher.signin();
    await c.probe.waitFrame('pusher:signin_success');
  }
  await subscribed(ann, room);
  const [ok] = ann.probe.framesOf('pusher_internal:subscription_succeeded', room);
  assert.deepEqual(ok.data, { presence: { ids: ['1'], hash: { 1: { name: 'Ann' } }, count: 1 } });
  await subscribed(bob, room);
  const added = await ann.probe.waitFrame('pusher_internal:member_added', room);
  assert.deepEqual(added.data, { user_id: '2', user_info: { name: 'Bob' } });
  assert.equal(ann.pusher.channel(room).members.count, 2);
  assert.deepEqual(ann.pusher.channel(room).members.get('2'), { id: '2', info: { name: 'Bob' } });
  // A socket that is not signed in cannot use such an auth: pusher-js itself refuses it
  // (AuthError) and never subscribes; the roster stays Ann and Bob.
  const guest = client(3, 'cy, not signed in');
  const errors = new Log('cy subscription errors');
  guest.pusher.subscribe(room).bind('pusher:subscription_error', (e) => errors.push(e));
  assert.equal((await errors.wait()).type, 'AuthError');
  await guest.probe.roundTrip();
  assert.deepEqual(guest.probe.framesOf('pusher_internal:subscription_succeeded', room), []);
  assert.deepEqual(await json(stack.sdk.get({ path: `/channels/${room}/users` })), {
    users: [{ id: '1' }, { id: '2' }],
  });
});

test('cache channels: pusher:cache_miss, then the last event replayed to new subscribers', async () => {
  const name = `cache-${uniq('prices.')}`;
  const first = client(undefined, 'first');
  const misses = new Log('cache misses');
  first.pusher.subscribe(name).bind('pusher:cache_miss', (d) => misses.push(d ?? null));
  await first.probe.waitFrame('pusher_internal:subscription_succeeded', name);
  await misses.wait();
  assert.deepEqual(first.probe.framesOf('pusher:cache_miss'), [{ event: 'pusher:cache_miss', channel: name, data: {} }]);

  await stack.sdk.trigger(name, 'price.updated', { price: 41 });
  await stack.sdk.trigger(name, 'price.updated', { price: 42 });
  await first.probe.frames.waitCount(2, (f) => f.event === 'price.updated');

  // A new subscriber gets the last event right after subscription_succeeded, no cache_miss.
  const late = client(undefined, 'late');
  const replayed = new Log('replayed');
  late.pusher.subscribe(name).bind('price.updated', (d) => replayed.push(d));
  assert.deepEqual(await replayed.wait(), { price: 42 });
  const lateFrames = late.probe.frames.filter((f) => f.channel === name);
  assert.deepEqual(lateFrames, [
    { event: 'pusher_internal:subscription_succeeded', channel: name, data: {} },
    { event: 'price.updated', channel: name, data: { price: 42 } },
  ]);
  const info = await json(stack.sdk.get({ path: `/channels/${name}`, params: { info: 'cache' } }));
  assert.equal(info.occupied, true);
  assert.equal(info.cache.data, JSON.stringify({ price: 42 }));
  assert.ok(info.cache.ttl > 0 && info.cache.ttl <= 1800, `ttl ${info.cache.ttl}`);

  // Echo on a private cache channel: cache miss first, then replay for the next socket.
  const priv = uniq('quotes.');
  const ann = newEcho(stack.herald, APPS.main, { backend: stack.backend, user: 1 });
  ann.echo.private(`cache-${priv}`);
  await ann.probe.waitFrame('pusher:cache_miss', `private-cache-${priv}`);
  await stack.sdk.trigger(`private-cache-${priv}`, 'App\\Events\\QuoteChanged', { q: 'EURUSD' });
  const bob = newEcho(stack.herald, APPS.main, { backend: stack.backend, user: 2 });
  const bobGot = new Log('bob quote');
  bob.echo.private(`cache-${priv}`).listen('QuoteChanged', (d) => bobGot.push(d));
  assert.deepEqual(await bobGot.wait(), { q: 'EURUSD' });
  assert.deepEqual(bob.probe.framesOf('pusher:cache_miss'), []);
});

test('subscription_count: pusher:subscription_count events and channel.subscriptionCount', async () => {
  const counts = await startStack({ app: APPS.counts });
  try {
    const name = uniq('count.');
    const mk = (label) => newPusher(counts.herald, APPS.counts, { label });
    const one = mk('one');
    const oneCounts = new Log('one counts');
    const ch = one.pusher.subscribe(name);
    ch.bind('pusher:subscription_count', (d) => oneCounts.push(d));
    assert.deepEqual(await oneCounts.wait(), { subscription_count: 1 });

    const two = mk('two');
    const twoCounts = new Log('two counts');
    two.pusher.subscribe(name).bind('pusher:subscription_count', (d) => twoCounts.push(d));
    assert.deepEqual(await twoCounts.wait(), { subscription_count: 2 });
    await oneCounts.waitCount(2);
    assert.deepEqual(oneCounts.items, [{ subscription_count: 1 }, { subscription_count: 2 }]);
    assert.equal(ch.subscriptionCount, 2);
    assert.deepEqual(one.probe.framesOf('pusher_internal:subscription_count', name), [
      { event: 'pusher_internal:subscription_count', channel: name, data: { subscription_count: 1 } },
      { event: 'pusher_internal:subscription_count', channel: name, data: { subscription_count: 2 } },
    ]);

    two.pusher.unsubscribe(name);
    await oneCounts.waitCount(3);
    assert.deepEqual(oneCounts.items[2], { subscription_count: 1 });
    assert.equal(ch.subscriptionCount, 1);

    // Not on presence channels; not on apps without the feature (the main app).
    const room = `presence-${uniq('count-room.')}`;
    const p = newPusher(counts.herald, APPS.counts, { backend: counts.backend, user: 1 });
    await subscribed(p, room);
    await p.probe.roundTrip();
    assert.deepEqual(p.probe.framesOf('pusher_internal:subscription_count'), []);
    const m = client(undefined, 'main app');
    const pub = uniq('nocount.');
    await subscribed(m, pub);
    await m.probe.roundTrip();
    assert.deepEqual(m.probe.framesOf('pusher_internal:subscription_count'), []);
  } finally {
    await counts.stop();
  }
});
