/**
 * Orderings that a live system produces only by chance, driven by hand: no
 * worker runs in this file; the test calls the handlers when it wants them.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { registerUser, useSystem } from '../helpers/system.js';
import { bid, liveAuction, makeAuction, waitFor } from '../helpers/auctions.js';
import { applyQueued, bidDrain, closeIfDue, publishOutbox } from '../../workers/handlers/bid-drain.js';
import { endEarlyTx, startAuctionTx } from '../../db/operations/lifecycle.js';
import { deleteBan, upsertBan } from '../../db/operations/chat.js';
import { recordBids } from '../../db/operations/auctions.js';
import { BidIntake } from '../../edge/http/services/bid-intake.js';
import { auctionStart } from '../../workers/handlers/auction-lifecycle.js';
import { auctionStream } from '../../queues/streams.js';
import { bidPartition } from '../../queues/names.js';
import { publishEvents } from '../../lib/publisher.js';
import { loadKeys, signAccessToken } from '../../lib/jwt.js';

const system = useSystem(test);
// The tests that apply bids by hand are serial: a drain takes every queued bid of
// its partition, so another test's drain running at the same time could apply (and
// publish) this test's bids in between its steps.

const status = async (id: string) => (await system().db('bids').where({ id }).first()).status as string;
const reason = async (id: string) => (await system().db('bids').where({ id }).first()).reason as string | null;

test.serial('an owner\'s end is fixed at the request: a bid recorded after it is late even if drained before the close', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const early = await registerUser(sys);
  const late = await registerUser(sys);
  const a = await liveAuction(sys, seller, { softCloseSeconds: 30 });
  const b1 = await bid(sys, early, a.id, 1000);
  const ended = await endEarlyTx(sys.db, a.id);
  t.is(ended.outcome, 'ending');
  const b2 = await bid(sys, late, a.id, 5000);
  await bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 2 });
  t.is(await status(b1.body.bidId), 'accepted');
  t.is(await reason(b2.body.bidId), 'auction_ended');
  const row = await sys.db('auctions').where({ id: a.id }).first();
  t.is(row.ends_at.getTime(), ended.outcome === 'ending' ? ended.endsAt : 0, 'the early end is not extended by soft close');
  const closed = await closeIfDue(sys.workerCtx, a.id);
  t.true(closed?.ended);
  t.is((await sys.db('auctions').where({ id: a.id }).first()).winner_id, early.id);
});

test.serial('a bid recorded while the auction was scheduled is not live, even if applied after the start', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await makeAuction(sys, seller);
  const early = await bid(sys, u, a.id, 1000);
  t.is((await sys.api.put(`/api/v1/auctions/${a.id}/start`, undefined, { token: seller.accessToken })).status, 200);
  const onTime = await bid(sys, u, a.id, 1000);
  await bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 2 });
  t.is(await reason(early.body.bidId), 'auction_not_live');
  t.is(await status(onTime.body.bidId), 'accepted');
});

test.serial('a bid received in the millisecond of an owner\'s end, before it, is on time; one recorded after the end returns is late', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const [u1, u2] = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller);
  const b1 = await bid(sys, u1, a.id, 1000);
  const ended = await endEarlyTx(sys.db, a.id);
  t.is(ended.outcome, 'ending');
  // Receipt times are judged in whole milliseconds. Put b1 at the start of the
  // millisecond the end was decided in (its row's clock, less a few µs): received
  // before the end, in the same millisecond. An end at the floor of that clock
  // would reject it as late.
  await sys.db.raw(
    `update bids set received_at = date_trunc('milliseconds', a.updated_at - interval '5 microseconds') from auctions a where a.id = bids.auction_id and bids.id = ?`,
    [b1.body.bidId],
  );
  // The end waited for its own time before committing: a bid recorded from now on is past it.
  const b2 = await bid(sys, u2, a.id, 5000);
  const { rows } = await sys.db.raw('select floor(extract(epoch from received_at) * 1000)::bigint as ms from bids where id = ?', [b2.body.bidId]);
  t.true(Number(rows[0].ms) >= (ended.outcome === 'ending' ? ended.endsAt : Infinity), 'recorded after the end returned, received at or past it');
  const closed = await closeIfDue(sys.workerCtx, a.id);
  t.true(closed?.ended);
  t.is(await status(b1.body.bidId), 'accepted');
  t.is(await reason(b2.body.bidId), 'auction_ended');
  t.is((await sys.db('auctions').where({ id: a.id }).first()).winner_id, u1.id);
});

test.serial('an auction its owner has ended, or whose end has passed, cannot be cancelled before the close ends it', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cancel = (id: string) => sys.api.put(`/api/v1/auctions/${id}/cancel`, undefined, { token: seller.accessToken });
  // Ended by its owner, no bid, the close not run yet (workers busy or restarting).
  const a = await liveAuction(sys, seller);
  t.is((await endEarlyTx(sys.db, a.id)).outcome, 'ending');
  const refused = await cancel(a.id);
  t.is(refused.status, 409);
  t.is(refused.body.error.code, 'conflict');
  t.is((await sys.db('auctions').where({ id: a.id }).first()).status, 'live');
  t.true((await closeIfDue(sys.workerCtx, a.id))?.ended);
  // Its end passed, not closed yet.
  const b = await liveAuction(sys, seller);
  await sys.db('auctions').where({ id: b.id }).update({ ends_at: sys.db.raw("clock_timestamp() - interval '1 second'") });
  t.is((await cancel(b.id)).status, 409);
  t.true((await closeIfDue(sys.workerCtx, b.id))?.ended);
  // A live auction before its end, with no bid, still can be.
  const c = await liveAuction(sys, seller);
  t.is((await cancel(c.id)).status, 200);
});

test.serial('a bid is judged by the bans in force when it was received, whenever it is applied', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const bans = `/api/v1/auctions/${a.id}/chat/bans`;
  const drain = () => bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 0 });
  // Received before the ban, applied after it: on time, not banned.
  const before = await bid(sys, u, a.id, 1000);
  t.is((await sys.api.post(bans, { userId: u.id }, { token: seller.accessToken })).status, 201);
  await drain();
  t.is(await status(before.body.bidId), 'accepted');
  // Received during the ban, applied after it was lifted: banned.
  const during = await bid(sys, u, a.id, 5000);
  t.is((await sys.api.del(`${bans}/${u.id}`, { token: seller.accessToken })).status, 204);
  await drain();
  t.is(await reason(during.body.bidId), 'banned');
  // After the lift: bids again. (u leads: another user's bid in between.)
  const other = await registerUser(sys);
  await bid(sys, other, a.id, 2000);
  const after = await bid(sys, u, a.id, 3000);
  // Banned again: a new period, from now.
  t.is((await sys.api.post(bans, { userId: u.id, durationSeconds: 60 }, { token: seller.accessToken })).status, 201);
  const again = await bid(sys, u, a.id, 9000);
  await drain();
  t.is(await status(after.body.bidId), 'accepted');
  t.is(await reason(again.body.bidId), 'banned');
});

test.serial('a bid recorded while a ban or its lift is being committed is judged by it: it waits for the commit, and no drain sees it without the change', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const [u, other] = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller);
  const drain = () => bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 0 });
  const pause = () => new Promise((r) => setTimeout(r, 300));
  // A ban, held uncommitted while u bids and a drain runs.
  const banning = await sys.db.transaction();
  await upsertBan(banning, a.id, u.id, null, seller.id);
  const during = bid(sys, u, a.id, 1000);
  await pause();
  await drain();
  await banning.commit();
  const banned = await during;
  t.is(banned.status, 202);
  await drain();
  t.is(await reason(banned.body.bidId), 'banned');
  // A lift, held uncommitted likewise: the bid after it is not banned.
  await bid(sys, other, a.id, 1500);
  const lifting = await sys.db.transaction();
  await deleteBan(lifting, a.id, u.id);
  const after = bid(sys, u, a.id, 2000);
  await pause();
  await drain();
  await lifting.commit();
  const allowed = await after;
  await drain();
  t.is(await status(allowed.body.bidId), 'accepted');
});

test.serial('events committed out of publishing order still reach the stream in seq order', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const [u1, u2] = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  const stream = auctionStream(sys.config.redis.prefix, a.id);
  t.deepEqual((await sys.redis.xrange(stream, '-', '+')).map(([id]) => id), ['1-0']);
  // A drain commits seq 2 and "dies" before publishing.
  await bid(sys, u1, a.id, 100);
  await sys.db.transaction(async (trx) => {
    const row = await trx('auctions').where({ id: a.id }).forNoKeyUpdate().first();
    await applyQueued(trx, row, false);
  });
  // The next change (seq 3) is published by someone else first.
  await bid(sys, u2, a.id, 200);
  const third = await sys.db.transaction(async (trx) => {
    const row = await trx('auctions').where({ id: a.id }).forNoKeyUpdate().first();
    return applyQueued(trx, row, false);
  });
  await publishOutbox(sys.workerCtx, third.outbox, third.userBatchId);
  const entries = await sys.redis.xrange(stream, '-', '+');
  t.deepEqual(entries.map(([id]) => id), ['1-0', '2-0', '3-0'], 'seq 2 was filled in from the outbox');
  t.is(JSON.parse(entries[1]![1][1]!).bidderId, u1.id);
  t.is(Number((await sys.db('auctions').where({ id: a.id }).first()).published_seq), 3);
  // Publishing seq 3 again changes nothing.
  await publishOutbox(sys.workerCtx, third.outbox, third.userBatchId);
  t.is(await sys.redis.xlen(stream), 3);
});

test('ids are canonical: other spellings of a uuid are 400 and do not disturb other bids', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const spellings = [`{${a.id}}`, a.id.replace(/-/g, ''), `(${a.id})`, `[${a.id}]`];
  const results = await Promise.all([
    ...spellings.map((id) => sys.api.post(`/api/v1/auctions/${encodeURIComponent(id)}/bid`, { amount: 1000 }, { token: u.accessToken })),
    bid(sys, u, a.id, 1000),
    bid(sys, u, a.id.toUpperCase(), 1100),
  ]);
  for (const r of results.slice(0, spellings.length)) t.is(r.status, 400);
  t.is(results[spellings.length]!.status, 202);
  t.is(results[spellings.length + 1]!.status, 202, 'upper case is the same id');
  const rows = await sys.db('bids').where({ auction_id: a.id });
  t.is(rows.length, 2);
  t.true(rows.every((r) => r.partition === rows[0].partition));
  t.is((await bid(sys, u, randomUUID().toUpperCase(), 1000)).status, 404);
});

test.serial('an auction whose only bids were rejected can still be cancelled', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await makeAuction(sys, seller);
  const r = await bid(sys, u, a.id, 1000);
  await bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 1 });
  t.is(await reason(r.body.bidId), 'auction_not_live');
  const c = await sys.api.put(`/api/v1/auctions/${a.id}/cancel`, undefined, { token: seller.accessToken });
  t.is(c.status, 200);
  t.is(c.body.status, 'cancelled');
});

test.serial('a scheduled auction whose bids are still queued can be cancelled: they were received before its start, and are rejected', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const later = await makeAuction(sys, seller, { startsAt: new Date(Date.now() + 3_600_000).toISOString() });
  const unscheduled = await makeAuction(sys, seller);
  for (const a of [later, unscheduled]) {
    const r = await bid(sys, u, a.id, 1000);
    t.is(r.status, 202);
    t.is((await sys.db('bids').where({ id: r.body.bidId }).first()).status, 'queued', 'not applied yet');
    const c = await sys.api.put(`/api/v1/auctions/${a.id}/cancel`, undefined, { token: seller.accessToken });
    t.is(c.status, 200, c.text);
    t.is(c.body.status, 'cancelled');
    await bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 1 });
    t.is(await reason(r.body.bidId), 'auction_not_live');
  }
  // A live auction's queued bid may be its first: cancel waits for no one and refuses.
  const live = await liveAuction(sys, seller);
  await bid(sys, u, live.id, 1000);
  t.is((await sys.api.put(`/api/v1/auctions/${live.id}/cancel`, undefined, { token: seller.accessToken })).status, 409);
  await bidDrain(sys.workerCtx, { auctionId: live.id, upTo: 0 }); // leaves nothing queued for later tests
});

test.serial('metrics: bids queued per partition (edge, from Postgres), bids applied by result and reason, and bid-to-commit latency (worker)', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const [u1, u2] = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller, { startingPrice: 1000 });
  const partition = String(bidPartition(a.id));
  /** A sample's value in Prometheus text, 0 when absent. */
  const sample = (text: string, name: string, labels: string) => {
    const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
    return line ? Number(line.split(' ').pop()) : 0;
  };
  const queued = async () => sample((await sys.api.get('/metrics')).text, 'blytz_bids_queued', `partition="${partition}"`);
  const applied = async (labels: string) => sample(await sys.workerCtx.metrics!.registry.metrics(), 'blytz_bids_applied_total', labels);
  const latencyCount = async () => sample(await sys.workerCtx.metrics!.registry.metrics(), 'blytz_bid_commit_latency_seconds_count', '');

  const before = { queued: await queued(), accepted: await applied('result="accepted",reason=""'), low: await applied('result="rejected",reason="bid_too_low"'), self: await applied('result="rejected",reason="self_bid"'), latency: await latencyCount() };
  for (const [who, amount] of [[u1, 1000], [u2, 1000], [seller, 5000]] as const) t.is((await bid(sys, who, a.id, amount)).status, 202);
  // Counted at most every 5 s: polled until the count is new.
  const whenQueued = (test: (n: number) => boolean) => waitFor(async () => { const n = await queued(); return test(n) ? n : undefined; }, 15_000, 'blytz_bids_queued');
  t.true((await whenQueued((n) => n >= before.queued + 3)) >= before.queued + 3, 'three more bids queued in the auction\'s partition');
  await bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 0 });
  t.true((await whenQueued((n) => n <= before.queued)) <= before.queued, 'applied: no longer queued');
  // At least: a round also applies other auctions' bids queued in its partition
  // (an earlier test's leftovers), which count too.
  t.true((await applied('result="accepted",reason=""')) >= before.accepted + 1);
  t.true((await applied('result="rejected",reason="bid_too_low"')) >= before.low + 1);
  t.true((await applied('result="rejected",reason="self_bid"')) >= before.self + 1);
  t.true((await latencyCount()) >= before.latency + 3, 'a latency observed per bid');
});

