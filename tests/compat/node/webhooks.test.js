// Herald's webhooks as the `pusher` Node SDK verifies them (pusher.webhook(...).isValid()).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { APPS } from '../lib/herald.js';
import { newEcho, uniq } from '../lib/clients.js';
import { startStack } from '../lib/stack.js';

let stack;
before(async () => {
  stack = await startStack({
    options: (backend) => ({
      webhooks: { batch_ms: 20, vacate_delay_ms: 0, retry_initial_ms: 100 },
      apps: [{ ...APPS.main, webhooks: [{ url: `${backend.url}/webhook`, events: [] }] }],
    }),
  });
});
after(async () => {
  await stack?.stop();
});

/** Waits for a webhook carrying an event matching pred; returns [request, event]. */
async function hookWith(pred) {
  const req = await stack.backend.waitForWebhook((h) => h.body.events.some(pred));
  return [req, req.body.events.find(pred)];
}

test('webhooks pass the Node SDK verification and carry Pusher payloads', async () => {
  const room = `presence-${uniq('hooks.')}`;
  const ann = newEcho(stack.herald, APPS.main, { backend: stack.backend, user: 1 });
  const bob = newEcho(stack.herald, APPS.main, { backend: stack.backend, user: 2 });
  ann.echo.join(room.slice('presence-'.length));
  await ann.probe.waitFrame('pusher_internal:subscription_succeeded', room);

  const [occupiedReq, occupied] = await hookWith((e) => e.name === 'channel_occupied' && e.channel === room);
  assert.deepEqual(occupied, { name: 'channel_occupied', channel: room });
  const [, added] = await hookWith((e) => e.name === 'member_added' && e.channel === room);
  assert.deepEqual(added, { name: 'member_added', channel: room, user_id: '1' });

  // What the SDK checks: exact content type, key, HMAC-SHA256 of the raw body.
  assert.equal(occupiedReq.headers['content-type'], 'application/json');
  assert.equal(occupiedReq.headers['x-pusher-key'], APPS.main.key);
  const hook = stack.sdk.webhook({ headers: occupiedReq.headers, rawBody: occupiedReq.rawBody });
  assert.equal(hook.isValid(), true);
  assert.ok(hook.getEvents().some((e) => e.name === 'channel_occupied' && e.channel === room));
  assert.ok(Math.abs(hook.getTime().getTime() - Date.now()) < 60000);
  // Tampering is detected.
  const tampered = stack.sdk.webhook({ headers: occupiedReq.headers, rawBody: occupiedReq.rawBody.replace(room, `${room}x`) });
  assert.equal(tampered.isValid(), false);

  // client_event: data as a string, the sender's socket_id and (presence) user_id.
  bob.echo.join(room.slice('presence-'.length));
  await bob.probe.waitFrame('pusher_internal:subscription_succeeded', room);
  ann.echo.join(room.slice('presence-'.length)).whisper('typing', { name: 'Ann' });
  const [clientReq, clientEvent] = await hookWith((e) => e.name === 'client_event' && e.channel === room);
  assert.deepEqual(clientEvent, {
    name: 'client_event',
    channel: room,
    event: 'client-typing',
    data: JSON.stringify({ name: 'Ann' }),
    socket_id: ann.echo.socketId(),
    user_id: '1',
  });
  assert.equal(stack.sdk.webhook({ headers: clientReq.headers, rawBody: clientReq.rawBody }).isValid(), true);

  // Leaving: member_removed, then channel_vacated when the last one goes.
  bob.echo.disconnect();
  const [removedReq, removed] = await hookWith((e) => e.name === 'member_removed' && e.channel === room);
  assert.deepEqual(removed, { name: 'member_removed', channel: room, user_id: '2' });
  assert.equal(stack.sdk.webhook({ headers: removedReq.headers, rawBody: removedReq.rawBody }).isValid(), true);
  ann.echo.disconnect();
  const [vacatedReq, vacated] = await hookWith((e) => e.name === 'channel_vacated' && e.channel === room);
  assert.deepEqual(vacated, { name: 'channel_vacated', channel: room });
  assert.equal(stack.sdk.webhook({ headers: vacatedReq.headers, rawBody: vacatedReq.rawBody }).isValid(), true);

  // Every request Herald sent verifies.
  for (const h of stack.backend.webhooks) {
    assert.equal(stack.sdk.webhook({ headers: h.headers, rawBody: h.rawBody }).isValid(), true, h.rawBody);
  }
});
