// Every refusal a real client can run into, as pusher-js, Echo and the Node SDK see it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { APPS, WRONG_SECRET } from '../lib/herald.js';
import { startBackend, sdkFor } from '../lib/backend.js';
import { newEcho, newPusher, Log, marker, uniq } from '../lib/clients.js';
import { startStack } from '../lib/stack.js';

let stack;
const backends = {};
before(async () => {
  stack = await startStack();
  for (const name of ['noclient', 'ratelimit', 'quota', 'disabled']) {
    backends[name] = await startBackend({ app: APPS[name], herald: stack.herald });
  }
});
after(async () => {
  await stack?.stop();
  for (const b of Object.values(backends)) await b.close();
});

const echoOf = (app, user, label) =>
  newEcho(stack.herald, APPS[app], { backend: app === 'main' ? stack.backend : backends[app], user, label });
const succeeded = (probe, channel) => probe.waitFrame('pusher_internal:subscription_succeeded', channel);

test('bad auth signature: pusher:error 4009 + subscription_error (Echo .error()), socket stays', async () => {
  const { echo, pusher, probe } = echoOf('main', 1);
  const errors = new Log('Echo .error()');
  const subscribedCb = new Log('subscribed');
  const name = uniq('badsig.');
  echo
    .private(name)
    .subscribed(() => subscribedCb.push(true))
    .error((e) => errors.push(e));
  const expected = { type: 'AuthError', error: 'Invalid signature', status: 401 };
  assert.deepEqual(await errors.wait(), expected);
  assert.deepEqual(
    probe.frames.filter((f) => f.event.startsWith('pusher')),
    [
      { event: 'pusher:error', data: { code: 4009, message: 'Invalid signature' } },
      { event: 'pusher:subscription_error', channel: `private-${name}`, data: expected },
    ],
  );
  assert.deepEqual(probe.errors.items, [{ type: 'PusherError', data: { code: 4009, message: 'Invalid signature' } }]);

  // Presence too; and the connection is untouched: other subscriptions keep working.
  const room = uniq('badsig.');
  const roomErrors = new Log('presence .error()');
  echo.join(room).error((e) => roomErrors.push(e));
  assert.deepEqual(await roomErrors.wait(), expected);
  const ok = uniq('fine.');
  const got = new Log('fine');
  echo.private(ok).listen('.works', (d) => got.push(d));
  await succeeded(probe, `private-${ok}`);
  await stack.sdk.trigger(`private-${ok}`, 'works', { yes: true });
  assert.deepEqual(await got.wait(), { yes: true });
  assert.deepEqual(subscribedCb.items, []);
  assert.equal(pusher.connection.state, 'connected');
  assert.deepEqual(
    probe.states.items.map((s) => s.current),
    ['connected'],
  );
  const info = await stack.sdk.get({ path: `/channels/private-${name}` }).then((r) => r.json());
  assert.deepEqual(info, { occupied: false });
});

test('client event on a public channel: pusher:error 4301, not relayed, socket stays', async () => {
  const name = uniq('public-chat.');
  const sender = newPusher(stack.herald, APPS.main, { label: 'sender' });
  const other = newPusher(stack.herald, APPS.main, { label: 'other' });
  const ch = sender.pusher.subscribe(name);
  other.pusher.subscribe(name);
  await succeeded(sender.probe, name);
  await succeeded(other.probe, name);
  assert.equal(ch.trigger('client-typing', { name: 'Ann' }), true);
  const err = await sender.probe.waitFrame('pusher:error');
  assert.deepEqual(err, {
    event: 'pusher:error',
    data: { code: 4301, message: 'Client events are only allowed on private and presence channels' },
  });
  await marker(stack.sdk, name, [other.probe, sender.probe]);
  assert.deepEqual(other.probe.framesOf('client-typing'), []);
  assert.equal(sender.pusher.connection.state, 'connected');
});

test('client event while client events are off for the app: pusher:error 4301', async () => {
  const name = uniq('chat.');
  const ann = echoOf('noclient', 1, 'ann');
  const bob = echoOf('noclient', 2, 'bob');
  const bobGot = new Log('bob whispers');
  ann.echo.private(name);
  bob.echo.private(name).listenForWhisper('typing', (d) => bobGot.push(d));
  await succeeded(ann.probe, `private-${name}`);
  await succeeded(bob.probe, `private-${name}`);
  ann.echo.private(name).whisper('typing', { name: 'Ann' });
  const err = await ann.probe.waitFrame('pusher:error');
  assert.deepEqual(err.data, { code: 4301, message: 'Client events are not enabled for this app' });
  await marker(sdkFor(stack.herald, APPS.noclient), `private-${name}`, [bob.probe, ann.probe]);
  assert.deepEqual(bobGot.items, []);
  assert.equal(ann.pusher.connection.state, 'connected');
});