test.serial('an empty stream (Redis wiped, or a first publish out of order) gets the auction\'s events back from the outbox', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  const stream = auctionStream(sys.config.redis.prefix, a.id);
  t.deepEqual((await sys.redis.xrange(stream, '-', '+')).map(([id]) => id), ['1-0']);
  await sys.redis.del(stream);
  const r = await bid(sys, u, a.id, 100);
  await bidDrain(sys.workerCtx, { auctionId: a.id, upTo: 1 });
  t.is(await status(r.body.bidId), 'accepted');
  const entries = await sys.redis.xrange(stream, '-', '+');
  t.deepEqual(entries.map(([id]) => id), ['1-0', '2-0'], 'auction.started is back, before the bid');
  t.is(JSON.parse(entries[0]![1][1]!).type, 'auction.started');
});

test('an auction whose gap cannot be filled does not keep the others, or private events, from being marked published', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const [a, b] = [await liveAuction(sys, seller), await liveAuction(sys, seller)];
  // A's stream ends at seq 1 and its outbox lacks seq 2: offering seq 5 leaves a gap
  // that filling (seq 3 and 4 from the outbox) cannot close.
  await sys.db('auctions').where({ id: a.id }).update({ seq: 5 });
  await sys.db('auction_events').insert([3, 4, 5].map((seq) => ({ auction_id: a.id, seq, type: 'bid.placed', payload: { type: 'bid.placed', auctionId: a.id, seq } })));
  await sys.db('auctions').where({ id: b.id }).update({ seq: 2 });
  await sys.db('auction_events').insert({ auction_id: b.id, seq: 2, type: 'bid.placed', payload: { type: 'bid.placed', auctionId: b.id, seq: 2 } });
  const [ue] = await sys.db('user_event_batches').insert({ events: JSON.stringify([{ userId: u.id, event: { type: 'bid.ack' } }]), size: 1 }).returning('id');
  await t.throwsAsync(
    publishEvents(
      sys.db,
      sys.redis,
      sys.config,
      [
        { auctionId: a.id, seq: 5, frame: { type: 'bid.placed', auctionId: a.id, seq: 5 } },
        { auctionId: b.id, seq: 2, frame: { type: 'bid.placed', auctionId: b.id, seq: 2 } },
      ],
      [{ id: String(ue.id), events: [{ userId: u.id, frame: { type: 'bid.ack' } }] }],
    ),
    { message: /outbox gap/ },
  );
  t.is(Number((await sys.db('auctions').where({ id: b.id }).first()).published_seq), 2, 'the other auction is marked');
  t.is(Number((await sys.db('auctions').where({ id: a.id }).first()).published_seq), 1, 'the broken one is not');
  t.truthy((await sys.db('user_event_batches').where({ id: ue.id }).first()).published_at, 'the private event batch is marked');
  t.deepEqual((await sys.redis.xrange(auctionStream(sys.config.redis.prefix, b.id), '-', '+')).map(([id]) => id), ['1-0', '2-0']);
});

