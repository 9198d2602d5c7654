import type { Knex } from 'knex';
import { dropIfInvalid, onOneConnection } from '../concurrent-ddl.js';

/**
 * One index of queued bids, (partition, auction_id, receipt_no), in place of
 * two: bids_queued_idx (auction_id, receipt_no) and bids_queued_partition_idx
 * (partition, auction_id), both `where status = 'queued'`.
 *
 * - A round's read of an auction's bids is now an index range in receipt order,
 *   cut at the auction's share (see drainInputsSelect), and the round's look
 *   uses the same index by partition.
 * - With two indexes on one predicate and statistics taken while few bids were
 *   queued, the planner read each round's bids by walking every queued bid of
 *   every auction through the partition index (a cost in the whole backlog, per
 *   round). With one, and the partition in every query, there is no such choice.
 * - A bid recorded writes one index entry fewer.
 *
 * The new index is built before the old ones are dropped, each concurrently
 * (outside a transaction, on one connection without the statement timeout),
 * so the intake never waits on a lock; an index left invalid by an interrupted
 * build is dropped and built again.
 */
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await dropIfInvalid(knex, 'bids_queued_by_partition_idx');
  await onOneConnection(knex, [
    "create index concurrently if not exists bids_queued_by_partition_idx on bids (partition, auction_id, receipt_no) where status = 'queued'",
    'drop index concurrently if exists bids_queued_idx',
    'drop index concurrently if exists bids_queued_partition_idx',
  ]);
}

export async function down(knex: Knex): Promise<void> {
  await dropIfInvalid(knex, 'bids_queued_idx');
  await dropIfInvalid(knex, 'bids_queued_partition_idx');
  await onOneConnection(knex, [
    "create index concurrently if not exists bids_queued_idx on bids (auction_id, receipt_no) where status = 'queued'",
    "create index concurrently if not exists bids_queued_partition_idx on bids (partition, auction_id) where status = 'queued'",
    'drop index concurrently if exists bids_queued_by_partition_idx',
  ]);
}
