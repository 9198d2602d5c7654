/**
 * Drains of many partitions at once in one worker process share their rounds
 * (workers/handlers/bid-drain.ts, RoundMerger). More auctions are queued than
 * one round takes (200), so some partitions are left out of a round's look and
 * must come again rather than stop.
 */
import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { Knex } from 'knex';
import { registerUser, useSystem } from '../helpers/system.js';
import { bid, insertLiveAuctions, liveAuction, storedUserEvents, waitFor } from '../helpers/auctions.js';
import { applyQueuedMany, bidDrain, drainTuning, settleDrains } from '../../workers/handlers/bid-drain.js';
import { BID_PARTITIONS, bidPartition, bidQueueFor } from '../../queues/names.js';
import { lockQueuedAuctions, recordBids, type IntakeItem } from '../../db/operations/auctions.js';

// Serial: both tests drive the one in-process worker context (and so its merged rounds).
const system = useSystem(test, { workers: false, env: { RATE_LIMIT_BIDS_PER_MIN: '100000', RATE_LIMIT_GENERAL_PER_MIN: '100000' } });

test.serial('concurrent drains of every partition apply every bid once, in receipt order per auction', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const bidders = [await registerUser(sys), await registerUser(sys)];
  const ids = await insertLiveAuctions(sys.db, seller.id, 400);
  // Partition 0's bids are recorded last, so a look over all partitions, oldest
  // first and cut at 200 auctions, leaves it out entirely.
  const late = ids.filter((id) => bidPartition(id) === 0);
  const early = ids.filter((id) => bidPartition(id) !== 0);
  t.true(early.length > 200 + 60 && late.length > 0);
  for (const group of [early, late]) {
    // Two bids per auction from alternating bidders, the second higher.
    for (const amount of [200, 300]) {
      for (let i = 0; i < group.length; i += 40) {
        const answers = await Promise.all(group.slice(i, i + 40).map((id, k) => bid(sys, bidders[(k + amount / 100) % 2]!, id, amount)));
        t.true(answers.every((r) => r.status === 202));
      }
    }
  }
  const partitions = new Map<number, string>();
  for (const id of ids) partitions.set(bidPartition(id), id);
  t.is(partitions.size, BID_PARTITIONS, 'every partition has auctions');
  // Partition 0's drain asks last: it shares a round with the others.
  const order = [...partitions.keys()].sort((a, b) => b - a);
  const results = await Promise.all(order.map((p) => bidDrain(sys.workerCtx, { auctionId: partitions.get(p)!, upTo: 0 })));
  t.is(results.reduce((n, r) => n + r.applied, 0), ids.length * 2, 'each bid applied once');
  t.is(Number((await sys.db('bids').where({ status: 'queued' }).count<{ count: string }[]>('* as count'))[0]!.count), 0, 'none left queued');
  // Publishing is recorded, by later rounds or by a statement of its own: every
  // auction's published_seq reaches its seq and every private event is marked.
  await waitFor(async () => {
    const [behind] = await sys.db('auctions').whereIn('id', ids).whereRaw('published_seq < seq').count<{ count: string }[]>('* as count');
    const unmarked = (await storedUserEvents(sys.db, bidders.map((b) => b.id))).filter((e) => e.publishedAt === null);
    return Number(behind!.count) === 0 && unmarked.length === 0;
  }, 5_000, 'publishing recorded');
  // Stored at all (the wait above also passes when nothing is): per auction two acks and an outbid notice.
  t.is((await storedUserEvents(sys.db, bidders.map((b) => b.id))).length, ids.length * 3);
  const rows = await sys.db('bids').whereIn('auction_id', ids).orderBy([{ column: 'auction_id' }, { column: 'receipt_no' }]);
  const byAuction = new Map<string, { amount: string; status: string; seq: string | null }[]>();
  for (const r of rows) byAuction.set(r.auction_id, [...(byAuction.get(r.auction_id) ?? []), r]);
  for (const [id, list] of byAuction) {
    t.deepEqual(
      list.map((b) => [Number(b.amount), b.status, Number(b.seq)]),
      [
        [200, 'accepted', 1],
        [300, 'accepted', 2],
      ],
      id,
    );
  }
  // Each stored event's payload is its own (a round writes many auctions' events in one statement).
  const events = await sys.db('auction_events').whereIn('auction_id', ids);
  t.is(events.length, ids.length * 2);
  t.deepEqual(
    events.filter((e) => e.payload.auctionId !== e.auction_id || e.payload.seq !== Number(e.seq) || e.payload.type !== e.type),
    [],
  );
  t.deepEqual(
    events.map((e) => `${e.auction_id}:${e.payload.amount}:${e.payload.seq}`).sort(),
    ids.flatMap((id) => [`${id}:200:1`, `${id}:300:2`]).sort(),
  );
});