test.serial('a start job run again after its auction started (an earlier run died before arming the close) arms the close', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await makeAuction(sys, seller, { durationSeconds: 600 });
  // The earlier run: started, then died before arming the close.
  t.is((await startAuctionTx(sys.db, a.id, false)).outcome, 'started');
  const row = await sys.db('auctions').where({ id: a.id }).first();
  const closeId = `close-${a.id}-${row.ends_at.getTime()}`;
  const queue = sys.workerCtx.producer.queue('auctions');
  t.falsy(await queue.getJob(closeId));
  const again = await auctionStart(sys.workerCtx, { auctionId: a.id, at: Date.now() });
  t.false(again.started);
  t.truthy(await queue.getJob(closeId), 'the close is armed, for the auction\'s end');
  await queue.remove(closeId);
});

test("a valid token of an account that no longer exists gets 401 for its bids, and the bids written with them are recorded", async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const buyers = await Promise.all(Array.from({ length: 8 }, () => registerUser(sys)));
  const a = await liveAuction(sys, seller);
  const ghost = signAccessToken(loadKeys(sys.config), sys.config, { id: randomUUID(), role: 'buyer', name: 'Gone', sid: randomUUID() });
  for (let round = 0; round < 3; round++) {
    // Sent together, so the ghost's bid shares the intake's write with the others.
    const answers = await Promise.all([
      sys.api.post(`/api/v1/auctions/${a.id}/bid`, { amount: 100_000 }, { token: ghost }),
      ...buyers.map((b, i) => bid(sys, b, a.id, 1_000 + round * 100 + i)),
    ]);
    t.is(answers[0]!.status, 401);
    t.is(answers[0]!.body.error.code, 'unauthorized');
    t.deepEqual(answers.slice(1).map((r) => r.status), buyers.map(() => 202));
  }
  t.is(Number((await sys.db('bids').where({ auction_id: a.id }).count<{ count: string }[]>('* as count'))[0]!.count), buyers.length * 3);
});

