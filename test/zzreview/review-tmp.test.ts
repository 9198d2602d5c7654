import test from 'ava';
import { randomUUID } from 'node:crypto';
import { registerUser, useSystem } from '../helpers/system.js';
import { bid, liveAuction, makeAuction, verdict, waitFor } from '../helpers/auctions.js';
import { applyQueued, closeIfDue } from '../../workers/handlers/bid-drain.js';
import { dbNow, recordBids } from '../../db/operations/auctions.js';
import { auctionStream } from '../../queues/streams.js';

const system = useSystem(test, { workers: true });
const A = '/api/v1/auctions';

test.serial('publish gap: an unpublished event is skipped forever once a later one publishes', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u1 = await registerUser(sys);
  const u2 = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  const stream = auctionStream(sys.config.redis.prefix, a.id);
  await waitFor(async () => (await sys.redis.xlen(stream)) === 1, 10_000, 'started');
  const trx = await sys.db.transaction();
  await trx('auctions').where({ id: a.id }).forNoKeyUpdate().first();
  t.is((await bid(sys, u1, a.id, 100)).status, 202);
  const row = await trx('auctions').where({ id: a.id }).first();
  await applyQueued(trx, row, false);
  await trx.commit(); // seq 2 committed, "crash" before publish
  const r2 = await bid(sys, u2, a.id, 500);
  await verdict(sys, u2, r2.body.bidId);
  await new Promise((r) => setTimeout(r, 5000));
  const ids = (await sys.redis.xrange(stream, '-', '+')).map(([id]) => id);
  const pub = await sys.db('auctions').where({ id: a.id }).first('published_seq', 'seq');
  t.log({ ids, pub });
  t.deepEqual(ids, ['1-0', '2-0', '3-0']);
});

test.serial('owner end: a bid received after the PUT /end time but drained before the close job is accepted', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u1 = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  const endAt = await dbNow(sys.db);
  await new Promise((r) => setTimeout(r, 5));
  const r1 = await bid(sys, u1, a.id, 100);
  const v = await verdict(sys, u1, r1.body.bidId);
  t.log('verdict of bid after endAt', v.status, v.receivedAt, new Date(endAt).toISOString());
  await sys.producer.enqueue('auction.close', { auctionId: a.id, at: endAt, endAt });
  await waitFor(async () => (await sys.db('auctions').where({ id: a.id }).first()).status === 'ended', 10_000, 'ended');
  const row = await sys.db('auctions').where({ id: a.id }).first();
  t.log({ winner: row.winner_id, u1: u1.id, ends_at: row.ends_at });
  t.is(row.winner_id, null, 'bid after end request must not win');
});

test.serial('owner end + soft close: a bid received just before the call extends and the end does not happen', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u1 = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 30 });
  await recordBids(sys.db, a.id, [{ id: randomUUID(), kind: 'bid', bidderId: u1.id, amount: 100, idempotencyKey: null }]);
  const endAt = await dbNow(sys.db);
  const res = await closeIfDue(sys.workerCtx, a.id, endAt);
  t.log({ res, endAt: new Date(endAt).toISOString(), endsAt: res?.endsAt && new Date(res.endsAt).toISOString() });
  t.true(res?.ended, 'the owner asked to end it');
});

test.serial('start race: a bid received while scheduled is accepted if drained after start', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u1 = await registerUser(sys);
  const a = await makeAuction(sys, seller, { startingPrice: 100 });
  const id = randomUUID();
  await recordBids(sys.db, a.id, [{ id, kind: 'bid', bidderId: u1.id, amount: 100, idempotencyKey: null }]);
  const s = await sys.api.put(`${A}/${a.id}/start`, undefined, { token: seller.accessToken });
  t.is(s.status, 200);
  const v = await verdict(sys, u1, id, 15_000);
  t.log(v);
  t.is(v.status, 'rejected');
});

test.serial('cancel: a scheduled auction with only a rejected bid cannot be cancelled', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u1 = await registerUser(sys);
  const a = await makeAuction(sys, seller, { startingPrice: 100 });
  const r = await bid(sys, u1, a.id, 100);
  const v = await verdict(sys, u1, r.body.bidId);
  t.is(v.reason, 'auction_not_live');
  const c = await sys.api.put(`${A}/${a.id}/cancel`, undefined, { token: seller.accessToken });
  t.log(c.status, c.body);
  t.is(c.status, 200);
});
