import test from 'ava';
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import { registerUser, useSystem, type System } from '../helpers/system.js';
import { notificationSend } from '../../workers/handlers/notification-send.js';
import { createLogger } from '../../lib/logger.js';
import { userEventsStream } from '../../queues/streams.js';
import { Redis } from 'ioredis';
import { publishBacklog } from '../../lib/publisher.js';
import { freePort } from '../helpers/redis.js';

const system = useSystem(test, { workers: true, broadcaster: true });

async function waitFor<T>(fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function connect(sys: System, token: string): Promise<{ ws: WebSocket; frames: Record<string, unknown>[] }> {
  const ws = new WebSocket(`${sys.broadcaster!.url}?token=${token}`);
  const frames: Record<string, unknown>[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // The first pong proves the connection is subscribed to its private events.
  ws.send(JSON.stringify({ type: 'ping' }));
  await waitFor(async () => (frames.some((f) => f.type === 'pong') ? true : undefined));
  return { ws, frames };
}

test('register enqueues a welcome notification that a worker stores once', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const row = await waitFor(() => sys.db('notifications').where({ user_id: u.id, kind: 'welcome' }).first());
  t.is(row.kind, 'welcome');
  const list = await sys.api.get('/api/v1/notifications', { token: u.accessToken });
  t.is(list.status, 200);
  t.is(list.body.data.length, 1);
  t.is(list.body.data[0].id, row.id);
  t.is(list.body.nextCursor, null);
});

test('a private notification reaches only its user, live over the WebSocket', async (t) => {
  const sys = system();
  const alice = await registerUser(sys);
  const bob = await registerUser(sys);
  const a = await connect(sys, alice.accessToken);
  const b = await connect(sys, bob.accessToken);
  const anon = new WebSocket(sys.broadcaster!.url);
  const anonFrames: unknown[] = [];
  anon.on('message', (d) => anonFrames.push(JSON.parse(d.toString())));
  await new Promise((r) => anon.once('open', r));

  const res = await sys.api.post('/api/v1/auth/change-password', { currentPassword: alice.password, newPassword: 'another password' }, { token: alice.accessToken });
  t.is(res.status, 204);
  const got = await waitFor(async () => a.frames.find((f) => f.type === 'notification' && f.kind === 'password_changed'));
  t.is(typeof got.id, 'string');
  await new Promise((r) => setTimeout(r, 200));
  t.false(b.frames.some((f) => f.type === 'notification' && f.kind === 'password_changed'), "bob does not get alice's event");
  t.deepEqual(anonFrames, []);
  for (const ws of [a.ws, b.ws, anon]) ws.close();
});

// Serial: another test's sweep (publishBacklog with no grace) could push this batch again between its commit and its mark.
test.serial('running the same job twice stores and pushes it once', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const ctx = { ...sys.workerCtx, logger: createLogger('test', 'silent') };
  const data = { notificationId: randomUUID(), userId: u.id, kind: 'welcome' as const };
  const stream = userEventsStream(sys.config.redis.prefix);
  const before = await sys.redis.xlen(stream);
  t.is(await notificationSend(ctx, data), 'delivered');
  t.is(await notificationSend(ctx, data), 'duplicate');
  t.is((await sys.db('notifications').where({ id: data.notificationId })).length, 1);
  t.true((await sys.redis.xlen(stream)) - before >= 1);
  const entries = await sys.redis.xrange(stream, '-', '+');
  t.is(entries.filter(([, f]) => f.some((x) => x.includes(data.notificationId))).length, 1);
});

test.serial('a notification whose push failed after it was stored is pushed by the sweep, not lost', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  // Redis refusing the push (here: nothing listens), after the commit.
  const down = new Redis({ host: '127.0.0.1', port: await freePort(), enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
  down.on('error', () => undefined);
  const ctx = { ...sys.workerCtx, redis: down as unknown as typeof sys.workerCtx.redis, logger: createLogger('test', 'silent') };
  const data = { notificationId: randomUUID(), userId: u.id, kind: 'welcome' as const };
  const stream = userEventsStream(sys.config.redis.prefix);
  const pushed = async () => (await sys.redis.xrange(stream, '-', '+')).some(([, f]) => f.some((x) => x.includes(data.notificationId)));
  t.is(await notificationSend(ctx, data), 'delivered');
  t.false(await pushed(), 'not pushed yet');
  t.is(await notificationSend(ctx, data), 'duplicate', 'a retry stores nothing more');
  await publishBacklog(sys.db, sys.redis, sys.config, 0);
  t.true(await pushed(), 'the sweep pushed it');
  down.disconnect();
});

test.serial('a notification is stored with the change it tells of: its job never enqueued, the sweep still pushes it', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const producer = sys.edge.deps.producer;
  const enqueue = producer.enqueue;
  producer.enqueue = (async () => {
    throw new Error('Redis refused');
  }) as typeof enqueue;
  let res;
  try {
    res = await sys.api.post('/api/v1/auth/change-password', { currentPassword: u.password, newPassword: 'another password' }, { token: u.accessToken });
  } finally {
    producer.enqueue = enqueue;
  }
  t.is(res.status, 204);
  const row = await sys.db('notifications').where({ user_id: u.id, kind: 'password_changed' }).first();
  t.truthy(row, 'stored with the password change, before any job');
  const stream = userEventsStream(sys.config.redis.prefix);
  await publishBacklog(sys.db, sys.redis, sys.config, 0);
  const entries = await sys.redis.xrange(stream, '-', '+');
  t.is(entries.filter(([, f]) => f.some((x) => x.includes(row.id))).length, 1, 'pushed once, by the sweep');
});

test('the producer refuses malformed payloads; the worker fails them without retrying', async (t) => {
  const sys = system();
  await t.throwsAsync(sys.edge.deps.producer.enqueue('notification.send', { notificationId: 'nope', userId: randomUUID(), kind: 'welcome' }));
  const queue = sys.edge.deps.producer.queues.get('notifications')!;
  const job = await queue.add('notification.send', { bogus: true } as never, { jobId: `bad-${randomUUID()}`, attempts: 5 });
  const state = await waitFor(async () => {
    const s = await job.getState();
    return s === 'failed' ? s : undefined;
  });
  t.is(state, 'failed');
  const failed = await queue.getJob(job.id!);
  t.is(failed?.attemptsMade, 1, 'UnrecoverableError: no retries');
  t.regex(failed?.failedReason ?? '', /malformed/);
});