test.serial("an owner's end asked after a stale end: queued bids received before it still extend the end up to it, so a bid after the stale end is on time", async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const [first, second] = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller, { softCloseSeconds: 30 });
  // The stored end is 1 s away; a bid in its soft-close window stays queued (no drain).
  const { rows } = await sys.db.raw("update auctions set ends_at = date_trunc('milliseconds', clock_timestamp()) + interval '1 second' where id = ? returning ends_at", [a.id]);
  const staleEnd = (rows[0].ends_at as Date).getTime();
  const b1 = await bid(sys, first, a.id, 1000);
  await new Promise((r) => setTimeout(r, Math.max(0, staleEnd - Date.now()) + 300));
  // Received after the stale end, but before the owner's end: on time, since b1 moves the end.
  const b2 = await bid(sys, second, a.id, 2000);
  const ended = await endEarlyTx(sys.db, a.id);
  t.is(ended.outcome, 'ending');
  const b3 = await bid(sys, first, a.id, 3000);
  const closed = await closeIfDue(sys.workerCtx, a.id);
  t.true(closed?.ended);
  t.is(await status(b1.body.bidId), 'accepted');
  t.is(await status(b2.body.bidId), 'accepted');
  t.is(await reason(b3.body.bidId), 'auction_ended');
  const row = await sys.db('auctions').where({ id: a.id }).first();
  t.is(row.winner_id, second.id);
  t.is(row.ends_at.getTime(), ended.outcome === 'ending' ? ended.endsAt : 0, 'ended at the owner\'s end');
});

