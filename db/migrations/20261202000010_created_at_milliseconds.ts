import type { Knex } from 'knex';
import { withShortLockWait } from '../concurrent-ddl.js';

/**
 * Creation times in whole milliseconds, for the lists paged by (created_at, id):
 * auctions, products, notifications.
 *
 * A page's cursor carries its last row's created_at as an ISO string, which
 * holds milliseconds, while Postgres kept microseconds. The next page asked for
 * rows before (cursor time, id), and a row created earlier in the same
 * millisecond as the last one (or in the same transaction: equal times) was
 * after the truncated cursor time, so it was on neither page. With times in
 * whole milliseconds the cursor is exact, and rows of one millisecond are
 * ordered by id, as the cursor's tie-break expects.
 *
 * Each table's default changes (no rewrite; a short lock, asked for with a short
 * wait) and its existing rows are truncated in batches, so no statement holds
 * many row locks for long.
 */
export const config = { transaction: false };

const TABLES = ['auctions', 'products', 'notifications'];
const BATCH = 5_000;

export async function up(knex: Knex): Promise<void> {
  for (const table of TABLES) {
    await withShortLockWait(knex, `alter table ${table} alter column created_at set default date_trunc('milliseconds', now())`);
    // Batches in id order (each starts where the last ended, not again from the table's start).
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const { rows } = await knex.raw(
        `with b as (select id from ${table} where id > ?::uuid order by id limit ${BATCH}),
         u as (update ${table} t set created_at = date_trunc('milliseconds', t.created_at)
               from b where t.id = b.id and t.created_at <> date_trunc('milliseconds', t.created_at))
         select max(id::text) as last from b`,
        [after],
      );
      if (!rows[0].last) break;
      after = rows[0].last as string;
    }
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of TABLES) {
    await withShortLockWait(knex, `alter table ${table} alter column created_at set default CURRENT_TIMESTAMP`);
  }
}
