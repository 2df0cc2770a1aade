// A Herald cluster for the compatibility suite: a redis-server of its own on a free port,
// `nodes` Herald processes on the `redis` driver, and a round-robin TCP proxy in front (a
// load balancer): each new connection, WebSocket or REST, goes to the next node, so a
// client's sockets and the backend's REST calls land on different nodes.
//
// Selected for the whole suite with COMPAT_CLUSTER=<nodes> (tests/compat/run.sh runs the
// suite once on one node, once on three). Everything started here is stopped by its PID.

import { spawn } from 'node:child_process';
import net from 'node:net';
import { startHerald } from './herald.js';
import { startRoundRobin } from './proxy.js';
import { freePort } from './ports.js';

/** The number of nodes the suite runs on (0: one plain node). */
export const CLUSTER_NODES = Number(process.env.COMPAT_CLUSTER || 0);

async function ping(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => resolve(false));
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
  });
}

/** A redis-server with no persistence on a free port. */
export async function startRedis() {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  process.on('exit', () => {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  });
  const deadline = Date.now() + 10000;
  while (!(await ping(port))) {
    if (Date.now() > deadline) throw new Error('redis-server did not start (apt-get install redis-server)');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    async stop() {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone
      }
      await exited;
    },
  };
}

/**
 * Starts `nodes` Herald nodes on one Redis, with `options` (see renderConfig) on each, behind a
 * round-robin proxy. Resolves to an object shaped like startHerald's: host/port are the
 * proxy's, metricsAddr is the first node's; stop() stops everything.
 */
export async function startCluster(options = {}, nodes = CLUSTER_NODES) {
  const redis = await startRedis();
  const members = [];
  try {
    for (let i = 0; i < nodes; i += 1) {
      const adapter = { driver: 'redis', redis_url: redis.url, lease_ms: 3000, heartbeat_ms: 500 };
      members.push(await startHerald({ ...options, adapter }));
    }
  } catch (e) {
    await Promise.all(members.map((m) => m.stop()));
    await redis.stop();
    throw e;
  }
  const lb = await startRoundRobin(members);
  return {
    addr: `${lb.host}:${lb.port}`,
    host: lb.host,
    port: lb.port,
    metricsAddr: members[0].metricsAddr,
    nodes: members,
    logs: members[0].logs,
    async stop() {
      await lb.close();
      await Promise.all(members.map((m) => m.stop()));
      await redis.stop();
    },
  };
}
