import type { Knex } from 'knex';

/**
 * The sweeper's look for bids waiting too long (status 'queued', received more
 * than a few seconds ago) reads the queued bids through bids_queued_idx: only
 * in-flight bids are queued, so the set is small, and the index on received_at
 * cost every bid one more index entry at intake for nothing else.
 */
// Concurrently (outside a transaction): a plain DROP INDEX locks bids and would
// stall the intake behind any long transaction while it waits.
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw('drop index concurrently if exists bids_queued_received_idx');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("create index bids_queued_received_idx on bids (received_at) where status = 'queued'");
}