/** Drain rounds so far that took their auctions from a backlog's list. */
async function listedRounds(sys: ReturnType<typeof system>): Promise<number> {
  return (await sys.workerCtx.metrics!.rounds.get()).values.find((v) => v.labels.choice === 'list')?.value ?? 0;
}

/** A drain of every partition at once (one auction of each names it). */
async function drainAll(sys: ReturnType<typeof system>, ids: string[]): Promise<number> {
  const partitions = new Map<number, string>();
  for (const id of ids) partitions.set(bidPartition(id), id);
  const results = await Promise.all([...partitions.values()].map((id) => bidDrain(sys.workerCtx, { auctionId: id, upTo: 0 })));
  return results.reduce((n, r) => n + r.applied, 0);
}

test.serial('a backlog is worked through from a list of its auctions: every bid applied once, in receipt order, and bids queued after the list too', async (t) => {
  const sys = system();
  // Rounds here are quick: any full round starts a list, as a slow one does in a real backlog.
  const slowLookMs = drainTuning.slowLookMs;
  drainTuning.slowLookMs = 0;
  t.teardown(() => {
    drainTuning.slowLookMs = slowLookMs;
  });
  const seller = await registerUser(sys, 'seller');
  const users = [await registerUser(sys), await registerUser(sys)];
  const ids = await insertLiveAuctions(sys.db, seller.id, 300);
  const deep = ids[0]!;
  const mine = new Set<string>();
  const item = (amount: number, j: number) => {
    const it = intakeItem(users[j % 2]!.id, amount);
    mine.add(it.id);
    return it;
  };
  // A backlog (an outage): 2,500 bids on one auction (more than a round reads)
  // and two on each of 299 others (more auctions than a round locks).
  for (let i = 0; i < 5; i++) await recordBids(sys.db, [{ auctionId: deep, items: Array.from({ length: 500 }, (_, j) => item(10_000 * (1 + i * 500 + j), j)) }]);
  for (const amount of [200, 300]) await recordBids(sys.db, ids.slice(1).map((id, k) => ({ auctionId: id, items: [item(amount, k + amount / 100)] })));
  const listedBefore = await listedRounds(sys);
  t.true((await drainAll(sys, ids)) >= mine.size);
  t.true((await listedRounds(sys)) > listedBefore, 'rounds took their auctions from the list');

  // Queued after the backlog was listed and drained (on auctions never listed, and on
  // the deep one): applied too. (Too few to list: these go through ordinary looks.)
  const later = await insertLiveAuctions(sys.db, seller.id, 20);
  await recordBids(sys.db, later.map((id, k) => ({ auctionId: id, items: [item(500, k)] })));
  await recordBids(sys.db, [{ auctionId: deep, items: [item(10_000 * 3_000, 0)] }]);
  t.true((await drainAll(sys, [...ids, ...later])) >= 21);

  const rows = await sys.db('bids').whereIn('id', [...mine]).orderBy([{ column: 'auction_id' }, { column: 'receipt_no' }]);
  t.is(rows.length, mine.size);
  t.deepEqual(rows.filter((r) => r.status === 'queued'), [], 'every bid has its verdict');
  t.is(rows.filter((r) => r.status === 'accepted').length, mine.size, 'each bid outbids the one before it');
  // Receipt order: each auction's bids (all accepted, each an event) have consecutive seqs in receipt order.
  const byAuction = new Map<string, number[]>();
  for (const r of rows) byAuction.set(r.auction_id, [...(byAuction.get(r.auction_id) ?? []), Number(r.seq)]);
  for (const [id, seqs] of byAuction) t.deepEqual(seqs, seqs.map((_, i) => seqs[0]! + i), `${id}: seqs follow receipt order`);
  t.is(byAuction.get(deep)!.length, 2_501);
});

