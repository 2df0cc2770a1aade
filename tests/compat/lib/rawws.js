// A minimal WebSocket client over a raw TCP socket that never answers pings: the control
// case for the liveness test (a dead peer must be closed; pusher-js must not be).

import net from 'node:net';
import crypto from 'node:crypto';

/** Connects to ws://host:port/path; resolves to { frames, closed } once upgraded. */
export function rawConnect(host, port, path) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    const key = crypto.randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const frames = [];
    let onClose;
    const closed = new Promise((r) => {
      onClose = r;
    });
    sock.on('connect', () => {
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    sock.on('error', (e) => (upgraded ? onClose({ error: e.message }) : reject(e)));
    sock.on('close', () => onClose({ code: null, frames }));
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!/^HTTP\/1\.1 101/.test(head)) return reject(new Error(head.split('\r\n')[0]));
        upgraded = true;
        buf = buf.subarray(end + 4);
        resolve({ frames, closed, destroy: () => sock.destroy() });
      }
      // Server frames are unmasked; parse as many as are complete.
      for (;;) {
        if (buf.length < 2) return;
        const opcode = buf[0] & 0x0f;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (opcode === 0x1) frames.push({ type: 'text', data: JSON.parse(payload.toString()) });
        else if (opcode === 0x9) frames.push({ type: 'ping' }); // deliberately not answered
        else if (opcode === 0x8) {
          const code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
          frames.push({ type: 'close', code });
          onClose({ code, frames });
          sock.destroy();
          return;
        }
      }
    });
  });
}
