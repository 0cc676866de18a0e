/**
 * The control channel accepts the owner only (socket mode 0600) and only the documented
 * commands; malformed, oversized and unknown requests get an error answer and never reach
 * the volume or crash the server.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { ControlServer, controlRequest } from '../../lib/agent/control.js';
import { tempDir } from '../helpers/temp-volume.js';

function raw(socket: string, bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.createConnection(socket);
    let out = '';
    c.on('connect', () => c.end(bytes));
    c.on('data', (d) => (out += d.toString()));
    c.on('close', () => resolve(out));
    c.on('error', reject);
  });
}

t.test('control: only documented commands, only the owner; garbage gets an error answer', async (t) => {
  const socket = path.join(tempDir(t), 'control.sock');
  const calls: string[] = [];
  const server = await ControlServer.listen(socket, {
    sync: async (label, info) => {
      calls.push(`sync ${label} ${JSON.stringify(info)}`);
      return { time: 'now' };
    },
    status: async () => ({ ok: 1 }),
    unmount: async () => {
      calls.push('unmount');
    },
    retention: async () => {
      calls.push('retention');
      return { record: 1 };
    },
  });
  t.teardown(() => server.close());
  t.equal(fs.statSync(socket).mode & 0o777, 0o600, 'the socket is private to its owner');

  const answers = await Promise.all([
    raw(socket, 'not json\n'),
    raw(socket, '[1,2,3]\n'),
    raw(socket, '{"cmd":"rm -rf /"}\n'),
    raw(socket, '{"cmd":"sync","label":5}\n'),
    raw(socket, '{"cmd":"sync","info":{"a":1}}\n'),
    raw(socket, Buffer.alloc(200 * 1024, 0x61)),
    raw(socket, Buffer.from([0xff, 0xfe, 0x0a])),
    raw(socket, 'null\n'),
  ]);
  for (const answer of answers) t.match(JSON.parse(answer), { ok: false, error: { code: 'BAD_INPUT' } }, `refused: ${answer.slice(0, 80)}`);
  t.same(calls, [], 'nothing reached the volume');
  t.match(await controlRequest(socket, { cmd: 'status' }), { ok: true, status: { ok: 1 } }, 'and the server still answers');
  await controlRequest(socket, { cmd: 'sync', label: 'x', info: { agent: 'test' } });
  t.same(calls, ['sync x {"agent":"test"}'], 'a well-formed request goes through');
  t.match(await controlRequest(socket, { cmd: 'retention' }), { ok: true, retention: { record: 1 } }, 'retention: the mount takes in the record and says what it holds');
});
