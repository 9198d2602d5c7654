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
    for (;;) {
      const { rowCount } = await knex.raw(
        `update ${table} set created_at = date_trunc('milliseconds', created_at)
         where ctid = any(array(select ctid from ${table} where created_at <> date_trunc('milliseconds', created_at) limit ${BATCH}))`,
      );
      if (!rowCount) break;
    }
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of TABLES) {
    await withShortLockWait(knex, `alter table ${table} alter column created_at set default CURRENT_TIMESTAMP`);
  }
}
