/**
 * Faults: a worker SIGKILLed during a burst, Redis wiped during a burst (a
 * private redis-server: the shared one is never touched), the same job twice.
 * After each, every acknowledged bid has been applied exactly once.
 */
import test from 'ava';
import { registerUser, useSystem, type System, type TestUser } from '../helpers/system.js';
import { bid, liveAuction, waitFor } from '../helpers/auctions.js';
import { applyQueued, bidDrain } from '../../workers/handlers/bid-drain.js';
import { auctionStream } from '../../queues/streams.js';
import { spawnNode } from '../helpers/process.js';
import { testEnv } from '../helpers/config.js';

const system = useSystem(test, { workerProcesses: 2, privateRedis: true });

/** Fires `perAuction` bids at each auction from `users`, in parallel; returns acknowledged bid ids. */
async function burst(sys: System, auctions: string[], users: TestUser[], perAuction: number, base: number): Promise<string[]> {
  const jobs = auctions.flatMap((id) => Array.from({ length: perAuction }, (_, k) => ({ id, u: users[k % users.length]!, amount: base + k * 100 })));
  const res = await Promise.all(jobs.map((j) => bid(sys, j.u, j.id, j.amount)));
  return res.filter((r) => r.status === 202).map((r) => r.body.bidId as string);
}

/** Lost: acknowledged but never applied. Duplicated: applied (placed) more than once. */
async function audit(sys: System, acked: string[], auctions: string[]) {
  await waitFor(async () => {
    const left = await sys.db('bids').whereIn('id', acked).where({ status: 'queued' }).count<{ count: string }[]>('* as count');
    return Number(left[0]!.count) === 0;
  }, 60_000, 'every acknowledged bid applied');
  const rows = await sys.db('bids').whereIn('id', acked);
  const lost = acked.length - rows.filter((r) => r.status !== 'queued').length;
  const placed = await sys.db('auction_events').whereIn('auction_id', auctions).where({ type: 'bid.placed' });
  const byBid = new Map<string, number>();
  for (const e of placed) byBid.set(e.payload.bidId, (byBid.get(e.payload.bidId) ?? 0) + 1);
  const duplicated = [...byBid.values()].filter((n) => n > 1).length;
  const accepted = rows.filter((r) => r.status === 'accepted').length;
  // Every accepted bid has exactly one bid.placed, and seqs are gapless per auction.
  const manualPlaced = placed.filter((e) => !e.payload.auto).length;
  for (const id of auctions) {
    const seqs = (await sys.db('auction_events').where({ auction_id: id }).orderBy('seq')).map((e) => Number(e.seq));
    if (seqs.some((s, i) => s !== i + 1)) throw new Error(`seq gap in ${id}`);
  }
  return { lost, duplicated, accepted, manualPlaced };
}

test.serial('SIGKILL a worker during a burst: no acknowledged bid is lost or applied twice', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = await Promise.all(Array.from({ length: 10 }, () => registerUser(sys)));
  const auctions = await Promise.all(Array.from({ length: 4 }, () => liveAuction(sys, seller, { startingPrice: 100 })));
  const ids = auctions.map((a) => a.id);
  const first = burst(sys, ids, users, 60, 100);
  await new Promise((r) => setTimeout(r, 50));
  sys.workerProcs[0]!.kill('SIGKILL');
  const acked = await first;
  // Another burst lands while the dead worker's jobs are still locked.
  acked.push(...(await burst(sys, ids, users, 20, 100_000)));
  const r = await audit(sys, acked, ids);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
  t.is(r.manualPlaced, r.accepted);
  t.log(`acknowledged ${acked.length}, accepted ${r.accepted}, lost ${r.lost}, duplicated ${r.duplicated}`);
  // Bring the pool back to two workers for the next test.
  const w = spawnNode('workers/main.ts', testEnv({ ...sys.env, LOG_LEVEL: 'info' }));
  sys.workerProcs[0] = w;
  await w.waitForLine(/workers started/, 30_000);
});

test.serial('FLUSHALL during a burst: bids recorded in Postgres are re-enqueued and applied once', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = await Promise.all(Array.from({ length: 10 }, () => registerUser(sys)));
  const auctions = await Promise.all(Array.from({ length: 4 }, () => liveAuction(sys, seller, { startingPrice: 100 })));
  const ids = auctions.map((a) => a.id);
  const pending = burst(sys, ids, users, 60, 100);
  await new Promise((r) => setTimeout(r, 30));
  await sys.redis.flushall();
  const acked = await pending;
  acked.push(...(await burst(sys, ids, users, 20, 100_000)));
  await sys.redis.flushall();
  const r = await audit(sys, acked, ids);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
  t.is(r.manualPlaced, r.accepted);
  t.log(`acknowledged ${acked.length}, accepted ${r.accepted}, lost ${r.lost}, duplicated ${r.duplicated}`);
});

test.serial('the same drain job run twice (and concurrently) changes nothing the second time', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = await Promise.all(Array.from({ length: 5 }, () => registerUser(sys)));
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  // Record bids while no worker can apply them: hold the auction row.
  const trx = await sys.db.transaction();
  t.teardown(() => trx.rollback().catch(() => undefined));
  await trx('auctions').where({ id: a.id }).forNoKeyUpdate().first();
  const acked = await burst(sys, [a.id], users, 25, 100);
  await trx.commit();
  const data = { auctionId: a.id, upTo: 25 };
  await Promise.all([bidDrain(sys.workerCtx, data), bidDrain(sys.workerCtx, data), bidDrain(sys.workerCtx, data)]);
  const snapshot = async () => ({
    bids: await sys.db('bids').where({ auction_id: a.id }).orderBy('receipt_no').select('id', 'status', 'reason', 'seq'),
    events: await sys.db('auction_events').where({ auction_id: a.id }).orderBy('seq').select('seq', 'type'),
    auction: await sys.db('auctions').where({ id: a.id }).first('seq', 'current_price', 'leader_id', 'bid_count'),
  });
  const once = await snapshot();
  await bidDrain(sys.workerCtx, data);
  t.deepEqual(await snapshot(), once);
  const r = await audit(sys, acked, [a.id]);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
});

test.serial('events committed but never published (the process died in between) reach the stream', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  const stream = auctionStream(sys.config.redis.prefix, a.id);
  await waitFor(async () => (await sys.redis.xlen(stream)) === 1, 10_000, 'auction.started published');
  // Record a bid and apply it the way a drain does, but "die" before publishing.
  const trx = await sys.db.transaction();
  await trx('auctions').where({ id: a.id }).forNoKeyUpdate().first();
  const r = await bid(sys, u, a.id, 100);
  t.is(r.status, 202);
  const row = await trx('auctions').where({ id: a.id }).first();
  const result = await applyQueued(trx, row, false);
  await trx.commit();
  t.is(result.applied, 1);
  t.is(await sys.redis.xlen(stream), 1, 'not published yet');
  // The sweeper (in the worker processes) publishes the backlog.
  const entries = await waitFor(async () => {
    const e = await sys.redis.xrange(stream, '-', '+');
    return e.length === 2 ? e : undefined;
  }, 15_000, 'backlog published');
  t.deepEqual(entries.map(([id]) => id), ['1-0', '2-0']);
  t.is(JSON.parse(entries[1]![1][1]!).type, 'bid.placed');
  // The stream first, then the mark in Postgres: wait for the mark too.
  const published = await waitFor(async () => {
    const row = await sys.db('auctions').where({ id: a.id }).first();
    return Number(row.published_seq) === 2 ? row : undefined;
  }, 15_000, 'published_seq marked');
  t.is(Number(published.published_seq), 2);
});