test.serial('a round that fails for one partition does not stop the others', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const [cat] = await sys.db('categories').insert({ name: 'Poison', slug: 'poison' }).returning('id');
  // Auctions until three partitions have one each.
  const byPartition = new Map<number, string>();
  while (byPartition.size < 3) {
    const [p] = await sys.db('products').insert({ seller_id: seller.id, category_id: cat.id, title: 'Lot', price: 100 }).returning('id');
    const [a] = await sys.db('auctions')
      .insert({ seller_id: seller.id, product_id: p.id, title: 'Lot', status: 'live', starting_price: 100, current_price: 100, duration_seconds: 3600, starts_at: sys.db.fn.now(), ends_at: sys.db.raw("now() + interval '1 hour'"), soft_close_seconds: 0 })
      .returning('id');
    await sys.db('auction_counters').insert({ auction_id: a.id });
    if (!byPartition.has(bidPartition(a.id))) byPartition.set(bidPartition(a.id), a.id);
  }
  const [bad, good, blocker] = [...byPartition.values()] as [string, string, string];
  // Applying any bid of `bad` fails (as a constraint or an engine bug would).
  await sys.db.raw(`create function fail_bad() returns trigger language plpgsql as $$
    begin if new.auction_id = '${bad}' and new.status <> 'queued' then raise exception 'poisoned'; end if; return new; end $$`);
  await sys.db.raw('create trigger fail_bad before update on bids for each row execute function fail_bad()');
  t.teardown(async () => {
    await sys.db.raw('drop trigger if exists fail_bad on bids');
    await sys.db.raw('drop function if exists fail_bad()');
  });
  for (const id of [bad, good, blocker]) t.is((await bid(sys, u, id, 500)).status, 202);
  // A first round (the blocker's) waits on a row lock held here, so that the bad and
  // the good partitions ask meanwhile and share the next round.
  const trx = await sys.db.transaction();
  await trx('auctions').where({ id: blocker }).forNoKeyUpdate().first();
  const first = bidDrain(sys.workerCtx, { auctionId: blocker, upTo: 1 });
  // Until the blocker's round waits for the lock (a fixed pause could end first on a loaded machine).
  await waitFor(async () => {
    const { rows } = await sys.db.raw("select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and state = 'active'");
    return rows.length > 0 ? true : undefined;
  }, 10_000, "the blocker's round waiting for the lock");
  const both = Promise.allSettled([bidDrain(sys.workerCtx, { auctionId: bad, upTo: 1 }), bidDrain(sys.workerCtx, { auctionId: good, upTo: 1 })]);
  // They join the next round after one Redis round trip each (the wake flag).
  await new Promise((r) => setTimeout(r, 300));
  await trx.commit();
  await first;
  const [badDrain, goodDrain] = await both;
  t.is(badDrain.status, 'rejected', 'the poisoned partition fails (its job retries)');
  t.is(goodDrain.status, 'fulfilled');
  t.is((await sys.db('bids').where({ auction_id: good }).first()).status, 'accepted', 'the other partition is drained');
  t.is((await sys.db('bids').where({ auction_id: bad }).first()).status, 'queued');
});

