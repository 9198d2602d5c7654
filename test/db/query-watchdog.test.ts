/**
 * The query watchdog on real connections through a TCP proxy that silences
 * them: a query with no answer past the limit fails and its connection is
 * dropped, and the connections not waiting for an answer are retired (the pool
 * discards them when it would hand them out); answered queries, in every form
 * pg takes, are not touched.
 */
import test from 'ava';
import pg from 'pg';
import { queryWatchdog } from '../../db/query-watchdog.js';
import { startTcpProxy } from '../helpers/proxy.js';

async function watchedClient(port: number, watch: ReturnType<typeof queryWatchdog>) {
  const c = new pg.Client({ host: '127.0.0.1', port, user: process.env.DB_USER ?? 'postgres', password: process.env.DB_PASSWORD, database: 'postgres' });
  c.on('error', () => undefined);
  await c.connect();
  await new Promise<void>((resolve, reject) => watch.afterCreate(c, (err) => (err ? reject(err) : resolve())));
  return c;
}

test('a query with no answer past the limit fails and its connection is dropped; the idle ones are retired', async (t) => {
  t.timeout(30_000);
  const proxy = await startTcpProxy(Number(process.env.DB_PORT ?? 5432), process.env.DB_HOST ?? '127.0.0.1');
  const watch = queryWatchdog(1_500);
  const [busy, idle] = [await watchedClient(proxy.port, watch), await watchedClient(proxy.port, watch)];
  const ended = (c: pg.Client) => new Promise<void>((resolve) => c.once('end', () => resolve()));
  const idleEnded = ended(idle);
  try {
    // Every form is tracked and released: a slow answer within the limit is fine.
    t.is((await busy.query('select pg_sleep(1) as x')).rowCount, 1);
    t.is((await busy.query({ text: 'select $1::int as x', values: [1] })).rows[0].x, 1);
    await new Promise<void>((resolve, reject) => busy.query('select 2 as x', (err: Error | null) => (err ? reject(err) : resolve())));
    await new Promise((r) => setTimeout(r, 2_000)); // idle past the limit: nothing pending, not dropped
    t.is((await busy.query('select 3 as x')).rows[0].x, 3);
    t.true(watch.validate(idle), 'nothing retired while every connection answers');

    proxy.blackhole();
    const started = Date.now();
    const err = await t.throwsAsync(busy.query('select 4'));
    const took = Date.now() - started;
    t.log(`failed after ${took} ms: ${err?.message}`);
    t.true(took >= 1_400, `not before the limit: ${took} ms`);
    t.regex(err?.message ?? '', /no answer from Postgres/);
    t.false(watch.validate(idle), 'the idle connection is retired');
    await idleEnded; // and its socket closed when the pool discarded it
  } finally {
    await proxy.close();
  }
});