test.serial('a bid recorded before the end, whose write commits only after the close began, is applied by that close and wins', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller, { softCloseSeconds: 0 });
  const { rows } = await sys.db.raw("update auctions set ends_at = date_trunc('milliseconds', clock_timestamp()) + interval '400 milliseconds' where id = ? returning ends_at", [a.id]);
  const endsAt = (rows[0].ends_at as Date).getTime();
  // The intake's write: received now (before the end), committed later.
  const intake = await sys.db.transaction();
  t.teardown(() => intake.rollback().catch(() => undefined));
  const item = { id: randomUUID(), kind: 'bid' as const, bidderId: u.id, amount: 1000, idempotencyKey: null };
  await recordBids(intake, [{ auctionId: a.id, items: [item] }]);
  await new Promise((r) => setTimeout(r, Math.max(0, endsAt - Date.now()) + 100));
  const closing = closeIfDue(sys.workerCtx, a.id);
  await new Promise((r) => setTimeout(r, 300));
  await intake.commit();
  t.true((await closing)?.ended);
  t.is(await status(item.id), 'accepted');
  t.is((await sys.db('auctions').where({ id: a.id }).first()).winner_id, u.id);
});

test('the intake records the bids it takes in one write in the order it took them', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const users = await Promise.all(Array.from({ length: 6 }, () => registerUser(sys)));
  const a = await liveAuction(sys, seller);
  const intake = new BidIntake(sys.edge.deps);
  const items = users.map((u, i) => ({ id: randomUUID(), kind: 'bid' as const, bidderId: u.id, amount: 1000 + i * 100, idempotencyKey: null }));
  // All taken in one turn of the event loop: one write.
  const outcomes = await Promise.all(items.map((item) => intake.submit(a.id, item)));
  t.deepEqual(outcomes, items.map(() => 'recorded'));
  const rows = await sys.db('bids').whereIn('id', items.map((i) => i.id)).orderBy('receipt_no');
  t.deepEqual(rows.map((r) => r.id), items.map((i) => i.id));
  t.deepEqual(rows.map((r) => Number(r.receipt_no)), rows.map((_, i) => Number(rows[0].receipt_no) + i), 'consecutive');
});