test('rate-limited client events: the excess is refused with 4301, the rest relayed', async () => {
  // ratelimit app: 2 client events per second per connection (bursts of 2).
  const name = uniq('chat.');
  const ann = echoOf('ratelimit', 1, 'ann');
  const bob = echoOf('ratelimit', 2, 'bob');
  const bobGot = new Log('bob whispers');
  ann.echo.private(name);
  bob.echo.private(name).listenForWhisper('typing', (d) => bobGot.push(d));
  await succeeded(ann.probe, `private-${name}`);
  await succeeded(bob.probe, `private-${name}`);
  for (let i = 0; i < 6; i++) ann.echo.private(name).whisper('typing', { i });
  const refusals = await ann.probe.frames.waitCount(4, (f) => f.event === 'pusher:error');
  for (const r of refusals) {
    assert.deepEqual(r.data, { code: 4301, message: 'Client event rate limit exceeded' });
  }
  await marker(sdkFor(stack.herald, APPS.ratelimit), `private-${name}`, [bob.probe, ann.probe]);
  assert.deepEqual(bobGot.items, [{ i: 0 }, { i: 1 }]);
  assert.equal(ann.probe.framesOf('pusher:error').length, 4);
  assert.equal(ann.pusher.connection.state, 'connected');
});

test('client event larger than max_event_data_bytes: pusher:error 4301', async () => {
  const name = uniq('chat.');
  const ann = echoOf('main', 1, 'ann');
  const bob = echoOf('main', 2, 'bob');
  const bobGot = new Log('bob whispers');
  ann.echo.private(name);
  bob.echo.private(name).listenForWhisper('paste', (d) => bobGot.push(d));
  await succeeded(ann.probe, `private-${name}`);
  await succeeded(bob.probe, `private-${name}`);
  ann.echo.private(name).whisper('paste', { text: 'x'.repeat(10300) });
  const err = await ann.probe.waitFrame('pusher:error');
  assert.deepEqual(err.data, { code: 4301, message: 'Client event data is too large' });
  ann.echo.private(name).whisper('paste', { text: 'small' });
  assert.deepEqual(await bobGot.wait(), { text: 'small' });
  assert.deepEqual(bobGot.items, [{ text: 'small' }]);
});

async function refusedAtConnect(app, code, message) {
  const { pusher, probe } = newPusher(stack.herald, app);
  const err = await probe.errors.wait((e) => e.error?.data?.code === code || e.data?.code === code, 10000, `error ${code}`);
  await probe.states.wait((s) => s.current === 'disconnected');
  // pusher-js got the handshake error and gave up ("refused"): no reconnect.
  assert.deepEqual(err, { type: 'WebSocketError', error: { type: 'PusherError', data: { code, message } } });
  assert.deepEqual(probe.states.items, [{ previous: 'connecting', current: 'disconnected' }]);
  assert.equal(pusher.connection.socket_id, undefined);
  return { pusher, probe };
}

test('unknown app key: 4001, pusher-js gives up', async () => {
  await refusedAtConnect({ key: 'no-such-key' }, 4001, 'App key no-such-key does not exist');
});

test('disabled app: 4003 on the socket, 403 on the REST API', async () => {
  await refusedAtConnect(APPS.disabled, 4003, 'App is disabled');
  await assert.rejects(sdkFor(stack.herald, APPS.disabled).trigger('news', 'x', {}), (e) => {
    assert.equal(e.status, 403);
    return true;
  });
});

test('over the connection quota: the third connection gets 4004', async () => {
  const first = newPusher(stack.herald, APPS.quota, { label: 'first' });
  const second = newPusher(stack.herald, APPS.quota, { label: 'second' });
  await first.probe.connected();
  await second.probe.connected();
  await refusedAtConnect(APPS.quota, 4004, 'Application is over connection quota');
  for (const c of [first, second]) {
    await c.probe.roundTrip();
    assert.equal(c.pusher.connection.state, 'connected');
  }
});

