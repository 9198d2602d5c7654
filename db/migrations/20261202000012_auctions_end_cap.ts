import type { Knex } from 'knex';
import { withShortLockWait } from '../concurrent-ddl.js';

/**
 * The owner's early end as a cap (`end_cap`, the database time of the request's
 * end) instead of only `hard_end` (soft close off). With `hard_end`, an end
 * requested while the stored `ends_at` had passed but queued bids in its
 * soft-close window were not yet applied kept that stale end and stopped the
 * extension those bids make: bids received between the stale end and the
 * owner's request were refused as late, and the winner could change. Now soft
 * close still extends up to the cap, and never past it (the engine's endCap).
 *
 * `hard_end` stays, set with the cap, for a version still running during the
 * deploy; an ended auction's `hard_end` without a cap reads as a cap at its end.
 */
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await withShortLockWait(knex, 'alter table auctions add column if not exists end_cap timestamptz');
  await knex.raw('update auctions set end_cap = ends_at where hard_end and end_cap is null');
}

export async function down(knex: Knex): Promise<void> {
  await withShortLockWait(knex, 'alter table auctions drop column end_cap');
}
