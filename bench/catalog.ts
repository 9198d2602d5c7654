/**
 * `npm run bench -- catalog`: cached product reads and search requests per second,
 * each with its ratio to the same endpoint with the cache disabled, in one run.
 * Two edge processes (CATALOG_CACHE=on and =off) serve the same seeded database;
 * autocannon, in this process, is the load.
 */
import autocannon from 'autocannon';
import { loadConfig } from '../lib/env.js';
import { createDb } from '../db/client.js';
import { benchEnv, dropRedisPrefix, fmt, freePort, freshDatabase, run, runToEnd, stop, waitReady } from './common.js';

const DB = 'blytz_bench_catalog';
const DURATION = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const QUERIES = ['vintage camera', 'rare coin', 'signed', 'watch', 'leather handbag', 'sealed box', 'mint card', 'lamp', 'turntable', 'restored'];

async function load(url: string, paths: string[]): Promise<autocannon.Result> {
  let i = 0;
  return autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: paths[i++ % paths.length]! }) }],
  });
}

export async function benchCatalog(): Promise<void> {
  console.log(`catalog benchmark: ${DURATION} s per run, ${CONNECTIONS} connections, 2 edge processes (cache on / off)`);
  await freshDatabase(DB);
  await runToEnd('scripts/seed.ts', benchEnv({ DB_NAME: DB, SEED_PRODUCTS: '2000' }));
  const db = createDb(loadConfig(benchEnv({ DB_NAME: DB })), { poolMax: 1 });
  const ids = (await db('products').select('id').limit(200)).map((r: { id: string }) => r.id);
  await db.destroy();

  const [onPort, offPort] = [await freePort(), await freePort()];
  const prefix = `bench${Date.now()}`;
  const on = run('edge/http/main.ts', benchEnv({ DB_NAME: DB, PORT: String(onPort), CATALOG_CACHE: 'on', REDIS_PREFIX: prefix }));
  const off = run('edge/http/main.ts', benchEnv({ DB_NAME: DB, PORT: String(offPort), CATALOG_CACHE: 'off', REDIS_PREFIX: prefix }));
  try {
    const onUrl = `http://127.0.0.1:${onPort}`;
    const offUrl = `http://127.0.0.1:${offPort}`;
    await Promise.all([waitReady(onUrl), waitReady(offUrl)]);
    const scenarios = [
      { name: 'product by id', paths: ids.map((id) => `/api/v1/products/${id}`) },
      { name: 'search (q, 20/page)', paths: QUERIES.map((q) => `/api/v1/products?q=${encodeURIComponent(q)}&limit=20`) },
    ];
    const rows: string[] = [];
    for (const s of scenarios) {
      await load(onUrl, s.paths.slice(0, 50)); // warm the cache and the JIT
      const cached = await load(onUrl, s.paths);
      const uncached = await load(offUrl, s.paths);
      const errors = cached.errors + cached.non2xx + uncached.errors + uncached.non2xx;
      rows.push(
        `| ${s.name} | ${fmt(cached.requests.average)} req/s (p50 ${cached.latency.p50} ms, p99 ${cached.latency.p99} ms) | ` +
          `${fmt(uncached.requests.average)} req/s (p50 ${uncached.latency.p50} ms, p99 ${uncached.latency.p99} ms) | ` +
          `${fmt(cached.requests.average / uncached.requests.average, 2)}x |${errors ? ` ${errors} errors/non-2xx` : ''}`,
      );
    }
    console.log('\n| endpoint | cache on | cache off (baseline) | ratio |\n|---|---|---|---|');
    for (const r of rows) console.log(r);
  } finally {
    await Promise.all([stop(on), stop(off)]);
    await dropRedisPrefix(prefix);
  }
}
