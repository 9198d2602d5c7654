import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createAdmin, registerUser, useSystem } from '../helpers/system.js';
import { makeCategory, makeProduct } from '../helpers/catalog.js';
import { bid, insertLiveAuctions, liveAuction, makeAuction, storedUserEvents, verdict, waitFor } from '../helpers/auctions.js';
import { auctionStream } from '../../queues/streams.js';

const system = useSystem(test, { workers: true });
const A = '/api/v1/auctions';

test('a seller auctions their own product; the auction starts scheduled with API.md defaults', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await makeAuction(sys, seller, { reservePrice: 5000 });
  t.is(a.status, 'scheduled');
  t.is(a.startsAt, null);
  t.is(a.endsAt, null);
  t.is(a.currentPrice, 1000);
  t.is(a.minNextBid, 1000);
  t.is(a.leaderId, null);
  t.is(a.bidCount, 0);
  t.is(a.softCloseSeconds, 30);
  t.is(a.seq, 0);
  t.is(a.reservePrice, 5000, 'the seller sees the reserve');
  const anon = await sys.api.get(`${A}/${a.id}`);
  t.false('reservePrice' in anon.body);
  t.is(anon.body.reserveMet, false);
  // API.md: hidden from non-owners; an admin is not the owner.
  const admin = await createAdmin(sys);
  const byAdmin = await sys.api.get(`${A}/${a.id}`, { token: admin.accessToken });
  t.false('reservePrice' in byAdmin.body);
  t.is(byAdmin.body.reserveMet, false);
  const noReserve = await makeAuction(sys, seller);
  t.is((await sys.api.get(`${A}/${noReserve.id}`)).body.reserveMet, true);
});

test('ids in bodies are taken in upper case too, as the same id (as in paths)', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const product = await makeProduct(sys, seller, { categoryId: cat.id });
  const res = await sys.api.post(A, { productId: product.id.toUpperCase(), startingPrice: 100, durationSeconds: 60 }, { token: seller.accessToken });
  t.is(res.status, 201);
  t.is(res.body.productId, product.id);
});

test('who may create: not buyers, not for another seller\'s product; one open auction per product', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const other = await registerUser(sys, 'seller');
  const buyer = await registerUser(sys);
  const cat = await makeCategory(sys);
  const product = await makeProduct(sys, seller, { categoryId: cat.id });
  const body = { productId: product.id, startingPrice: 100, durationSeconds: 60 };
  t.is((await sys.api.post(A, body, { token: buyer.accessToken })).status, 403);
  const foreign = await sys.api.post(A, body, { token: other.accessToken });
  t.is(foreign.status, 403);
  t.is((await sys.api.post(A, { ...body, productId: randomUUID() }, { token: seller.accessToken })).status, 400);
  t.is((await sys.api.post(A, body, { token: seller.accessToken })).status, 201);
  const second = await sys.api.post(A, body, { token: seller.accessToken });
  t.is(second.status, 409);
  const admin = await createAdmin(sys);
  const p2 = await makeProduct(sys, seller, { categoryId: cat.id });
  const byAdmin = await sys.api.post(A, { ...body, productId: p2.id }, { token: admin.accessToken });
  t.is(byAdmin.status, 201);
  t.is(byAdmin.body.sellerId, seller.id, 'the product\'s seller owns it');
});

