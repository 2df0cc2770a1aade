// Client-side helpers: pusher-js and Laravel Echo instances configured the way a Laravel
// app configures them (README "Laravel setup"), plus event logs that tests wait on.
// Nothing here sleeps: every wait is for a specific event, with a timeout.

import Pusher from 'pusher-js';
import Echo from 'laravel-echo';

export { Pusher, Echo };

/** A list of observed items that can be awaited: wait(pred) resolves on the first match. */
export class Log {
  constructor(label = 'log') {
    this.label = label;
    this.items = [];
    this.waiters = new Set();
  }

  push(item) {
    this.items.push(item);
    for (const w of [...this.waiters]) w(item);
  }

  /** Everything pushed so far that matches pred. */
  filter(pred = () => true) {
    return this.items.filter(pred);
  }

  /** Resolves with the first item (already seen or future) matching pred. */
  wait(pred = () => true, timeoutMs = 10000, what = 'a matching item') {
    const found = this.items.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}; saw ${JSON.stringify(this.items)}`),
        );
      }, timeoutMs);
      const waiter = (item) => {
        if (!pred(item)) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(item);
      };
      this.waiters.add(waiter);
    });
  }

  /** Resolves with the first n items matching pred, once there are n. */
  async waitCount(n, pred = () => true, timeoutMs = 10000, what = `${n} matching items`) {
    const enough = () => this.items.filter(pred).length >= n;
    await this.wait(enough, timeoutMs, what);
    return this.items.filter(pred).slice(0, n);
  }
}

/** Everything a pusher-js instance sees: decoded frames, connection errors, state changes. */
export class Probe {
  constructor(pusher, label = 'client') {
    this.pusher = pusher;
    this.frames = new Log(`${label} frames`);
    this.errors = new Log(`${label} errors`);
    this.states = new Log(`${label} states`);
    this.global = new Log(`${label} global events`);
    // pusher-js's decoded frame ({event, channel, data, user_id}); absent keys dropped.
    pusher.connection.bind('message', (m) => this.frames.push(JSON.parse(JSON.stringify(m))));
    pusher.connection.bind('error', (e) => this.errors.push(e));
    pusher.connection.bind('state_change', (s) => this.states.push(s));
    pusher.bind_global((event, data) => this.global.push({ event, data }));
    pusher.connection.bind('connected', () => {
      const socket = pusher.connection.connection?.transport?.socket;
      if (socket) sockets.add(socket);
    });
  }

  get socketId() {
    return this.pusher.connection.socket_id;
  }

  connected(timeoutMs = 10000) {
    if (this.pusher.connection.state === 'connected') return Promise.resolve();
    return this.states.wait((s) => s.current === 'connected', timeoutMs, 'state connected');
  }

  /** Frames of one event name (optionally on one channel). */
  framesOf(event, channel) {
    return this.frames.filter((f) => f.event === event && (channel === undefined || f.channel === channel));
  }

  waitFrame(event, channel, timeoutMs = 10000, pred = () => true) {
    return this.frames.wait(
      (f) => f.event === event && (channel === undefined || f.channel === channel) && pred(f),
      timeoutMs,
      `${event} on ${channel}`,
    );
  }

  /**
   * Sends `pusher:ping` and waits for `pusher:pong`: Herald handles a socket's frames in
   * order, so everything this client sent before has been processed when the pong arrives.
   */
  async roundTrip(timeoutMs = 10000) {
    const before = this.framesOf('pusher:pong').length;
    this.pusher.connection.send_event('pusher:ping', {});
    await this.frames.wait(() => this.framesOf('pusher:pong').length > before, timeoutMs, 'pusher:pong');
  }
}

const opened = new Set();
const sockets = new Set();

function baseOptions(herald) {
  return {
    cluster: 'mt1',
    wsHost: herald.host,
    wsPort: herald.port,
    wssPort: herald.port,
    forceTLS: false,
    enabledTransports: ['ws', 'wss'],
    disableStats: true,
  };
}

/** A pusher-js client of `app` on `herald`, logged in at `backend` as `user` (or a guest). */
export function newPusher(herald, app, { backend, user, label, ...extra } = {}) {
  const headers = user ? { 'X-Test-User': String(user) } : {};
  const pusher = new Pusher(app.key, {
    ...baseOptions(herald),
    ...(backend
      ? {
          channelAuthorization: { endpoint: `${backend.url}/broadcasting/auth`, transport: 'ajax', headers },
          userAuthentication: { endpoint: `${backend.url}/broadcasting/user-auth`, transport: 'ajax', headers },
        }
      : {}),
    ...extra,
  });
  opened.add(pusher);
  const probe = new Probe(pusher, label ?? `pusher(${app.key}${user ? `, user ${user}` : ''})`);
  return { pusher, probe };
}

/**
 * A Laravel Echo client (broadcaster 'pusher') as resources/js/echo.js builds it, with the
 * backend's /broadcasting/auth and /broadcasting/user-auth and a CSRF token.
 */
export function newEcho(herald, app, { backend, user, label, ...extra } = {}) {
  const echo = new Echo({
    broadcaster: 'pusher',
    key: app.key,
    ...baseOptions(herald),
    Pusher,
    authEndpoint: `${backend.url}/broadcasting/auth`,
    auth: { headers: user ? { 'X-Test-User': String(user) } : {} },
    userAuthentication: {
      endpoint: `${backend.url}/broadcasting/user-auth`,
      headers: user ? { 'X-Test-User': String(user) } : {},
    },
    csrfToken: 'compat-csrf-token',
    ...extra,
  });
  const pusher = echo.connector.pusher;
  opened.add(pusher);
  const probe = new Probe(pusher, label ?? `echo(${app.key}${user ? `, user ${user}` : ''})`);
  return { echo, pusher, probe };
}

/** Disconnects every client created so far (test teardown). */
export function disconnectAll() {
  for (const p of opened) {
    try {
      p.disconnect();
    } catch {
      // already closed
    }
  }
  opened.clear();
  // When the server closes with a "refused" code (e.g. 4009 after terminate_connections),
  // pusher-js calls close() on the already closed faye-websocket, which arms a 30 s timer
  // that nothing clears and that would keep the test process alive. On a closed socket the
  // timer does nothing, so clear it.
  for (const s of sockets) {
    if (s.readyState === 3 && s._closeTimer) clearTimeout(s._closeTimer);
  }
  sockets.clear();
}

let seq = 0;
/** A unique suffix for channel names, so tests never share channels. */
export function uniq(prefix = 'c') {
  seq += 1;
  return `${prefix}${process.pid}x${seq}`;
}

/**
 * Triggers a marker event on `channel` and waits until `probe` sees it. Herald delivers a
 * socket's frames in order, so anything queued for that socket before the marker has
 * arrived by then: use it to assert that something was NOT delivered.
 */
export async function marker(sdk, channel, probes, timeoutMs = 10000) {
  const data = { marker: uniq('m') };
  await sdk.trigger(channel, 'compat-marker', data);
  for (const probe of [probes].flat()) {
    await probe.waitFrame('compat-marker', channel, timeoutMs, (f) => f.data?.marker === data.marker);
  }
}

/** Resolves with the value the callback gets first (Echo-style callbacks). */
export function once(register, timeoutMs = 10000, what = 'callback') {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
    register((...args) => {
      clearTimeout(timer);
      resolve(args.length > 1 ? args : args[0]);
    });
  });
}
