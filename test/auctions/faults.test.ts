/**
 * Faults: a worker SIGKILLed in the middle of a drain, Redis wiped while bids
 * are queued (a private redis-server: the shared one is never touched). After
 * each, every acknowledged bid has been applied exactly once, in receipt order:
 * the audit (test/helpers/audit.ts) counts lost and duplicated effects from the
 * client's acknowledgements, the acks and events, and a replay through the pure
 * rules. The same job run twice: test/auctions/same-job.test.ts.
 */
import test from 'ava';
import { registerUser, useSystem } from '../helpers/system.js';
import { bid, liveAuction, waitFor } from '../helpers/auctions.js';
import { audit, burst, recorded } from '../helpers/audit.js';
import { applyQueued } from '../../workers/handlers/bid-drain.js';
import { auctionStream } from '../../queues/streams.js';
import { BID_QUEUE_NAMES } from '../../queues/names.js';
import { ownerOfLocalPort, spawnNode } from '../helpers/process.js';
import { testEnv } from '../helpers/config.js';

const system = useSystem(test, { workerProcesses: 2, privateRedis: true });

test.serial('SIGKILL a worker in the middle of a drain (its transaction open, its job locked): no acknowledged bid is lost or applied twice', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = await Promise.all(Array.from({ length: 10 }, () => registerUser(sys)));
  const auctions = await Promise.all(Array.from({ length: 4 }, () => liveAuction(sys, seller, { startingPrice: 100 })));
  const ids = auctions.map((a) => a.id);
  // Hold the auctions' rows: bids are recorded, and the workers' rounds wait for the locks, mid-transaction.
  const hold = await sys.db.transaction();
  t.teardown(() => hold.rollback().catch(() => undefined));
  await hold('auctions').whereIn('id', ids).forNoKeyUpdate();
  const acked = await burst(t, sys, ids, users, 60, 100);
  t.is(await recorded(sys, acked), acked.length, 'acknowledged means recorded');
  const pids = sys.workerProcs.map((w) => w.pid);
  const victim = await waitFor(async () => {
    const { rows } = await sys.db.raw("select client_port from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and state = 'active'");
    for (const r of rows as { client_port: number }[]) {
      const pid = ownerOfLocalPort(r.client_port, pids);
      if (pid !== undefined) return sys.workerProcs.findIndex((w) => w.pid === pid) + 1;
    }
    return undefined;
  }, 20_000, "a worker's round waiting for the locks");
  sys.workerProcs[victim - 1]!.kill('SIGKILL');
  const killedAt = Date.now();
  await sys.workerProcs[victim - 1]!.exited;
  await hold.commit();
  // Another burst, while the dead worker's drain is still locked in its queue.
  acked.push(...(await burst(t, sys, ids, users, 20, 100_000)));
  // The dead worker's job is taken back after its lock (5 s) runs out and a
  // stalled-job check (every 5 s) sees it: ~10–15 s. BullMQ's default 30 s locks would fail this.
  const r = await audit(t, sys, acked, ids, 25_000);
  t.log(`every bid applied, published and audited ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
  t.is(r.mismatched, 0);
  t.log(`acknowledged ${acked.length}, accepted ${r.accepted}, lost ${r.lost}, duplicated ${r.duplicated}, replay mismatches ${r.mismatched}`);
  // Bring the pool back to two workers for the next test.
  const w = spawnNode('workers/main.ts', testEnv({ ...sys.env, LOG_LEVEL: 'info' }));
  sys.workerProcs[victim - 1] = w;
  await w.waitForLine(/workers started/, 30_000);
});

test.serial('FLUSHALL while bids are queued: the bids recorded in Postgres are re-enqueued and applied once, and the queues get their limits back', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = await Promise.all(Array.from({ length: 10 }, () => registerUser(sys)));
  const auctions = await Promise.all(Array.from({ length: 4 }, () => liveAuction(sys, seller, { startingPrice: 100 })));
  const ids = auctions.map((a) => a.id);
  // No worker takes anything meanwhile: every bid of the burst waits, its drain job in Redis.
  let resumed = false;
  const resume = () => {
    if (resumed) return;
    resumed = true;
    for (const w of sys.workerProcs) w.kill('SIGCONT');
  };
  t.teardown(resume);
  for (const w of sys.workerProcs) w.kill('SIGSTOP');
  const acked = await burst(t, sys, ids, users, 60, 100);
  t.is(await recorded(sys, acked), acked.length, 'acknowledged means recorded');
  const queued = await sys.db('bids').whereIn('id', acked).where({ status: 'queued' }).count<{ count: string }[]>('* as count');
  t.is(Number(queued[0]!.count), acked.length, 'all still queued');
  const jobs = await Promise.all(BID_QUEUE_NAMES.map((name) => sys.producer.queue(name).getWaitingCount()));
  t.true(jobs.reduce((a, b) => a + b, 0) > 0, 'their drains wait in Redis');
  await sys.redis.flushall();
  resume();
  // Only the sweeper can find them now.
  const r = await audit(t, sys, acked, ids, 20_000);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
  t.is(r.mismatched, 0);
  t.log(`acknowledged ${acked.length}, accepted ${r.accepted}, lost ${r.lost}, duplicated ${r.duplicated}, replay mismatches ${r.mismatched}`);
  for (const name of BID_QUEUE_NAMES) t.is(await sys.producer.queue(name).getGlobalConcurrency(), 1, `${name}: one consumer at a time again`);
});

test.serial('FLUSHALL in the middle of a burst, workers draining: every acknowledged bid applied once, in order', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = await Promise.all(Array.from({ length: 10 }, () => registerUser(sys)));
  const auctions = await Promise.all(Array.from({ length: 4 }, () => liveAuction(sys, seller, { startingPrice: 100 })));
  const ids = auctions.map((a) => a.id);
  const later = (await Promise.all(Array.from({ length: 4 }, () => liveAuction(sys, seller, { startingPrice: 100 })))).map((a) => a.id);
  const acked: string[] = [];
  // A burst in four parts on `ids`, the workers draining throughout: Redis is
  // wiped once the first part is acknowledged (recorded and woken) and before the
  // rest are sent, so bids on both sides of the wipe are in it.
  acked.push(...(await burst(t, sys, ids, users, 10, 100)));
  await sys.redis.flushall();
  for (let part = 1; part < 4; part++) acked.push(...(await burst(t, sys, ids, users, 10, 100 + part * 1_000)));
  // Then bids on other auctions only: their wake-ups cannot drain `ids`' partitions'
  // leftovers by chance of sharing an auction (they may share a partition).
  acked.push(...(await burst(t, sys, later, users, 10, 100)));
  t.is(acked.length, 200);
  t.is(await recorded(sys, acked), acked.length, 'acknowledged means recorded');
  const r = await audit(t, sys, acked, [...ids, ...later], 25_000);
  t.is(r.lost, 0);
  t.is(r.duplicated, 0);
  t.is(r.mismatched, 0);
  t.log(`acknowledged ${acked.length}, accepted ${r.accepted}, lost ${r.lost}, duplicated ${r.duplicated}, replay mismatches ${r.mismatched}`);
  // The sweeper puts the limits back within a second or so.
  await waitFor(async () => ((await Promise.all(BID_QUEUE_NAMES.map((name) => sys.producer.queue(name).getGlobalConcurrency()))).every((c) => c === 1) ? true : undefined), 10_000, 'one consumer per partition again');
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
