// Echo's socket.io connector against Herald, configured as a laravel-echo-server app does
// (`broadcaster: 'socket.io', host: hostname + ':6001'`), with socket.io-client 4 (what
// Echo 2 ships with) or 2 (what laravel-echo-server users have). The session cookie and the
// page's CSRF token go where Echo puts them: the handshake's Cookie header, auth.headers.
// Nothing here sleeps: every wait is for a specific event, with a timeout.

import { io as io4 } from 'socket.io-client';
import io2 from 'socket.io-client-v2';
import Echo from 'laravel-echo';
import { Log, once } from './clients.js';

const opened = new Set();

/** Everything one socket.io socket receives: { event, args } in arrival order. */
export class SioProbe {
  constructor(socket, label) {
    this.socket = socket;
    this.events = new Log(`${label} events`);
    this.closes = new Log(`${label} disconnects`);
    if (typeof socket.onAny === 'function') {
      socket.onAny((event, ...args) => this.events.push({ event, args }));
    } else {
      // socket.io-client 2 has no onAny: every event packet goes through onevent.
      const onevent = socket.onevent;
      socket.onevent = (packet) => {
        const [event, ...args] = packet.data || [];
        this.events.push({ event, args });
        onevent.call(socket, packet);
      };
    }
    socket.on('disconnect', (reason) => this.closes.push(reason));
  }

  get id() {
    return this.socket.id;
  }

  connected(timeoutMs = 10000) {
    if (this.socket.connected) return Promise.resolve();
    return once((cb) => this.socket.once('connect', cb), timeoutMs, 'socket.io connect');
  }

  /** Resolves with the args of the first `event` on `channel` matching pred. */
  wait(event, channel, pred = () => true, timeoutMs = 10000) {
    return this.events
      .wait((e) => e.event === event && e.args[0] === channel && pred(e.args[1]), timeoutMs, `${event} on ${channel}`)
      .then((e) => e.args[1]);
  }

  of(event, channel) {
    return this.events.filter((e) => e.event === event && (channel === undefined || e.args[0] === channel));
  }
}

/**
 * A Laravel Echo client on the socket.io connector. `version` is 4 or 2; `user` logs in
 * (the `test_user` session cookie); `node` is a Herald (one of a cluster's nodes, or the one).
 */
export function newSioEcho(node, { version = 4, user, transports, label, ...extra } = {}) {
  const echo = new Echo({
    broadcaster: 'socket.io',
    host: `http://${node.host}:${node.port}`,
    client: version === 4 ? io4 : io2,
    csrfToken: 'compat-csrf-token',
    extraHeaders: user ? { Cookie: `test_user=${user}` } : {},
    reconnection: false,
    ...(transports ? { transports } : {}),
    ...extra,
  });
  opened.add(echo);
  const probe = new SioProbe(echo.connector.socket, label ?? `sio${version}${user ? `(user ${user})` : ''}`);
  return { echo, probe, socket: echo.connector.socket };
}

/** A bare socket.io-client socket (no Echo), for what Echo never sends. */
export function newSioSocket(node, { version = 4, user, label, ...extra } = {}) {
  const url = `http://${node.host}:${node.port}`;
  const opts = { extraHeaders: user ? { Cookie: `test_user=${user}` } : {}, reconnection: false, forceNew: true, ...extra };
  const socket = version === 4 ? io4(url, opts) : io2(url, opts);
  opened.add({ disconnect: () => socket.disconnect() });
  return { socket, probe: new SioProbe(socket, label ?? `raw sio${version}`) };
}

/** Disconnects every socket.io client created so far (test teardown). */
export function disconnectSio() {
  for (const e of opened) {
    try {
      e.disconnect();
    } catch {
      // already closed
    }
  }
  opened.clear();
}