test.serial("an owner's end asked again keeps the first, also one fixed by the version before end_cap (hard_end, no cap)", async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await liveAuction(sys, seller, { softCloseSeconds: 30 });
  const first = await endEarlyTx(sys.db, a.id);
  const again = await endEarlyTx(sys.db, a.id);
  t.deepEqual(again, first);
  // As the previous version left an end: ends_at fixed, hard_end set, no cap.
  const b = await liveAuction(sys, seller, { softCloseSeconds: 30 });
  const { rows } = await sys.db.raw("update auctions set ends_at = date_trunc('milliseconds', clock_timestamp()), hard_end = true where id = ? returning ends_at", [b.id]);
  const legacy = await endEarlyTx(sys.db, b.id);
  t.deepEqual(legacy, { outcome: 'ending', endsAt: (rows[0].ends_at as Date).getTime() });
  t.is((await sys.db('auctions').where({ id: b.id }).first()).end_cap.getTime(), (rows[0].ends_at as Date).getTime());
});

/** Sends the requests in one write on one connection (HTTP pipelining); returns the answers' bid ids in order. */
function pipelined(url: string, requests: { token: string; amount: number; auctionId: string; key?: string }[]): Promise<string[]> {
  const { hostname, port } = new URL(url);
  const raw = requests
    .map((r, i) => {
      const body = JSON.stringify({ amount: r.amount });
      const headers = [
        `POST /api/v1/auctions/${r.auctionId}/bid HTTP/1.1`,
        `Host: ${hostname}:${port}`,
        `Authorization: Bearer ${r.token}`,
        'Content-Type: application/json',
        `Content-Length: ${Buffer.byteLength(body)}`,
        ...(r.key ? [`Idempotency-Key: ${r.key}`] : []),
        `Connection: ${i === requests.length - 1 ? 'close' : 'keep-alive'}`,
      ];
      return `${headers.join('\r\n')}\r\n\r\n${body}`;
    })
    .join('');
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(raw));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('error', reject);
    socket.on('close', () => resolve([...text.matchAll(/"bidId":"([0-9a-f-]{36})"/g)].map((m) => m[1]!)));
  });
}

test('a bid with an Idempotency-Key is recorded in the order it arrived, not after a lookup of its key', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const [keyed, plain] = await Promise.all([registerUser(sys), registerUser(sys)]);
  const a = await liveAuction(sys, seller);
  // Both tokens verified once already, so both requests take the same steps.
  t.is((await bid(sys, keyed, a.id, 1000)).status, 202);
  t.is((await bid(sys, plain, a.id, 1000)).status, 202);
  for (let i = 0; i < 5; i++) {
    const key = `order-${i}-${randomUUID()}`;
    const ids = await pipelined(sys.edge.url, [
      { token: keyed.accessToken, amount: 2000 + i, auctionId: a.id, key },
      { token: plain.accessToken, amount: 3000 + i, auctionId: a.id },
    ]);
    t.is(ids.length, 2);
    const rows = await sys.db('bids').whereIn('id', ids).select('id', 'receipt_no', 'received_at');
    const receipt = (id: string) => Number(rows.find((r) => r.id === id)!.receipt_no);
    t.true(receipt(ids[0]!) < receipt(ids[1]!), `round ${i}: the keyed bid, sent first, was recorded after the plain one`);
    // Its replay still answers with the first id.
    const again = await bid(sys, keyed, a.id, 2000 + i, { 'Idempotency-Key': key });
    t.is(again.status, 202);
    t.is(again.body.bidId, ids[0]);
  }
});
