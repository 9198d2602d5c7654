/**
 * The app's connections plan with random_page_cost DB_RANDOM_PAGE_COST (1.1; see
 * knexConfig in db/client.ts). The case it is for: the foreign-key check every
 * bid makes on users (`SELECT 1 FROM ONLY users x WHERE id = $1 FOR KEY SHARE
 * OF x`, as Postgres's RI trigger runs it, with a generic plan) on the small
 * users table of a young marketplace. With Postgres's default of 4 it is a
 * sequential scan of every user, each locked by other bids' checks.
 */
import test from 'ava';
import { createDb, type Knex } from '../../db/client.js';
import { createTestDatabase } from '../helpers/db.js';
import { testConfig } from '../helpers/config.js';

let db: Knex;
let name: string;
let drop: () => Promise<void>;

test.before(async () => {
  const made = await createTestDatabase();
  ({ name, drop } = made);
  db = createDb(testConfig(), { database: name, poolMax: 1 });
  // 200 bidders, as in the bids benchmark: three pages.
  await db('users').insert(Array.from({ length: 200 }, (_, i) => ({ email: `u${i}@planner`, name: `U${i}`, role: 'buyer', password_hash: 'x' })));
  await db.raw('analyze users');
});

test.after.always(async () => {
  await db?.destroy();
  await drop?.();
});

/** The plan of the users foreign-key check on `on`, generic as the RI trigger's is. */
async function fkCheckPlan(on: Knex): Promise<string> {
  return on.transaction(async (trx) => {
    await trx.raw('set local plan_cache_mode = force_generic_plan');
    await trx.raw('prepare fk_check(uuid) as select 1 from only users x where id operator(pg_catalog.=) $1 for key share of x');
    const { rows } = await trx.raw(`explain execute fk_check('00000000-0000-0000-0000-000000000000')`);
    await trx.raw('deallocate fk_check');
    return (rows as { 'QUERY PLAN': string }[]).map((r) => r['QUERY PLAN']).join('\n');
  });
}

test('app connections plan with random_page_cost 1.1 by default, or DB_RANDOM_PAGE_COST', async (t) => {
  const { rows } = await db.raw('show random_page_cost');
  t.is(rows[0].random_page_cost, '1.1');
  const other = createDb(testConfig({ DB_RANDOM_PAGE_COST: '2.5' }), { database: name, poolMax: 1 });
  try {
    const { rows: r } = await other.raw('show random_page_cost');
    t.is(r[0].random_page_cost, '2.5');
  } finally {
    await other.destroy();
  }
});

test("a bid's foreign-key check on a small users table is an index lookup, not a scan of every user", async (t) => {
  t.regex(await fkCheckPlan(db), /Index Scan using users_pkey/);
  // What it is with Postgres's default (the setting does what this test says).
  const stock = createDb(testConfig({ DB_RANDOM_PAGE_COST: '4' }), { database: name, poolMax: 1 });
  try {
    t.regex(await fkCheckPlan(stock), /Seq Scan on users/);
  } finally {
    await stock.destroy();
  }
});
