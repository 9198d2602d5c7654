/** The sweeper's re-enqueue of drains for bids that waited too long (workers/sweeper.ts). */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { registerUser, useSystem } from '../helpers/system.js';
import { insertLiveAuctions, liveAuction, makeAuction } from '../helpers/auctions.js';
import { recordBids } from '../../db/operations/auctions.js';
import { BID_QUEUE_NAMES, bidPartition } from '../../queues/names.js';
import { rearmTimers, sweepOnce } from '../../workers/sweeper.js';

const system = useSystem(test, { workers: false });

test.serial('a sweep enqueues one drain per partition with a bid queued past the grace period, and none for fresh bids', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const bidder = await registerUser(sys);
  const ids = await insertLiveAuctions(sys.db, seller.id, 60);
  const byPartition = new Map<number, string[]>();
  for (const id of [...ids].sort()) byPartition.set(bidPartition(id), [...(byPartition.get(bidPartition(id)) ?? []), id]);
  const [p1, p2, fresh] = [...byPartition.keys()].filter((p) => byPartition.get(p)!.length >= 3) as [number, number, number];
  t.not(fresh, undefined, 'three partitions with three auctions each');
  // Old bids on two auctions in each of p1 and p2; fresh bids in `fresh`, and in p1
  // on the auction that comes first in the index (partition, auction, receipt), so
  // the sweep must look past fresh bids to find the old ones.
  const [first, ...rest] = byPartition.get(p1)!;
  const old = [...rest.slice(0, 2), ...byPartition.get(p2)!.slice(0, 2)];
  const young = [first!, byPartition.get(fresh)![0]!];
  const item = (amount: number) => ({ id: randomUUID(), kind: 'bid' as const, bidderId: bidder.id, amount, idempotencyKey: null });
  await recordBids(sys.db, old.map((auctionId) => ({ auctionId, items: [item(500), item(600)] })));
  await sys.db('bids').whereIn('auction_id', old).update({ received_at: sys.db.raw("now() - interval '30 seconds'") });
  await recordBids(sys.db, young.map((auctionId) => ({ auctionId, items: [item(700)] })));
  const waiting = () => Promise.all(BID_QUEUE_NAMES.map((name) => sys.producer.queue(name).getWaitingCount()));
  const before = await waiting();
  // A grace period of 10 s: the fresh bids stay fresh however slow this machine is.
  const report = await sweepOnce(sys.workerCtx, 10_000);
  const added = (await waiting()).map((n, p) => n - before[p]!);
  t.is(report.drains, 2);
  t.deepEqual(added, BID_QUEUE_NAMES.map((_, p) => (p === p1 || p === p2 ? 1 : 0)), 'a drain each for p1 and p2 only');
});

test.serial('timers Redis lost are re-created from Postgres as delayed jobs at their own times, once', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const scheduled = await makeAuction(sys, seller, { startsAt: new Date(Date.now() + 3_600_000).toISOString(), durationSeconds: 3600 });
  const live = await liveAuction(sys, seller, { durationSeconds: 3600 });
  const liveRow = await sys.db('auctions').where({ id: live.id }).first();
  const startAt = new Date(scheduled.startsAt).getTime();
  const endAt = liveRow.ends_at.getTime();
  const queue = sys.producer.queue('auctions');
  const timers = async () => (await queue.getDelayed()).map((j) => j.id).filter((id) => id?.includes(scheduled.id) || id?.includes(live.id)).sort();
  const expected = [`close-${live.id}-${endAt}`, `start-${scheduled.id}-${startAt}`].sort();
  t.deepEqual(await timers(), expected, 'armed by the edge');
  await sweepOnce(sys.workerCtx, 10_000); // sets the marker (re-arming what is there: no change)
  t.deepEqual(await timers(), expected);

  // Redis loses the auctions queue (and the marker with it), as a wipe would.
  const prefix = `${sys.config.redis.prefix}:{auctions}`;
  const dropAuctionsQueue = async () => {
    let cursor = '0';
    do {
      const [next, keys] = await sys.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await sys.redis.del(...keys);
    } while (cursor !== '0');
  };
  await dropAuctionsQueue();
  t.deepEqual(await timers(), []);

  // A re-arm that died mid-way (its marker claimed, never finished) holds others
  // off only until its claim lapses.
  const marker = `${prefix}:timers-armed`;
  await sys.redis.set(marker, 'arming:a-dead-process', 'PX', 400);
  t.is((await sweepOnce(sys.workerCtx, 10_000)).rearmed, 0, 'another re-arm holds the marker');
  await new Promise((r) => setTimeout(r, 500));

  const report = await sweepOnce(sys.workerCtx, 10_000);
  t.true(report.rearmed >= 2);
  t.deepEqual(await timers(), expected, 'the same jobs, due at the same times');
  const start = (await queue.getDelayed()).find((j) => j.id === `start-${scheduled.id}-${startAt}`)!;
  t.true(Math.abs(start.timestamp + start.opts.delay! - startAt) < 5_000, 'fires at startsAt');
  t.is(await sys.redis.get(marker), 'done');
  t.is(await sys.redis.pttl(marker), -1, 'done for good (until Redis loses it)');
  t.is((await sweepOnce(sys.workerCtx, 10_000)).rearmed, 0, 'the marker is back: nothing re-armed again');

  // Page by page (a page of one here): every timer, each once.
  await dropAuctionsQueue();
  t.true((await rearmTimers(sys.workerCtx, 1)) >= 2);
  t.deepEqual(await timers(), expected);
});
