import type { Knex } from 'knex';
import { withShortLockWait } from '../concurrent-ddl.js';

/**
 * A ban's period, so that a bid is judged by the bans in force when the edge
 * received it, not when a worker applies it: `starts_at` (the database clock at
 * the ban) up to `expires_at` (null: until lifted). Lifting a ban now ends its
 * period (expires_at = now) instead of deleting the row, and a new ban after one
 * has ended starts a new period. Existing bans start at their creation.
 *
 * Before, a round read the bans in force at its own time: a bid received before
 * a ban but applied after it was refused as `banned`, and one received during a
 * ban that had expired or been lifted by the time it was applied was accepted.
 * (Only the latest period is kept: a ban lifted and imposed again while a bid of
 * the first period is still queued judges that bid by the second.)
 */
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  // Not null with a default from the start (no rewrite): a ban the running
  // version inserts meanwhile starts at its insert, as its created_at does.
  await withShortLockWait(knex, 'alter table auction_bans add column if not exists starts_at timestamptz not null default CURRENT_TIMESTAMP');
  await knex.raw('update auction_bans set starts_at = created_at where starts_at <> created_at');
}

export async function down(knex: Knex): Promise<void> {
  // Ended periods were lifted bans, which had been deleted.
  await knex.raw('delete from auction_bans where expires_at is not null and expires_at <= clock_timestamp()');
  await withShortLockWait(knex, 'alter table auction_bans drop column starts_at');
}
