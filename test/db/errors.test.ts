/**
 * Postgres errors that client input can cause map to 4xx (lib/errors.ts
 * fromPostgres), checked against the errors a real server raises.
 */
import test from 'ava';
import { createDb, type Knex } from '../../db/client.js';
import { fromPostgres } from '../../lib/errors.js';
import { testConfig } from '../helpers/config.js';

let db: Knex;

test.before(() => {
  db = createDb(testConfig(), { database: 'postgres', poolMax: 1 });
});

test.after.always(async () => {
  await db?.destroy();
});

const raised = async (sql: string, bindings: unknown[]) => {
  try {
    await db.raw(sql, bindings as Knex.RawBinding[]);
  } catch (err) {
    return err;
  }
  throw new Error(`no error from ${sql}`);
};

test('dates Postgres cannot take (year 0, a sign read as a time zone, garbage) are 400 validation_failed', async (t) => {
  for (const value of ['0000-01-01T00:00:00.000Z', '+010000-01-01T00:00:00.000Z', '0NaN-NaN-NaNTNaN:NaN:NaN.NaN+NaN:NaN']) {
    const err = await raised('select ?::timestamptz', [value]);
    const mapped = fromPostgres(err);
    t.is(mapped?.status, 400, `${value}: ${(err as { code?: string }).code} ${(err as Error).message}`);
    t.is(mapped?.code, 'validation_failed');
  }
});

test('a NUL in text and a number out of a column type\'s range are 400 validation_failed', async (t) => {
  for (const [sql, value] of [
    ['select ?::text', 'a\u0000b'],
    ['select ?::real', 1e-50],
    ['select ?::int', 2 ** 40],
  ] as const) {
    const err = await raised(sql, [value]);
    const mapped = fromPostgres(err);
    t.is(mapped?.status, 400, `${sql}: ${(err as { code?: string }).code} ${(err as Error).message}`);
    t.is(mapped?.code, 'validation_failed');
  }
});

test('a database gone or going is 503 service_unavailable; a protocol violation (class 08 too) is not', async (t) => {
  // A real admin shutdown of this session's backend: 57P01 on the next statement.
  const victim = createDb(testConfig(), { database: 'postgres', poolMax: 1 });
  try {
    // On a connection held in a transaction: an idle pooled one could be dropped
    // and replaced before the next statement, which would then succeed.
    const trx = await victim.transaction();
    const pid = (await trx.raw('select pg_backend_pid() as pid')).rows[0].pid;
    await db.raw('select pg_terminate_backend(?)', [pid]);
    const err = await trx.raw('select 1').then(() => undefined, (e: unknown) => e);
    await trx.rollback().catch(() => undefined);
    t.truthy(err, 'the terminated session fails');
    t.is(fromPostgres(err)?.code, 'service_unavailable', String((err as Error).message));
  } finally {
    await victim.destroy();
  }
  // A statement with more parameters than the protocol carries (65,535): 08P01, a bug a retry repeats.
  const many = Array.from({ length: 70_000 }, (_, i) => i);
  const err = await raised(`select 1 where 1 in (${many.map(() => '?').join(',')})`, many);
  t.is((err as { code?: string }).code, '08P01');
  t.not(fromPostgres(err)?.code, 'service_unavailable');
});
