/**
 * Redis going away and coming back, with a private redis-server (never the shared
 * one): /readyz follows it, /healthz does not, and the edge keeps answering.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startEdge } from '../../edge/http/server.js';
import { createLogger } from '../../lib/logger.js';
import { createDb } from '../../db/client.js';
import { insertUser } from '../../db/operations/users.js';
import { hashPassword } from '../../edge/http/services/auth.js';
import { queuePrefix } from '../../queues/names.js';
import { testConfig, uniqueId } from '../helpers/config.js';
import { createTestDatabase } from '../helpers/db.js';
import { startPrivateRedis } from '../helpers/redis.js';
import { client, type ApiResponse } from '../helpers/http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Things an error body must never show a client. */
const INTERNALS = /ECONNREFUSED|ioredis|enableOfflineQueue|Stream isn't writeable|Connection is closed|MaxRetriesPerRequest|\n\s+at |node_modules/i;

test('readyz follows Redis down and back; healthz stays up; requests get clean answers meanwhile', async (t) => {
  const database = await createTestDatabase();
  let redis = await startPrivateRedis();
  const port = redis.port;
  const prefix = uniqueId('t');
  const config = testConfig({ DB_NAME: database.name, REDIS_PORT: String(port), REDIS_PREFIX: prefix });
  const edge = await startEdge(config, createLogger('test', config.logLevel));
  const db = createDb(config, { poolMax: 2 });
  t.teardown(async () => {
    await edge.close();
    await db.destroy();
    await redis.stop();
    await database.drop();
  });
  const api = client(edge.url);

  /** Polls /readyz until it answers `status`; every answer must come quickly. */
  const readyz = async (status: number, ms: number): Promise<ApiResponse> => {
    const until = Date.now() + ms;
    for (;;) {
      const started = Date.now();
      const res = await api.get('/readyz');
      t.true(Date.now() - started < 3_000, `/readyz took ${Date.now() - started} ms`);
      if (res.status === status || Date.now() > until) return res;
      await sleep(100);
    }
  };

  const up = await readyz(200, 5_000);
  t.is(up.status, 200);
  t.like(up.body, { status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });

  // Accounts made while Redis is up.
  const password = 'correct horse battery';
  const admin = await insertUser(db, {
    email: `admin.${randomUUID()}@example.com`,
    name: 'Admin',
    role: 'admin',
    passwordHash: await hashPassword(config, password),
  });
  const adminLogin = await api.post('/api/v1/auth/login', { email: admin.email, password });
  t.is(adminLogin.status, 200);
  const adminToken: string = adminLogin.body.accessToken;

  await redis.stop();

  const down = await readyz(503, 5_000);
  t.is(down.status, 503, down.text);
  t.like(down.body, { status: 'not_ready', checks: { postgres: 'ok', redis: 'down' } });
  t.is((await api.get('/healthz')).status, 200, 'liveness does not depend on Redis');

  /** A request while Redis is down: a success, a client error, or a clean 5xx envelope. */
  const clean = (res: ApiResponse, what: string) => {
    t.false(INTERNALS.test(res.text), `${what} leaks internals: ${res.text}`);
    if (res.status >= 500) {
      t.is(typeof res.body?.error?.code, 'string', `${what}: ${res.status} ${res.text}`);
      t.is(typeof res.body?.error?.message, 'string', what);
    }
  };

  // Paths that only need Postgres keep working (rate limits and counters fail open).
  const email = `down.${randomUUID()}@example.com`;
  const reg = await api.post('/api/v1/auth/register', { email, password, name: 'Down' });
  clean(reg, 'register');
  t.is(reg.status, 201, reg.text);
  const login = await api.post('/api/v1/auth/login', { email, password });
  clean(login, 'login');
  t.is(login.status, 200, login.text);
  const wrong = await api.post('/api/v1/auth/login', { email, password: 'wrong password' });
  clean(wrong, 'wrong login');
  t.is(wrong.status, 401);
  const profile = await api.get('/api/v1/auth/profile', { token: login.body.accessToken });
  t.is(profile.status, 200, profile.text);
  const refreshed = await api.post('/api/v1/auth/refresh', { refreshToken: login.body.refreshToken });
  t.is(refreshed.status, 200, refreshed.text);
  const notifications = await api.get('/api/v1/notifications', { token: login.body.accessToken });
  clean(notifications, 'notifications');
  t.is(notifications.status, 200, notifications.text);

  // Paths that do need Redis: the queue dashboard's API reads the queues.
  const queues = await api.get('/admin/queues/api/queues', { token: adminToken });
  clean(queues, 'bull board');
  t.true(queues.status === 200 || queues.status >= 500, `bull board: ${queues.status} ${queues.text}`);
  const notFound = await api.get('/api/v1/nowhere');
  t.is(notFound.status, 404);

  // Redis comes back on the same port: ready again, and work is queued again.
  redis = await startPrivateRedis(port);
  const back = await readyz(200, 10_000);
  t.is(back.status, 200, back.text);
  t.like(back.body, { status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });

  const again = await api.post('/api/v1/auth/register', { email: `back.${randomUUID()}@example.com`, password, name: 'Back' });
  t.is(again.status, 201, again.text);
  const probe = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null });
  const queue = new Queue('notifications', { connection: probe, prefix: queuePrefix(prefix, 'notifications') });
  try {
    const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'completed', 'failed');
    t.is(Object.values(counts).reduce((a, b) => a + b, 0), 1, 'the welcome job of the new account is queued');
  } finally {
    await queue.close();
    probe.disconnect();
  }
});
