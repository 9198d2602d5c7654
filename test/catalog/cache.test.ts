import test from 'ava';
import { registerUser, useSystem } from '../helpers/system.js';
import { makeCategory, makeProduct } from '../helpers/catalog.js';
import { startEdge, type RunningEdge } from '../../edge/http/server.js';
import { createLogger } from '../../lib/logger.js';
import { client } from '../helpers/http.js';
import { randomUUID } from 'node:crypto';
import { CatalogCache } from '../../edge/http/services/cache.js';
import { waitFor } from '../helpers/auctions.js';

const system = useSystem(test);
const P = '/api/v1/products';
// A second edge instance on the same Postgres and Redis, as behind a load balancer.
let secondEdge: Promise<RunningEdge> | undefined;
const second = () => (secondEdge ??= startEdge(system().config, createLogger('test', 'silent')));
test.after.always(async () => {
  await (await secondEdge)?.close();
});

function counter(metrics: string, cache: string, result: string): number {
  const m = new RegExp(`blytz_cache_requests_total\\{cache="${cache}",result="${result}"\\} (\\d+)`).exec(metrics);
  return m ? Number(m[1]) : 0;
}

test('product reads are served from the cache after the first (hit and miss counters)', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const p = await makeProduct(sys, seller, { categoryId: cat.id });
  const before = (await sys.api.get('/metrics')).text;
  await sys.api.get(`${P}/${p.id}`);
  await sys.api.get(`${P}/${p.id}`);
  await sys.api.get(`${P}/${p.id}`);
  const after = (await sys.api.get('/metrics')).text;
  t.true(counter(after, 'product', 'miss') - counter(before, 'product', 'miss') >= 1);
  t.true(counter(after, 'product', 'hit') - counter(before, 'product', 'hit') >= 2);
  // The cached entry is in Redis, under this system's prefix, with the 15-minute TTL.
  const ttl = await sys.redis.ttl(`${sys.config.redis.prefix}:cache:product:${p.id}`);
  t.true(ttl > 800 && ttl <= 900, `ttl ${ttl}`);
});

test('a write is visible at once from any edge instance (product and list pages)', async (t) => {
  const sys = system();
  const other = client((await second()).url);
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const p = await makeProduct(sys, seller, { categoryId: cat.id, title: 'Before' });
  // Warm both instances' view (one shared cache).
  t.is((await other.get(`${P}/${p.id}`)).body.title, 'Before');
  t.is((await sys.api.get(`${P}/${p.id}`)).body.title, 'Before');
  const listBefore = await other.get(`${P}?categoryId=${cat.id}`);
  t.is(listBefore.body.data.length, 1);

  await sys.api.put(`${P}/${p.id}`, { title: 'After' }, { token: seller.accessToken });
  t.is((await other.get(`${P}/${p.id}`)).body.title, 'After');
  t.is((await other.get(`${P}?categoryId=${cat.id}`)).body.data[0].title, 'After');

  const q = await makeProduct(sys, seller, { categoryId: cat.id });
  t.deepEqual((await other.get(`${P}?categoryId=${cat.id}`)).body.data.map((x: { id: string }) => x.id), [q.id, p.id]);
  await sys.api.del(`${P}/${q.id}`, { token: seller.accessToken });
  t.is((await other.get(`${P}/${q.id}`)).status, 404);
  t.deepEqual((await other.get(`${P}?categoryId=${cat.id}`)).body.data.map((x: { id: string }) => x.id), [p.id]);
});

test('no stale read after a write returns, even with readers racing the writer', async (t) => {
  const sys = system();
  const other = client((await second()).url);
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const p = await makeProduct(sys, seller, { categoryId: cat.id, price: 1 });
  let stop = false;
  // Readers keep missing and refilling the cache while the writer writes.
  const readers = Array.from({ length: 4 }, async () => {
    while (!stop) await Promise.all([other.get(`${P}/${p.id}`), sys.api.get(`${P}/${p.id}`)]);
  });
  let stale = 0;
  for (let price = 2; price <= 40; price++) {
    const w = await sys.api.put(`${P}/${p.id}`, { price }, { token: seller.accessToken });
    t.is(w.status, 200);
    for (const c of [other, sys.api]) {
      const r = await c.get(`${P}/${p.id}`);
      if (r.body.price !== price) stale++;
    }
  }
  stop = true;
  await Promise.all(readers);
  t.is(stale, 0);
});

test('an invalidation that Redis refuses after a write is retried in the background until the entry is gone', async (t) => {
  const sys = system();
  const prefix = `${sys.config.redis.prefix}-flaky`;
  let fails = 2;
  // The first two invalidations fail, as in a connection blip.
  const flaky = new Proxy(sys.redis, {
    get(target, prop, receiver) {
      if (prop === 'multi' && fails > 0) {
        fails--;
        return () => {
          const chain = { incr: () => chain, expire: () => chain, del: () => chain, exec: async () => Promise.reject(new Error('connection blip')) };
          return chain;
        };
      }
      return Reflect.get(target, prop, receiver);
    },
  });
  const cache = new CatalogCache(flaky, prefix, sys.edge.deps.metrics, createLogger('test', 'silent'), true);
  const id = randomUUID();
  t.deepEqual(await cache.product(id, async () => ({ v: 'old' })), { v: 'old' });
  t.is(await sys.redis.exists(`${prefix}:cache:product:${id}`), 1, 'cached');
  await cache.invalidateProduct(id);
  await waitFor(async () => ((await sys.redis.exists(`${prefix}:cache:product:${id}`)) === 0 ? true : undefined), 5_000, 'the entry dropped by a retry');
  t.deepEqual(await cache.product(id, async () => ({ v: 'new' })), { v: 'new' });
  t.is(fails, 0);
});