test.serial('a drain ends without waiting for its publish marks; settleDrains (shutdown) records them', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const bidder = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const placed = await bid(sys, bidder, a.id, 50_000);
  t.is(placed.status, 202);
  // Marks wait a minute for a later round here, so that what the drain left is seen.
  const marksWaitMs = drainTuning.marksWaitMs;
  drainTuning.marksWaitMs = 60_000;
  try {
    // At least this bid (the partition may hold another test's leftovers: the poisoned one above).
    t.true((await bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 0 })).applied >= 1);
    // The drain has ended; its last round's marks are not recorded yet.
    const left = await sys.db('auctions').where({ id: a.id }).first();
    t.true(Number(left.published_seq) < Number(left.seq), 'the drain did not wait for its marks');
    // (Its private events' batch is not checked here: any round's statement records
    // every pending batch, and a round of another partition, a leftover of an
    // earlier test, may have carried it meanwhile.)
    await settleDrains(sys.workerCtx);
  } finally {
    drainTuning.marksWaitMs = marksWaitMs;
  }
  // Recorded by the time settleDrains returns: no waiting here.
  const row = await sys.db('auctions').where({ id: a.id }).first();
  t.is((await sys.db('bids').where({ id: placed.body.bidId }).first()).status, 'accepted');
  t.is(Number(row.published_seq), Number(row.seq), "the last round's publishing is recorded");
  t.true(Number(row.seq) >= 2, 'started and a bid placed');
  const unmarked = (await storedUserEvents(sys.db, [bidder.id])).filter((e) => e.publishedAt === null);
  t.deepEqual(unmarked, [], "the round's private events are marked");
  t.is((await storedUserEvents(sys.db, [bidder.id], 'bid.ack')).length, 1);
});

test.serial("a proxy placed in a round bids under its owner's name later in the same round", async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const [x, y] = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller);
  // Both queued before any drain: one round applies them, X's proxy answering Y's bid.
  t.is((await sys.api.post(`/api/v1/auctions/${a.id}/autobid`, { maxAmount: 5000 }, { token: x.accessToken })).status, 202);
  t.is((await bid(sys, y, a.id, 2000)).status, 202);
  await bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 0 });
  const history = await sys.api.get(`/api/v1/auctions/${a.id}/bids`);
  t.deepEqual(
    history.body.data.map((h: { bidderId: string; bidderName: string; amount: number; auto: boolean }) => [h.bidderName, h.amount, h.auto]),
    [
      [x.name, 2050, true],
      [y.name, 2000, false],
      [x.name, 1000, true],
    ],
  );
  const placed = await sys.db('auction_events').where({ auction_id: a.id, type: 'bid.placed' }).orderBy('seq');
  t.deepEqual(placed.map((e) => e.payload.bidderName), [x.name, y.name, x.name]);
});

test.serial('a drain of a stopping process stops after its round and hands the rest over to a new job', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = [await registerUser(sys), await registerUser(sys)];
  const [deep] = await insertLiveAuctions(sys.db, seller.id, 1);
  // More than one round reads (2,000).
  await recordBids(sys.db, [{ auctionId: deep!, items: Array.from({ length: 2_500 }, (_, j) => intakeItem(users[j % 2]!.id, 10_000 * (j + 1))) }]);
  const queue = sys.producer.queues.get(bidQueueFor(deep!))!;
  const before = new Set((await queue.getJobs(['waiting', 'delayed', 'prioritized'])).map((j) => j.id));
  const stopping = new AbortController();
  stopping.abort();
  await bidDrain({ ...sys.workerCtx, stopping: stopping.signal }, { auctionId: deep!, upTo: 0 });
  // One round: at most BATCH (2,000) of its bids, fewer when the partition holds
  // other auctions' queued bids from earlier tests (the round shares its batch).
  const queued = Number((await sys.db('bids').where({ auction_id: deep, status: 'queued' }).count<{ count: string }[]>('* as count'))[0]!.count);
  t.true(queued >= 500 && queued < 2_500, `one round, not the whole queue: ${2_500 - queued} applied`);
  const handed = (await queue.getJobs(['waiting', 'delayed', 'prioritized'])).filter((j) => !before.has(j.id) && j.data.auctionId === deep);
  t.is(handed.length, 1, 'a new drain job for the rest');
  await bidDrain(sys.workerCtx, handed[0]!.data);
  t.is(Number((await sys.db('bids').where({ auction_id: deep, status: 'queued' }).count<{ count: string }[]>('* as count'))[0]!.count), 0);
});

