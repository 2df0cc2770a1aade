// TCP pass-throughs on 127.0.0.1 port 0 standing in for a load balancer in front of several
// Herald nodes. startProxy: new connections go to the current target; setTarget() moves new
// connections elsewhere (existing ones stay where they are). startRoundRobin: each new
// connection goes to the next node in turn.

import net from 'node:net';

async function listen(choose) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    const target = choose();
    const upstream = net.connect(target.port, target.host);
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: '127.0.0.1',
    port: server.address().port,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export async function startProxy(target) {
  let current = target;
  const lb = await listen(() => current);
  return {
    ...lb,
    setTarget(t) {
      current = t;
    },
  };
}

export async function startRoundRobin(targets) {
  let next = 0;
  return listen(() => targets[next++ % targets.length]);
}
