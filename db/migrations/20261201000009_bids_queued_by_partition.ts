import type { Knex } from 'knex';

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

/** Runs `statements` on one connection, with no statement timeout. */
async function onOneConnection(knex: Knex, statements: string[]): Promise<void> {
  const client = knex.client as { acquireConnection(): Promise<unknown>; releaseConnection(c: unknown): Promise<void> };
  const connection = await client.acquireConnection();
  try {
    await knex.raw('set statement_timeout = 0').connection(connection);
    for (const sql of statements) await knex.raw(sql).connection(connection);
  } finally {
    await knex.raw('reset statement_timeout').connection(connection).catch(() => undefined);
    await client.releaseConnection(connection);
  }
}

/** Drops index `name` when a build of it was interrupted and left it invalid. */
async function dropIfInvalid(knex: Knex, name: string): Promise<void> {
  const { rows } = await knex.raw('select 1 from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = ? and not i.indisvalid', [name]);
  if (rows.length > 0) await onOneConnection(knex, [`drop index concurrently if exists ${name}`]);
}

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