test.serial("a round's one-statement look, lock and read reads its bids again when another transaction changed the auction while it waited for the lock", async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const bidder = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  for (const amount of [50_000, 60_000]) t.is((await bid(sys, bidder, a.id, amount)).status, 202);
  const partition = bidPartition(a.id);
  const look = (trx: Parameters<typeof lockQueuedAuctions>[0]) => lockQueuedAuctions(trx, [partition], 200, 2_000);

  // Uncontended: the statement's own read, both bids, in receipt order.
  const calm = await sys.db.transaction(look);
  t.false(calm.reread);
  t.true(calm.rows.some((r) => r.id === a.id));
  t.deepEqual(calm.inputs.bids.get(a.id)?.map((b) => b.amount), [50_000, 60_000]);

  // Contended: another transaction holds the auction's lock and applies both bids
  // (as a round, a close or a duplicate drain would). The round's statement takes
  // its snapshot, waits for the lock, and gets it once those verdicts are committed:
  // its snapshot still shows the bids queued, so it must read them again.
  let contended: Promise<Awaited<ReturnType<typeof look>>> | undefined;
  await sys.db.transaction(async (other) => {
    await other('auctions').where({ id: a.id }).forNoKeyUpdate().first();
    await other('bids').where({ auction_id: a.id, status: 'queued' }).update({ status: 'rejected', reason: 'bid_too_low', applied_at: other.fn.now() });
    await other('auctions').where({ id: a.id }).update({ updated_at: other.fn.now() });
    contended = sys.db.transaction(look);
    await waitFor(async () => {
      const { rows } = await sys.db.raw("select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like '%with look as materialized%'");
      return rows.length > 0;
    }, 5_000, 'the round waiting for the lock');
  });
  const after = await contended!;
  t.true(after.reread, 'read again under the lock');
  t.true(after.rows.some((r) => r.id === a.id), 'the look saw the bids queued and locked the auction');
  t.is(after.inputs.bids.get(a.id), undefined, 'no bid the other transaction applied is applied again');
});

/** A bid to record with recordBids. */
const intakeItem = (bidderId: string, amount: number): IntakeItem => ({ id: randomUUID(), kind: 'bid', bidderId, amount, idempotencyKey: null });

/** Index entries and sequentially scanned rows of `bids` read so far in the current transaction. */
async function bidsReads(trx: Knex): Promise<number> {
  const { rows } = await trx.raw(
    `select coalesce(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0) + pg_stat_get_xact_tuples_returned('bids'::regclass) as n
     from pg_index i where i.indrelid = 'bids'::regclass`,
  );
  return Number(rows[0].n);
}

/**
 * A round of 300 bids of one auction while 3,000 bids wait in another partition,
 * under statistics taken while none was queued (over `history` applied bids, and
 * the other tests'): the index entries and rows of `bids` it reads, with custom
 * and with generic plans.
 */