test('bad auction input is a 400', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const product = await makeProduct(sys, seller, { categoryId: cat.id });
  const good = { productId: product.id, startingPrice: 100, durationSeconds: 60 };
  for (const body of [
    { ...good, startingPrice: 0 },
    { ...good, startingPrice: '100' },
    { ...good, startingPrice: 1.5 },
    { ...good, durationSeconds: 5 },
    { ...good, softCloseSeconds: -1 },
    { ...good, reservePrice: 50 },
    { ...good, startsAt: '2001-01-01T00:00:00Z' },
    { ...good, startsAt: 'tomorrow' },
    // Expanded years: the last date JavaScript holds (its end would be past it), and beyond.
    { ...good, startsAt: '+275760-09-13T00:00:00.000Z' },
    { ...good, startsAt: '+010000-01-01T00:00:00.000Z' },
    // A day the month lacks; no zone; only a date; past the scheduling horizon.
    { ...good, startsAt: '2999-02-30T00:00:00Z' },
    { ...good, startsAt: '2999-01-01T10:00' },
    { ...good, startsAt: '2999-01-01' },
    { ...good, startsAt: new Date(Date.now() + 367 * 86_400_000).toISOString() },
    { ...good, sellerId: seller.id },
  ]) {
    const res = await sys.api.post(A, body, { token: seller.accessToken });
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.error.code, 'validation_failed');
  }
  t.is((await sys.api.get(`${A}?status=open`)).status, 400);
  // Cursors with an expanded year (Postgres would read the sign as a time zone).
  const cursor = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  for (const url of [
    `${A}?cursor=${cursor({ createdAt: '+010000-01-01T00:00:00.000Z', id: randomUUID() })}`,
    `${A}/live?cursor=${cursor({ endsAt: '+010000-01-01T00:00:00.000Z', id: randomUUID() })}`,
    // Year 0000, which Postgres does not have.
    `${A}?cursor=${cursor({ createdAt: '0000-01-01T00:00:00.000Z', id: randomUUID() })}`,
  ]) {
    const res = await sys.api.get(url);
    t.is(res.status, 400, url);
    t.is(res.body.error?.code, 'validation_failed', url);
  }
  t.is((await sys.api.get(`${A}/${randomUUID()}`)).status, 404);
});

test('start: live now with endsAt = now + duration, once; only the owner or an admin', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const buyer = await registerUser(sys);
  const a = await makeAuction(sys, seller, { durationSeconds: 120 });
  t.is((await sys.api.put(`${A}/${a.id}/start`, undefined, { token: buyer.accessToken })).status, 403);
  const started = await sys.api.put(`${A}/${a.id}/start`, undefined, { token: seller.accessToken });
  t.is(started.status, 200);
  t.is(started.body.status, 'live');
  t.is(started.body.seq, 1);
  const span = Date.parse(started.body.endsAt) - Date.parse(started.body.startsAt);
  t.is(span, 120_000);
  const again = await sys.api.put(`${A}/${a.id}/start`, undefined, { token: seller.accessToken });
  t.is(again.status, 409);
  // The auction.started event is in the auction's stream with id "1-0".
  const entries = await waitFor(async () => {
    const e = await sys.redis.xrange(auctionStream(sys.config.redis.prefix, a.id), '-', '+');
    return e.length ? e : undefined;
  });
  t.is(entries[0]![0], '1-0');
  const frame = JSON.parse(entries[0]![1][1]!);
  t.is(frame.type, 'auction.started');
  t.is(frame.auctionId, a.id);
  t.is(frame.seq, 1);
});

test('an auction with startsAt starts by itself, then ends by itself at endsAt', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const startsAt = new Date(Date.now() + 4000).toISOString();
  const a = await makeAuction(sys, seller, { startsAt, durationSeconds: 10, softCloseSeconds: 0 });
  t.is(a.status, 'scheduled');
  t.is(Date.parse(a.endsAt) - Date.parse(a.startsAt), 10_000);
  const live = await waitFor(async () => {
    const r = await sys.api.get(`${A}/${a.id}`);
    return r.body.status === 'live' ? r.body : undefined;
  }, 10_000, 'live');
  t.true(Date.parse(live.startsAt) >= Date.parse(startsAt));
  const ended = await waitFor(async () => {
    const r = await sys.api.get(`${A}/${a.id}`);
    return r.body.status === 'ended' ? r.body : undefined;
  }, 20_000, 'ended');
  t.is(ended.winnerId, null);
  t.is(ended.seq, 2);
});

