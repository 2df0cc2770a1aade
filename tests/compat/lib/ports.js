// A port nothing listens on right now, on 127.0.0.1 (for the servers the tests start).

import net from 'node:net';

export async function freePort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}
