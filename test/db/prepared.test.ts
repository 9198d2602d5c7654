/**
 * The bid path's hot statements run as named prepared statements (db/client.ts,
 * `prepared`): parsed once per connection, and a migration that adds a column
 * must not break them on connections already open (their results list columns,
 * never a table's `*`).
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createDb, rawTransaction, type Knex, type RawTx } from '../../db/client.js';
import { lockQueuedAuctions, recordBids, writeRound } from '../../db/operations/auctions.js';
import { markPublished } from '../../lib/publisher.js';
import { bidPartition } from '../../queues/names.js';
import { createTestDatabase } from '../helpers/db.js';
import { testConfig } from '../helpers/config.js';
import { insertLiveAuctions } from '../helpers/auctions.js';

let db: Knex;
let drop: () => Promise<void>;
let bidder: string;
let auction: string;

test.before(async () => {
  const made = await createTestDatabase();
  drop = made.drop;
  // One connection: what it has prepared is what the next query sees.
  db = createDb(testConfig(), { database: made.name, poolMax: 1 });
  const [seller] = await db('users').insert({ email: 's@pp', name: 'S', role: 'seller', password_hash: 'x' }).returning('id');
  const [buyer] = await db('users').insert({ email: 'b@pp', name: 'B', role: 'buyer', password_hash: 'x' }).returning('id');
  bidder = buyer.id;
  [auction] = (await insertLiveAuctions(db, seller.id, 1)) as [string];
  await recordBids(db, [{ auctionId: auction, items: [{ id: randomUUID(), kind: 'bid', bidderId: bidder, amount: 5_000, idempotencyKey: null }] }]);
});

test.after.always(async () => {
  await db?.destroy();
  await drop?.();
});

/** The round's look, lock and read, rolled back (the bid stays queued). */
async function look(): Promise<Awaited<ReturnType<typeof lockQueuedAuctions>>> {
  const trx = await db.transaction();
  try {
    return await lockQueuedAuctions(trx, [bidPartition(auction)], 200, 2_000);
  } finally {
    await trx.rollback();
  }
}

test.serial('recording bids, a round’s look and write, and publish marks are named prepared statements', async (t) => {
  await look();
  await db.transaction((trx) => writeRound(trx, { verdicts: [], proxies: [], frames: [], states: [], userEvents: [] }));
  await markPublished(db, { auctions: new Map([[auction, 0]]), userBatchIds: [] });
  const { rows } = await db.raw('select name from pg_prepared_statements order by name');
  const names = (rows as { name: string }[]).map((r) => r.name);
  for (const name of ['blytz_lock_queued_auctions', 'blytz_mark_published', 'blytz_record_bids', 'blytz_write_round']) t.true(names.includes(name), name);
});

test.serial('a column added to auctions while the statements are prepared does not break them', async (t) => {
  // Enough runs for Postgres to consider a generic plan too.
  for (let i = 0; i < 7; i++) t.deepEqual((await look()).inputs.bids.get(auction)?.map((b) => b.amount), [5_000]);
  await db.raw('alter table auctions add column migrated_later integer');
  try {
    const after = await look();
    t.deepEqual(after.rows.map((r) => r.id), [auction]);
    t.deepEqual(after.inputs.bids.get(auction)?.map((b) => b.amount), [5_000]);
    t.false('migrated_later' in after.rows[0]!, 'the result keeps its listed columns');
  } finally {
    await db.raw('alter table auctions drop column migrated_later');
  }
});

test.serial('a drain round’s raw transaction (rawTransaction) runs the same prepared statements as knex on the same connection; commits, rolls back, and gives the connection back', async (t) => {
  class Rollback extends Error {}
  const rawLook = async () => {
    let out: Awaited<ReturnType<typeof lockQueuedAuctions>> | undefined;
    await t.throwsAsync(
      rawTransaction(db, async (tx) => {
        out = await lockQueuedAuctions(tx, [bidPartition(auction)], 200, 2_000);
        throw new Rollback();
      }),
      { instanceOf: Rollback },
    );
    return out!;
  };
  // Alternating on the one connection: a name prepared one way is run the other
  // (node-postgres refuses a name reused for another text).
  for (let i = 0; i < 3; i++) {
    t.deepEqual((await rawLook()).inputs.bids.get(auction)?.map((b) => b.amount), [5_000]);
    t.deepEqual((await look()).inputs.bids.get(auction)?.map((b) => b.amount), [5_000]);
  }
  t.is(await rawTransaction(db, (tx) => writeRound(tx, { verdicts: [], proxies: [], frames: [], states: [], userEvents: [] })), null);
  const { rows } = await db.raw("select count(*)::int as n from pg_prepared_statements where name in ('blytz_lock_queued_auctions', 'blytz_write_round')");
  t.is(rows[0].n, 2, 'each prepared once');
  // Commits what it did, rolls back what a throw interrupted.
  const title = async () => (await db('auctions').where({ id: auction }).first()).title as string;
  await rawTransaction(db, (tx) => tx.query('update auctions set title = ? where id = ?', ['kept', auction]));
  t.is(await title(), 'kept');
  await t.throwsAsync(
    rawTransaction(db, async (tx) => {
      await tx.query('update auctions set title = ? where id = ?', ['lost', auction]);
      throw new Rollback();
    }),
  );
  t.is(await title(), 'kept');
  // A failed statement too; and the one connection is free again after each.
  await t.throwsAsync(rawTransaction(db, (tx) => tx.query('select 1/0', [])), { message: /division by zero/ });
  t.is(await title(), 'kept');
  // As knex: an undefined value is refused (pg would send NULL), and so is a
  // statement on a transaction that has ended.
  await t.throwsAsync(rawTransaction(db, (tx) => tx.query('select ?::int[] as x', [[1, undefined]])), { message: /undefined value/ });
  await t.throwsAsync(rawTransaction(db, (tx) => tx.query('update auctions set title = ? where id = ?', [undefined, auction])), { message: /undefined value/ });
  t.is(await title(), 'kept');
  let ended: RawTx | undefined;
  await rawTransaction(db, async (tx) => void (ended = tx));
  await t.throwsAsync(ended!.query('update auctions set title = ? where id = ?', ['late', auction]), { message: /has ended/ });
  t.is(await title(), 'kept');
  await t.throwsAsync(rawTransaction(db, (tx) => tx.query('select ?? from auctions', ['id'])), { message: /not supported/ });
});

test.serial('a migration that changes a listed result column’s type: the statement fails once, then runs prepared afresh', async (t) => {
  // Last in this file: it changes the schema for good. Both statements are prepared on the connection by now.
  const item = () => ({ id: randomUUID(), kind: 'bid' as const, bidderId: bidder, amount: 6_000, idempotencyKey: null });
  // recordBids's up_to is max(bids.receipt_no): its type changes with the column's.
  await db.raw('alter table bids alter column receipt_no type numeric');
  // Not in a transaction: run again at once under a new name.
  const out = await recordBids(db, [{ auctionId: auction, items: [item()] }]);
  t.is(out.get(auction)!.upTo, 2);
  // Inside a transaction the failure aborts it; the next one (the drain's retry) works.
  await db.raw('alter table auctions alter column bid_count type bigint');
  await t.throwsAsync(look(), { message: /cached plan must not change result type/ });
  t.deepEqual((await look()).inputs.bids.get(auction)?.map((b) => b.amount), [5_000, 6_000]);
  const { rows } = await db.raw("select name from pg_prepared_statements where name like 'blytz_%' order by name");
  t.true((rows as { name: string }[]).some((r) => r.name === 'blytz_lock_queued_auctions_1'));
});
