// The "Laravel app" of the suite: a Node http server on 127.0.0.1 port 0 that
//  - answers POST /broadcasting/auth and /broadcasting/user-auth exactly as Laravel's
//    PusherBroadcaster does, through the `pusher` Node SDK (authorizeChannel /
//    authenticateUser; encrypted channels get `shared_secret` from encryptionMasterKeyBase64);
//  - knows who is logged in from the `X-Test-User` header or `test_user` cookie (Laravel:
//    the session);
//  - applies a routes/channels.php-like policy (below);
//  - serves the browser page and the pusher-js / Echo builds straight from node_modules;
//  - receives webhooks (POST /webhook) and keeps them for assertions.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import Pusher from 'pusher';
import { WRONG_SECRET } from './herald.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const COMPAT = path.resolve(here, '..');

/** A fixed 32-byte master key for end-to-end encrypted channels. */
export const MASTER_KEY_BASE64 = Buffer.from('herald-compat-master-key-32bytes').toString('base64');

/** The app's users (Laravel: the users table). */
export const USERS = {
  1: { id: 1, name: 'Ann' },
  2: { id: 2, name: 'Bob' },
  3: { id: 3, name: 'Cy' },
};

const STATIC = {
  '/vendor/pusher.js': ['node_modules/pusher-js/dist/web/pusher.js', 'text/javascript'],
  '/vendor/pusher-with-encryption.js': ['node_modules/pusher-js/dist/web/pusher-with-encryption.js', 'text/javascript'],
  '/vendor/echo.iife.js': ['node_modules/laravel-echo/dist/echo.iife.js', 'text/javascript'],
  '/page/index.html': ['browser/page/index.html', 'text/html; charset=utf-8'],
  '/page/app.js': ['browser/page/app.js', 'text/javascript'],
  '/vendor/socket.io.js': ['node_modules/socket.io-client/dist/socket.io.min.js', 'text/javascript'],
  '/page/sio.html': ['browser/page/sio.html', 'text/html; charset=utf-8'],
  '/page/sio.js': ['browser/page/sio.js', 'text/javascript'],
  '/page/blank.html': ['browser/page/blank.html', 'text/html; charset=utf-8'],
};

/** A Node SDK client for the app, pointed at Herald (the Laravel app's `pusher` connection). */
export function sdkFor(herald, app, extra = {}) {
  return new Pusher({
    appId: app.id,
    key: app.key,
    secret: app.secret,
    host: herald.host,
    port: String(herald.port),
    useTLS: false,
    encryptionMasterKeyBase64: MASTER_KEY_BASE64,
    ...extra,
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseParams(req, body) {
  const type = String(req.headers['content-type'] || '');
  if (type.includes('application/json')) return JSON.parse(body || '{}');
  return Object.fromEntries(new URLSearchParams(body));
}

/**
 * Starts the backend for `app` (one of APPS). Resolves to
 * { url, port, sdk, attach(herald), authRequests, webhooks, waitForWebhook(pred, ms), close() }.
 */
export async function startBackend({ app, herald = null } = {}) {
  // The SDK only signs here (no REST calls), so Herald's address may come later (attach()).
  let sdk = sdkFor(herald ?? { host: '127.0.0.1', port: 1 }, app);
  // A backend configured with the wrong secret (for "bad auth signature").
  const wrongSdk = sdkFor({ host: '127.0.0.1', port: 1 }, { ...app, secret: WRONG_SECRET });
  const authRequests = [];
  const webhooks = [];
  const webhookWaiters = [];

  const json = (res, status, obj) => {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(body);
  };

  async function handle(req, res) {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'GET' && STATIC[url.pathname]) {
      const [file, type] = STATIC[url.pathname];
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      fs.createReadStream(path.join(COMPAT, file)).pipe(res);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    const body = await readBody(req);
    if (req.method === 'POST' && url.pathname === '/webhook') {
      const hook = { headers: req.headers, rawBody: body, at: Date.now() };
      webhooks.push(hook);
      for (const w of [...webhookWaiters]) w();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    if (req.method !== 'POST' || !url.pathname.startsWith('/broadcasting/')) {
      res.writeHead(404);
      res.end('not found');
      return;
    }
    const params = parseParams(req, body);
    // Laravel: the session. Node clients send X-Test-User; the browser sends its cookie.
    const cookie = /(?:^|;\s*)test_user=(\d+)/.exec(String(req.headers.cookie || ''));
    const userId = req.headers['x-test-user'] ?? cookie?.[1];
    const user = USERS[userId];
    authRequests.push({ path: url.pathname, headers: req.headers, params, user: userId });
    // Laravel: guests get 403 from /broadcasting/auth.
    if (!user) return json(res, 403, { message: 'Unauthenticated.' });

    if (url.pathname === '/broadcasting/user-auth') {
      // PusherBroadcaster::resolveAuthenticatedUser → $pusher->authenticateUser($socketId, $user)
      const userData = { id: String(user.id), user_info: { name: user.name } };
      if (url.searchParams.get('watchlist')) userData.watchlist = url.searchParams.get('watchlist').split(',');
      return json(res, 200, sdk.authenticateUser(params.socket_id, userData));
    }
    if (url.pathname !== '/broadcasting/auth') return json(res, 404, { message: 'Not Found' });

    const channel = String(params.channel_name || '');
    const socketId = String(params.socket_id || '');
    // routes/channels.php
    const own = channel.match(/^private-App\.(?:Models\.)?User\.(\d+)$/);
    if (own && own[1] !== String(user.id)) return json(res, 403, { message: 'Forbidden' });
    if (/^(private|presence)-forbidden\./.test(channel)) return json(res, 403, { message: 'Forbidden' });
    const signer = /^(private-|presence-)badsig\./.test(channel) ? wrongSdk : sdk;
    if (channel.startsWith('presence-signedin.')) {
      // pusher-js >= 7.4: presence membership from the signed-in user (no channel_data).
      return json(res, 200, sdk.authorizeChannel(socketId, channel));
    }
    if (channel.startsWith('presence-')) {
      // Laravel: authorizePresenceChannel(channel, socket_id, (string) $user->id, $callbackResult)
      return json(res, 200, signer.authorizeChannel(socketId, channel, { user_id: String(user.id), user_info: user }));
    }
    if (channel.startsWith('private-')) {
      return json(res, 200, signer.authorizeChannel(socketId, channel));
    }
    return json(res, 403, { message: 'Forbidden' });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      res.writeHead(500);
      res.end(String(e?.stack || e));
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get sdk() {
      return sdk;
    },
    /** Points the backend's SDK at a (re)started Herald. */
    attach(h) {
      sdk = sdkFor(h, app);
    },
    authRequests,
    webhooks,
    /** Resolves with the first webhook request (with its parsed body) satisfying pred. */
    waitForWebhook(pred, timeoutMs = 10000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (const h of webhooks) {
            const parsed = { ...h, body: JSON.parse(h.rawBody) };
            if (pred(parsed)) {
              cleanup();
              resolve(parsed);
              return true;
            }
          }
          return false;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no matching webhook within ${timeoutMs} ms; got ${JSON.stringify(webhooks.map((h) => h.rawBody))}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          const i = webhookWaiters.indexOf(check);
          if (i >= 0) webhookWaiters.splice(i, 1);
        };
        if (!check()) webhookWaiters.push(check);
      });
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Hex HMAC-SHA256, for the tests' own cross-checks. */
export function hmac(secret, text) {
  return crypto.createHmac('sha256', secret).update(text).digest('hex');
}
