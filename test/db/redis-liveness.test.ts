/**
 * watchLiveness on real connections to a private redis-server: a command left
 * without an answer fails, and is not run a second time when the server only
 * stalled; a new connection that is accepted but never answered is dropped and
 * made again.
 */
import test from 'ava';
import { Redis } from 'ioredis';
import { watchLiveness } from '../../lib/redis.js';
import { startPrivateRedis } from '../helpers/redis.js';
import { startTcpProxy } from '../helpers/proxy.js';
import { waitFor } from '../helpers/auctions.js';

const client = (port: number) => {
  const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, enableOfflineQueue: false, retryStrategy: () => 100 });
  r.on('error', () => undefined);
  return r;
};

test('a command without an answer fails, and runs once when the server only stalled', async (t) => {
  t.timeout(30_000);
  const server = await startPrivateRedis();
  const r = client(server.port);
  const direct = client(server.port);
  try {
    await waitFor(async () => (r.status === 'ready' && direct.status === 'ready' ? true : undefined), 5_000, 'ready');
    watchLiveness(r, 200, 800);
    server.pause();
    const err = await t.throwsAsync(r.incr('k'));
    t.regex(err?.message ?? '', /no answer from Redis/);
    const readyAgain = new Promise((resolve) => r.once('ready', resolve)); // after the drop's close
    server.resume(); // the server runs the INCR it had received
    await readyAgain;
    t.is(await direct.get('k'), '1', 'run once, not resent');
    t.is(await r.incr('k'), 2, 'the new connection serves');
  } finally {
    r.disconnect();
    direct.disconnect();
    await server.stop();
  }
});

test('a new connection that is accepted but never answered is dropped and made again', async (t) => {
  t.timeout(30_000);
  const server = await startPrivateRedis();
  const proxy = await startTcpProxy(server.port);
  const r = client(proxy.port);
  try {
    await waitFor(async () => (r.status === 'ready' ? true : undefined), 5_000, 'ready');
    watchLiveness(r, 200, 800);
    proxy.silenceNew(true);
    proxy.blackhole();
    await t.throwsAsync(r.ping());
    // Reconnected into a silent connection: stuck in its ready check.
    await waitFor(async () => (r.status === 'connect' ? true : undefined), 5_000, 'connected, unanswered');
    proxy.silenceNew(false);
    await waitFor(async () => (r.status === 'ready' ? true : undefined), 10_000, 'ready again through a new connection');
    t.is(await r.ping(), 'PONG');
  } finally {
    r.disconnect();
    await proxy.close();
    await server.stop();
  }
});