test('end: bids received before the call are applied, the winner gets an order; ending twice changes nothing', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const b1 = await registerUser(sys);
  const b2 = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const r1 = await bid(sys, b1, a.id, 1000);
  const r2 = await bid(sys, b2, a.id, 1100);
  t.is(r1.status, 202);
  t.is(r2.status, 202);
  const ended = await sys.api.put(`${A}/${a.id}/end`, undefined, { token: seller.accessToken });
  t.is(ended.status, 200, ended.text);
  t.is(ended.body.status, 'ended');
  t.is(ended.body.winnerId, b2.id);
  t.is(ended.body.currentPrice, 1100);
  t.is(ended.body.bidCount, 2);
  const order = await sys.db('orders').where({ auction_id: a.id }).first();
  t.is(order.buyer_id, b2.id);
  t.is(order.status, 'pending_payment');
  t.is(Number(order.total), 1100);
  const again = await sys.api.put(`${A}/${a.id}/end`, undefined, { token: seller.accessToken });
  t.is(again.status, 200);
  t.deepEqual(again.body, ended.body);
  t.is((await sys.db('orders').where({ auction_id: a.id })).length, 1);
  const late = await bid(sys, b1, a.id, 5000);
  t.is(late.status, 202);
  t.is((await verdict(sys, b1, late.body.bidId)).reason, 'auction_ended');
  // The winner was told privately.
  const won = await waitFor(async () => (await storedUserEvents(sys.db, [b2.id], 'auction.won'))[0]);
  t.is(won.payload.orderId, order.id);
});

test('cancel before the first bid; not after', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const buyer = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const c = await sys.api.put(`${A}/${a.id}/cancel`, undefined, { token: seller.accessToken });
  t.is(c.status, 200);
  t.is(c.body.status, 'cancelled');
  const late = await bid(sys, buyer, a.id, 1000);
  t.is((await verdict(sys, buyer, late.body.bidId)).reason, 'auction_not_live');
  const b = await liveAuction(sys, seller);
  const placed = await bid(sys, buyer, b.id, 1000);
  await verdict(sys, buyer, placed.body.bidId);
  t.is((await sys.api.put(`${A}/${b.id}/cancel`, undefined, { token: seller.accessToken })).status, 409);
});

test('lists: by status and seller, newest first; live soonest-ending first', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const long = await liveAuction(sys, seller, { durationSeconds: 3000 });
  const short = await liveAuction(sys, seller, { durationSeconds: 1000 });
  const sched = await makeAuction(sys, seller);
  const mine = await sys.api.get(`${A}?sellerId=${seller.id}`);
  t.deepEqual(mine.body.data.map((x: { id: string }) => x.id), [sched.id, short.id, long.id]);
  const live = await sys.api.get(`${A}?sellerId=${seller.id}&status=live`);
  t.deepEqual(live.body.data.map((x: { id: string }) => x.id), [short.id, long.id]);
  const soonest = (await sys.api.get(`${A}/live?limit=100`)).body.data.map((x: { id: string }) => x.id);
  t.true(soonest.indexOf(short.id) < soonest.indexOf(long.id));
  t.false(soonest.includes(sched.id));
  const p1 = await sys.api.get(`${A}?sellerId=${seller.id}&limit=2`);
  const p2 = await sys.api.get(`${A}?sellerId=${seller.id}&limit=2&cursor=${p1.body.nextCursor}`);
  t.deepEqual([...p1.body.data, ...p2.body.data].map((x: { id: string }) => x.id), [sched.id, short.id, long.id]);
  t.is(p2.body.nextCursor, null);
});

test('lists page through rows created in the same millisecond (the cursor holds milliseconds)', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  // Four auctions and their products in one statement each: equal creation times.
  const ids = await insertLiveAuctions(sys.db, seller.id, 4);
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 10; page++) {
    const res: { status: number; body: { data: { id: string }[]; nextCursor: string | null } } = await sys.api.get(`${A}?sellerId=${seller.id}&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
    t.is(res.status, 200);
    seen.push(...res.body.data.map((x: { id: string }) => x.id));
    cursor = res.body.nextCursor;
    if (!cursor) break;
  }
  t.deepEqual([...seen].sort(), [...ids].sort(), 'every auction on exactly one page');
  const products: string[] = [];
  cursor = null;
  for (let page = 0; page < 10; page++) {
    const res: { status: number; body: { data: { id: string }[]; nextCursor: string | null } } = await sys.api.get(`/api/v1/products?sellerId=${seller.id}&limit=1${cursor ? `&cursor=${cursor}` : ''}`);
    t.is(res.status, 200);
    products.push(...res.body.data.map((x: { id: string }) => x.id));
    cursor = res.body.nextCursor;
    if (!cursor) break;
  }
  t.is(new Set(products).size, 4, 'every product on exactly one page');
  t.is(products.length, 4);
});