test('REST: wrong signature (wrong secret, wrong key) → 401', async () => {
  const wrong = sdkFor(stack.herald, { ...APPS.main, secret: WRONG_SECRET });
  await assert.rejects(wrong.trigger('news', 'x', {}), (e) => {
    assert.equal(e.status, 401);
    assert.match(e.body, /signature/i);
    return true;
  });
  await assert.rejects(wrong.get({ path: '/channels' }), (e) => e.status === 401);
  const otherKey = sdkFor(stack.herald, { ...APPS.main, key: APPS.noclient.key });
  await assert.rejects(otherKey.trigger('news', 'x', {}), (e) => e.status === 401);
});

test('REST: stale timestamp (client clock 11 minutes behind) → 401', async () => {
  const realNow = Date.now;
  Date.now = () => realNow() - 660 * 1000;
  let call;
  try {
    call = stack.sdk.trigger('news', 'x', {});
  } finally {
    Date.now = realNow;
  }
  await assert.rejects(call, (e) => {
    assert.equal(e.status, 401);
    assert.match(e.body, /timestamp/i);
    return true;
  });
  // The same call with the right clock goes through.
  assert.deepEqual(await stack.sdk.trigger('news', 'x', {}).then((r) => r.json()), {});
});

test('REST: oversized payload → 413; too many channels / batch items → 400', async () => {
  const name = uniq('big.');
  const c = newPusher(stack.herald, APPS.main);
  c.pusher.subscribe(name);
  await succeeded(c.probe, name);
  // A string goes out as it is: 10 241 bytes > the 10 240 default.
  await assert.rejects(stack.sdk.trigger(name, 'big', 'x'.repeat(10241)), (e) => {
    assert.equal(e.status, 413);
    // The hosted service's wording, which applications match on.
    assert.match(e.body, /The data content of this event exceeds the allowed maximum \(10240 bytes\)/);
    return true;
  });
  // Exactly at the limit is fine.
  await stack.sdk.trigger(name, 'fits', 'x'.repeat(10240));
  const fits = await c.probe.waitFrame('fits', name);
  assert.equal(fits.data, 'x'.repeat(10240));
  assert.deepEqual(c.probe.framesOf('big'), []);

  // 101 channels: the SDK's trigger() refuses client-side, so post the body through the
  // SDK's signed post() as another SDK would.
  const channels = Array.from({ length: 101 }, (_, i) => `${name}-${i}`);
  assert.throws(() => stack.sdk.trigger(channels, 'x', {}), /more than 100 channels/);
  await assert.rejects(stack.sdk.post({ path: '/events', body: { name: 'x', data: '{}', channels } }), (e) => {
    assert.equal(e.status, 400);
    return true;
  });
  await stack.sdk.post({ path: '/events', body: { name: 'x', data: '{}', channels: channels.slice(0, 100) } });

  const batch = Array.from({ length: 11 }, (_, i) => ({ channel: name, name: 'b', data: { i } }));
  await assert.rejects(stack.sdk.triggerBatch(batch), (e) => {
    assert.equal(e.status, 400);
    assert.match(e.body, /Batch too large \(11 > 10\)/);
    return true;
  });
  await marker(stack.sdk, name, c.probe);
  assert.deepEqual(c.probe.framesOf('b'), [], 'a refused batch publishes nothing');
});

/** A signed `POST path` of `body` as the SDKs sign it, sent with Node's own http client. */
function rawSignedPost(herald, app, path, body) {
  const params = {
    auth_key: app.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    body_md5: crypto.createHash('md5').update(body).digest('hex'),
  };
  const query = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
  const signature = crypto.createHmac('sha256', app.secret).update(`POST\n${path}\n${query}`).digest('hex');
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: herald.host,
        port: herald.port,
        method: 'POST',
        path: `${path}?${query}&auth_signature=${signature}`,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

test('REST: a 5 MB signed body gets a readable 413, not EPIPE (Node http client and the SDK)', async () => {
  const app = APPS.main;
  const data = 'x'.repeat(5 * 1024 * 1024);
  const body = JSON.stringify({ name: 'huge', channel: uniq('huge.'), data });
  const res = await rawSignedPost(stack.herald, app, `/apps/${app.id}/events`, body);
  assert.equal(res.status, 413);
  assert.match(JSON.parse(res.text).error, /larger than 1048576 bytes/);
  // The SDK reports the status too, rather than a network error.
  await assert.rejects(stack.sdk.trigger(uniq('huge.'), 'huge', data), (e) => {
    assert.equal(e.status, 413, `${e}`);
    return true;
  });
  // And the server is fine afterwards.
  assert.deepEqual(await stack.sdk.trigger('news', 'after', {}).then((r) => r.json()), {});
});
