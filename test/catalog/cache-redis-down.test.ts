import test from 'ava';
import { createTestDatabase } from '../helpers/db.js';
import { testConfig, uniqueId } from '../helpers/config.js';
import { startPrivateRedis } from '../helpers/redis.js';
import { client } from '../helpers/http.js';
import { startEdge } from '../../edge/http/server.js';
import { createLogger } from '../../lib/logger.js';
import { createDb } from '../../db/client.js';

test('when Redis is down, catalog reads fall back to Postgres and do not fail', async (t) => {
  const database = await createTestDatabase();
  const redis = await startPrivateRedis();
  const config = testConfig({ DB_NAME: database.name, REDIS_PORT: String(redis.port), REDIS_PREFIX: uniqueId('t') });
  const edge = await startEdge(config, createLogger('test', 'silent'));
  const db = createDb(config, { poolMax: 2 });
  t.teardown(async () => {
    await edge.close();
    await db.destroy();
    await redis.stop();
    await database.drop();
  });
  const api = client(edge.url);
  const reg = await api.post('/api/v1/auth/register', { email: 'down@example.com', password: 'password123', name: 'S', role: 'seller' });
  const [cat] = await db('categories').insert({ name: 'C', slug: 'c' }).returning('id');
  const created = await api.post('/api/v1/products', { title: 'Survivor', categoryId: cat.id, price: 100 }, { token: reg.body.accessToken });
  t.is(created.status, 201);
  t.is((await api.get(`/api/v1/products/${created.body.id}`)).status, 200, 'cached while Redis is up');

  await redis.stop();
  await db('products').where({ id: created.body.id }).update({ title: 'Changed in Postgres' });
  const read = await api.get(`/api/v1/products/${created.body.id}`);
  t.is(read.status, 200);
  t.is(read.body.title, 'Changed in Postgres', 'read from Postgres');
  const list = await api.get(`/api/v1/products?limit=5`);
  t.is(list.status, 200);
  t.is(list.body.data.length, 1);
  t.is((await api.get('/api/v1/categories')).status, 200);
  const metrics = await api.get('/metrics');
  t.regex(metrics.text, /blytz_cache_requests_total\{cache="product",result="error"\} [1-9]/);
});