async function backlogRound(t: ExecutionContext, history: number): Promise<void> {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = [await registerUser(sys), await registerUser(sys)];
  const ids = await insertLiveAuctions(sys.db, seller.id, 20);
  const target = ids[0]!;
  const other = ids.find((id) => bidPartition(id) !== bidPartition(target))!;
  // Statistics taken while applied bids and hardly any queued one are stored
  // (autovacuum's usual view), then a backlog builds up (an outage): 3,000 bids
  // queued on an auction of another partition.
  // (This file's private database: no autovacuum may analyze bids meanwhile.)
  await sys.db.raw('alter table bids set (autovacuum_enabled = false)');
  t.teardown(() => sys.db.raw('alter table bids reset (autovacuum_enabled)'));
  await sys.db('bids').where({ status: 'queued' }).update({ status: 'rejected', reason: 'test', applied_at: sys.db.fn.now() });
  // The other tests' applied bids leave dead entries in the queued-bid index until a vacuum.
  await sys.db.raw('vacuum (index_cleanup on) bids');
  await sys.db.raw(
    `insert into bids (id, auction_id, bidder_id, kind, amount, receipt_no, partition, received_at, status, reason, applied_at)
     select gen_random_uuid(), ?, ?, 'bid', 100 + g, 1000000 + g, ?, now(), 'rejected', 'test', now() from generate_series(1, ?::int) g`,
    [other, users[0]!.id, bidPartition(other), history],
  );
  await sys.db.raw('analyze bids');
  const item = (amount: number, j: number) => intakeItem(users[j % 2]!.id, amount);
  for (let i = 0; i < 3; i++) await recordBids(sys.db, [{ auctionId: other, items: Array.from({ length: 1000 }, (_, j) => item(1_000 + i * 1_000 + j, j)) }]);
  // The target's queue: 300 bids.
  await recordBids(sys.db, [{ auctionId: target, items: Array.from({ length: 300 }, (_, j) => item(200 + j * 100, j)) }]);
  const { rows: stats } = await sys.db.raw("select most_common_vals::text as vals from pg_stats where tablename = 'bids' and attname = 'status'");
  t.false(String(stats[0]?.vals).includes('queued'), 'the statistics know of no queued bid');
  for (const mode of ['force_custom_plan', 'force_generic_plan']) {
    // Each mode's round is rolled back; its versions' index entries go before the next.
    await sys.db.raw('vacuum (index_cleanup on) bids');
    const trx = await sys.db.transaction();
    try {
      await trx.raw(`set local plan_cache_mode = ${mode}`);
      const before = await bidsReads(trx);
      const result = await applyQueuedMany(trx, await lockQueuedAuctions(trx, [bidPartition(target)], 200, 2_000));
      const read = (await bidsReads(trx)) - before;
      t.is(result.verdicts.length, 300, `${mode}: a verdict for each of the target's bids`);
      // The 300 bids, each read once, found by primary key and updated: about 900
      // entries, not the 3,000 queued elsewhere nor the whole table.
      t.true(read <= 1_000, `${mode}: the round read ${read} index entries or rows of bids`);
    } finally {
      await trx.rollback();
    }
  }
  // Leave nothing queued for the tests after this one.
  await sys.db('bids').where({ status: 'queued' }).update({ status: 'rejected', reason: 'test', applied_at: sys.db.fn.now() });
}

// Small table first (these tests share one database): a few thousand bids, where
// a custom plan may prefer scanning the whole table to 300 lookups.
test.serial('a round reads the bids it applies, not the backlog queued in other partitions, whatever the planner statistics say (small table)', (t) =>
  backlogRound(t, 0));
test.serial('a round reads the bids it applies, not the backlog queued in other partitions, whatever the planner statistics say (20,000 applied bids)', (t) =>
  backlogRound(t, 20_000));

test.serial("a round reads an auction's queued bids in their partition after a change of BID_PARTITIONS re-partitioned only the queued ones", async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = [await registerUser(sys), await registerUser(sys)];
  const [auction] = await insertLiveAuctions(sys.db, seller.id, 1);
  const mine = new Set<string>();
  const item = (amount: number, j: number) => {
    const it = intakeItem(users[j % 2]!.id, amount);
    mine.add(it.id);
    return it;
  };
  // This auction's bids applied by a round of `partition` (which may hold other tests' leftovers).
  const round = async (partition: number) => {
    const trx = await sys.db.transaction();
    try {
      const result = await applyQueuedMany(trx, await lockQueuedAuctions(trx, [partition], 200, 2_000));
      await trx.commit();
      return result.verdicts.filter((v) => mine.has(v.id)).length;
    } catch (err) {
      await trx.rollback();
      throw err;
    }
  };
  const old = bidPartition(auction!);
  await recordBids(sys.db, [{ auctionId: auction!, items: [item(200, 0), item(300, 1)] }]);
  t.is(await round(old), 2, 'the first bids applied in the old partition');
  await recordBids(sys.db, [{ auctionId: auction!, items: [item(400, 0), item(500, 1), item(600, 0)] }]);
  // The release's re-partitioning (names.ts): the queued bids move, the applied ones stay.
  const moved = (old + 1) % BID_PARTITIONS;
  await sys.db('bids').where({ auction_id: auction!, status: 'queued' }).update({ partition: moved });
  t.is(await round(moved), 3, 'every queued bid applied from its new partition');
  t.is(Number((await sys.db('bids').where({ auction_id: auction!, status: 'queued' }).count<{ count: string }[]>('* as count'))[0]!.count), 0);
});
