/**
 * Postgres going away under a running edge (reached through a TCP proxy that is
 * then shut: open connections are cut, new ones refused). Requests that need it
 * are 503 service_unavailable, which a client retries, not 500, and show nothing
 * of the driver's errors.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { startEdge } from '../../edge/http/server.js';
import { createLogger } from '../../lib/logger.js';
import { testConfig, uniqueId } from '../helpers/config.js';
import { createTestDatabase } from '../helpers/db.js';
import { deleteKeys } from '../helpers/redis.js';
import { startTcpProxy } from '../helpers/proxy.js';
import { client } from '../helpers/http.js';

const INTERNALS = /ECONNREFUSED|ECONNRESET|Connection terminated|pg-pool|knex|\n\s+at |node_modules/i;

test('with Postgres gone, requests that need it are 503 service_unavailable, not 500', async (t) => {
  const database = await createTestDatabase();
  const proxy = await startTcpProxy(Number(process.env.DB_PORT ?? 5432), process.env.DB_HOST ?? '127.0.0.1');
  const prefix = uniqueId('t');
  const config = testConfig({ DB_NAME: database.name, DB_PORT: String(proxy.port), REDIS_PREFIX: prefix });
  const edge = await startEdge(config, createLogger('test', 'silent'));
  t.teardown(async () => {
    await edge.close();
    await proxy.close();
    await deleteKeys(config, prefix);
    await database.drop();
  });
  const api = client(edge.url);
  const password = 'correct horse battery';
  const email = `pg.${randomUUID()}@example.com`;
  t.is((await api.post('/api/v1/auth/register', { email, password, name: 'P' })).status, 201);
  const login = await api.post('/api/v1/auth/login', { email, password });
  t.is(login.status, 200);

  // Connections in the pool are cut (the next query on one fails), new ones refused.
  await proxy.close();
  for (const [what, request] of [
    ['login', () => api.post('/api/v1/auth/login', { email, password })],
    ['profile', () => api.get('/api/v1/auth/profile', { token: login.body.accessToken })],
    ['products', () => api.get('/api/v1/products')],
    ['refresh', () => api.post('/api/v1/auth/refresh', { refreshToken: login.body.refreshToken })],
  ] as const) {
    const res = await request();
    t.is(res.status, 503, `${what}: ${res.status} ${res.text}`);
    t.is(res.body?.error?.code, 'service_unavailable', what);
    t.false(INTERNALS.test(res.text), `${what} leaks internals: ${res.text}`);
  }
});
