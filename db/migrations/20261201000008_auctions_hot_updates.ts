import type { Knex } from 'knex';

/**
 * Lets a round's update of an auction be a HOT update (no new index entries).
 *
 * Every round that applies bids updates the auction's row (seq, price, leader,
 * bid count), and publish marks update published_seq. Postgres can update a
 * row in place on its page, without a new entry in each of the table's eight
 * indexes, only when no indexed column changes, and a partial index's predicate
 * counts: the sweeper's index of auctions behind in publishing (`where
 * published_seq < seq`) made every one of those updates write eight index
 * entries (over 1,000 auctions, 2.5 auction updates per bid).
 *
 * The sweeper now reads live auctions through the status index (their number is
 * bounded by the shows running now), and the others through an index on a stored
 * generated column, `unpublished_not_live`: an auction not live (scheduled with
 * chat, ended, cancelled) behind in publishing. The flag is false for every live
 * auction, so a round's update leaves it unchanged; it flips only around a status
 * change, and for chat before a show.
 * fillfactor 90 leaves room on each new page for the updated versions.
 *
 * Adding a stored column rewrites the table under an exclusive lock (auctions
 * is small next to bids and events); the indexes are built and dropped
 * concurrently, outside a transaction.
 */
export const config = { transaction: false };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    "alter table auctions add column if not exists unpublished_not_live boolean generated always as (status <> 'live' and published_seq < seq) stored",
  );
  await knex.raw('create index concurrently if not exists auctions_unpublished_not_live_idx on auctions (id) where unpublished_not_live');
  await knex.raw('drop index concurrently if exists auctions_unpublished_idx');
  await knex.raw('alter table auctions set (fillfactor = 90)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('create index concurrently if not exists auctions_unpublished_idx on auctions (id) where published_seq < seq');
  await knex.raw('drop index concurrently if exists auctions_unpublished_not_live_idx');
  await knex.raw('alter table auctions drop column if exists unpublished_not_live');
  await knex.raw('alter table auctions reset (fillfactor)');
}
