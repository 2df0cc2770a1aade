#!/usr/bin/env node
// A pusher-js 8 client driven over stdio, for suites written in other languages (the
// Python SDK tests). Usage: node listen.js '<json options>'
//   options: { host, port, key, authEndpoint?, userAuthEndpoint?, headers? }
// Prints one JSON object per line:
//   {"type":"state","previous":...,"current":...,"socket_id":...}
//   {"type":"frame","frame":{event, channel, data, user_id}}   every message pusher-js decodes
//   {"type":"error","error":...}                               connection errors
//   {"type":"channel_event","channel":...,"event":...,"data":...,"metadata":...}
//   {"type":"user_event","event":...,"data":...}              pusher.user events (sendToUser)
// Reads one JSON command per line on stdin:
//   {"op":"subscribe","channel":"..."}  {"op":"unsubscribe","channel":"..."}
//   {"op":"trigger","channel":"...","event":"client-...","data":{...}}
//   {"op":"signin"}  {"op":"ping"}  {"op":"exit"}
// Exits when stdin closes.

import readline from 'node:readline';
import Pusher from 'pusher-js';

const opts = JSON.parse(process.argv[2]);
const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const pusher = new Pusher(opts.key, {
  cluster: 'mt1',
  wsHost: opts.host,
  wsPort: opts.port,
  wssPort: opts.port,
  forceTLS: false,
  enabledTransports: ['ws', 'wss'],
  disableStats: true,
  channelAuthorization: { endpoint: opts.authEndpoint ?? '/pusher/auth', transport: 'ajax', headers: opts.headers ?? {} },
  userAuthentication: {
    endpoint: opts.userAuthEndpoint ?? '/pusher/user-auth',
    transport: 'ajax',
    headers: opts.headers ?? {},
  },
});

pusher.connection.bind('state_change', (s) =>
  out({ type: 'state', previous: s.previous, current: s.current, socket_id: pusher.connection.socket_id ?? null }),
);
pusher.connection.bind('message', (m) => out({ type: 'frame', frame: m }));
pusher.connection.bind('error', (e) => out({ type: 'error', error: e }));
pusher.user.bind_global((event, data) => out({ type: 'user_event', event, data }));

function finish() {
  const socket = pusher.connection.connection?.transport?.socket;
  pusher.disconnect();
  // Do not wait for the close handshake (or faye-websocket's 30 s close timer).
  setImmediate(() => process.exit(0));
  if (socket && socket._closeTimer) clearTimeout(socket._closeTimer);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  switch (cmd.op) {
    case 'subscribe': {
      const ch = pusher.subscribe(cmd.channel);
      ch.bind_global((event, data, metadata) =>
        out({ type: 'channel_event', channel: cmd.channel, event, data, metadata: metadata ?? null }),
      );
      break;
    }
    case 'unsubscribe':
      pusher.unsubscribe(cmd.channel);
      break;
    case 'trigger':
      pusher.channel(cmd.channel).trigger(cmd.event, cmd.data);
      break;
    case 'signin':
      pusher.signin();
      break;
    case 'ping':
      pusher.connection.send_event('pusher:ping', {});
      break;
    case 'exit':
      finish();
      break;
    default:
      out({ type: 'bad_command', cmd });
  }
});
rl.on('close', finish);
