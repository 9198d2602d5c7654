/**
 * The edge's group write of several auctions' bids (recordBids): one
 * statement that locks the receipt counters in id order, numbers each auction's
 * bids consecutively in the given order, skips idempotency replays and reports
 * unknown auctions as absent. Two edges writing overlapping auctions in opposite
 * orders at once must neither deadlock nor hand out a receipt number twice.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createDb, type Knex } from '../../db/client.js';
import { recordBids, type IntakeItem } from '../../db/operations/auctions.js';
import { createTestDatabase } from '../helpers/db.js';
import { testConfig } from '../helpers/config.js';
import { insertLiveAuctions } from '../helpers/auctions.js';

let db: Knex;
let drop: () => Promise<void>;
let bidder: string;
let auctions: string[];

test.before(async () => {
  const made = await createTestDatabase();
  drop = made.drop;
  db = createDb(testConfig(), { database: made.name, poolMax: 8 });
  const [seller] = await db('users').insert({ email: 's@rb', name: 'S', role: 'seller', password_hash: 'x' }).returning('id');
  const [buyer] = await db('users').insert({ email: 'b@rb', name: 'B', role: 'buyer', password_hash: 'x' }).returning('id');
  bidder = buyer.id;
  auctions = await insertLiveAuctions(db, seller.id, 6);
});

test.after.always(async () => {
  await db?.destroy();
  await drop?.();
});

const item = (amount: number, idempotencyKey: string | null = null): IntakeItem => ({ id: randomUUID(), kind: 'bid', bidderId: bidder, amount, idempotencyKey });

test.serial('numbers each auction’s bids in the order given, skips replays, leaves unknown auctions out', async (t) => {
  const [a, b] = auctions as [string, string];
  const unknown = randomUUID();
  const first = [item(100), item(200, 'k-1'), item(300)];
  const out = await recordBids(db, [
    { auctionId: b, items: [item(150)] },
    { auctionId: unknown, items: [item(1)] },
    { auctionId: a, items: first },
  ]);
  t.false(out.has(unknown));
  t.deepEqual(out.get(a), { ids: new Set(first.map((i) => i.id)), upTo: 3 });
  t.is(out.get(b)!.upTo, 1);
  const rows = await db('bids').where({ auction_id: a }).orderBy('receipt_no').select('id', 'receipt_no');
  t.deepEqual(
    rows.map((r: { id: string }) => r.id),
    first.map((i) => i.id),
  );
  t.is((await db('bids').where({ auction_id: unknown }).count<{ count: string }[]>('* as count'))[0]!.count, '0');

  // A replay of k-1 is not inserted again; the auction is still reported, with nothing new.
  const again = await recordBids(db, [
    { auctionId: a, items: [item(200, 'k-1')] },
    { auctionId: b, items: [item(250)] },
  ]);
  t.deepEqual(again.get(a), { ids: new Set(), upTo: 0 });
  t.is(again.get(b)!.upTo, 2);
});

test.serial('writers locking overlapping auctions in opposite orders neither deadlock nor share a receipt number', async (t) => {
  const set = auctions.slice(2) as string[];
  const before = await db('bids').whereIn('auction_id', set).count<{ count: string }[]>('* as count');
  t.is(before[0]!.count, '0');
  const writes: Promise<unknown>[] = [];
  for (let round = 0; round < 40; round++) {
    const order = round % 2 === 0 ? set : [...set].reverse();
    writes.push(recordBids(db, order.map((auctionId) => ({ auctionId, items: [item(100 + round), item(200 + round)] }))));
  }
  const results = await Promise.allSettled(writes);
  t.deepEqual(
    results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)),
    [],
  );
  for (const auctionId of set) {
    const nos = (await db('bids').where({ auction_id: auctionId }).orderBy('receipt_no').pluck('receipt_no')).map(Number);
    t.deepEqual(nos, Array.from({ length: 80 }, (_, i) => i + 1), `auction ${auctionId}: gapless, no duplicate`);
    const counter = await db('auction_counters').where({ auction_id: auctionId }).first();
    t.is(Number(counter.receipts), 80);
  }
});

test.serial('a writer blocked on its lowest auction holds no lock on its others (locks are taken in id order, before any update)', async (t) => {
  const sorted = [...auctions].sort(); // uuid order in Postgres is the order of the lowercase hex text
  const [lowest, ...others] = sorted as [string, ...string[]];
  const holder = await db.transaction();
  await holder.raw('select 1 from auction_counters where auction_id = ? for update', [lowest]);
  // Given in reverse id order: a writer that locked as it went would hold the others first.
  const write = recordBids(
    db,
    [...sorted].reverse().map((auctionId) => ({ auctionId, items: [item(999)] })),
  );
  // Until the writer waits for the holder's lock (a fixed pause could end before
  // it got there on a loaded machine, and the check below would prove nothing).
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await db.raw(
      "select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and state = 'active' and query like '%auction_counters%'",
    );
    if (rows.length > 0) break;
    if (Date.now() > deadline) throw new Error('the writer never waited for the lock');
    await new Promise((r) => setTimeout(r, 20));
  }
  const held: string[] = [];
  for (const id of others) {
    try {
      await db.raw('select 1 from auction_counters where auction_id = ? for update nowait', [id]);
    } catch (err) {
      if ((err as { code?: string }).code !== '55P03') throw err;
      held.push(id);
    }
  }
  await holder.commit();
  const out = await write;
  t.deepEqual(held, [], 'the blocked writer already held these');
  t.is(out.size, sorted.length);
});

test.serial('writers inserting the same Idempotency-Keys in crossed orders both complete, each key recorded once', async (t) => {
  // W1 inserts k1 (its lowest auction) then k2; W2 inserts k2 then k1. Many
  // bids between keep both first inserts ahead of either second one, so each
  // waits for the other's transaction: Postgres aborts one as a deadlock, and the
  // write is retried (every bid of it, not only these, would have got a 503).
  const [s0, s1, s2, s3] = [...auctions].sort() as [string, string, string, string];
  const [k1, k2] = [`dl-1-${randomUUID()}`, `dl-2-${randomUUID()}`];
  const fillers = () => Array.from({ length: 3000 }, () => item(10));
  const w1 = [item(101, k1), item(102, k2)];
  const w2 = [item(201, k2), item(202, k1)];
  const results = await Promise.allSettled([
    recordBids(db, [{ auctionId: s0, items: [w1[0]!, ...fillers()] }, { auctionId: s1, items: [w1[1]!] }]),
    recordBids(db, [{ auctionId: s2, items: [w2[0]!, ...fillers()] }, { auctionId: s3, items: [w2[1]!] }]),
  ]);
  t.deepEqual(
    results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)),
    [],
  );
  for (const key of [k1, k2]) {
    t.is((await db('bids').where({ bidder_id: bidder, idempotency_key: key }).count<{ count: string }[]>('* as count'))[0]!.count, '1');
  }
  // What each write reports as recorded is what is there.
  const recorded = results.flatMap((r) => (r.status === 'fulfilled' ? [...r.value.values()].flatMap((v) => [...v.ids]) : []));
  const keyed = [...w1, ...w2].filter((i) => recorded.includes(i.id)).map((i) => i.idempotencyKey).sort();
  t.deepEqual(keyed, [k1, k2].sort());
});
