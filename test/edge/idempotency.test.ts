/**
 * Idempotency-Key on the write endpoints other than bids (API.md: the same key
 * from the same user returns the first response and never does the work twice).
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { registerUser, useSystem, type System, type TestUser } from '../helpers/system.js';
import { makeCategory, makeProduct } from '../helpers/catalog.js';
import { bid, liveAuction } from '../helpers/auctions.js';
import { purgeExpiredKeys } from '../../db/operations/idempotency.js';

const system = useSystem(test, { workers: true, env: { CORS_ORIGINS: 'https://app.example' } });

async function product(sys: System, seller: TestUser) {
  const cat = await makeCategory(sys);
  return makeProduct(sys, seller, { categoryId: cat.id });
}
const create = (sys: System, seller: TestUser, body: Record<string, unknown>, key?: string) =>
  sys.api.post('/api/v1/auctions', body, { token: seller.accessToken, headers: key ? { 'Idempotency-Key': key } : {} });

test('POST /auctions: a repeated key returns the first 201 and creates nothing more; without a key the repeat is 409', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const p = await product(sys, seller);
  const body = { productId: p.id, startingPrice: 1000, durationSeconds: 600, startsAt: new Date(Date.now() + 3_600_000).toISOString() };
  const key = `create-${randomUUID()}`;
  const first = await create(sys, seller, body, key);
  t.is(first.status, 201);
  t.is(first.headers.get('idempotent-replayed'), null);
  const again = await create(sys, seller, body, key);
  t.is(again.status, 201);
  t.is(again.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(again.body, first.body);
  t.is(first.headers.get('location'), `/api/v1/auctions/${first.body.id}`);
  t.is(again.headers.get('location'), first.headers.get('location'), 'the replay keeps the Location of the 201');
  t.regex(again.headers.get('content-type') ?? '', /^application\/json/);
  t.is(Number((await sys.db('auctions').where({ product_id: p.id }).count<{ count: string }[]>('* as count'))[0]!.count), 1);
  // The start job was armed once.
  const jobs = await sys.producer.queues.get('auctions')!.getJobs(['delayed']);
  t.is(jobs.filter((j) => (j.data as { auctionId?: string }).auctionId === first.body.id).length, 1);
  // Without a key the repeat is the plain answer: the product already has an auction.
  t.is((await create(sys, seller, body)).status, 409);
});

test('the same key for another request is 409 (another body, another path); another user may use the same key', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const other = await registerUser(sys, 'seller');
  const p = await product(sys, seller);
  const key = `k-${randomUUID()}`;
  const first = await create(sys, seller, { productId: p.id, startingPrice: 1000, durationSeconds: 600 }, key);
  t.is(first.status, 201);
  const otherBody = await create(sys, seller, { productId: p.id, startingPrice: 2000, durationSeconds: 600 }, key);
  t.is(otherBody.status, 409);
  t.is(otherBody.body.error.code, 'conflict');
  t.regex(otherBody.body.error.message, /different request/);
  const otherPath = await sys.api.put(`/api/v1/auctions/${first.body.id}/start`, undefined, { token: seller.accessToken, headers: { 'Idempotency-Key': key } });
  t.is(otherPath.status, 409);
  t.is((await sys.db('auctions').where({ id: first.body.id }).first()).status, 'scheduled', 'the start did not run');
  const p2 = await product(sys, other);
  t.is((await create(sys, other, { productId: p2.id, startingPrice: 1000, durationSeconds: 600 }, key)).status, 201);
});

test('PUT start and end with a key: a retry gets the first answer (without one, 409 and the ended auction)', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const buyer = await registerUser(sys);
  const a = (await create(sys, seller, { productId: (await product(sys, seller)).id, startingPrice: 1000, durationSeconds: 600 })).body;
  const startKey = `start-${randomUUID()}`;
  const started = await sys.api.put(`/api/v1/auctions/${a.id}/start`, undefined, { token: seller.accessToken, headers: { 'Idempotency-Key': startKey } });
  t.is(started.status, 200);
  // An upper-case id is the same auction, so the same request.
  const retried = await sys.api.put(`/api/v1/auctions/${String(a.id).toUpperCase()}/start`, undefined, { token: seller.accessToken, headers: { 'Idempotency-Key': startKey } });
  t.is(retried.status, 200);
  t.deepEqual(retried.body, started.body);
  t.is((await sys.api.put(`/api/v1/auctions/${a.id}/start`, undefined, { token: seller.accessToken })).status, 409);
  t.is((await bid(sys, buyer, a.id, 1000)).status, 202);
  const endKey = `end-${randomUUID()}`;
  const ended = await sys.api.put(`/api/v1/auctions/${a.id}/end`, undefined, { token: seller.accessToken, headers: { 'Idempotency-Key': endKey } });
  t.is(ended.status, 200);
  t.is(ended.body.winnerId, buyer.id);
  const endedAgain = await sys.api.put(`/api/v1/auctions/${a.id}/end`, undefined, { token: seller.accessToken, headers: { 'Idempotency-Key': endKey } });
  t.deepEqual(endedAgain.body, ended.body);
  t.is(endedAgain.headers.get('idempotent-replayed'), 'true');
  t.is(Number((await sys.db('orders').where({ auction_id: a.id }).count<{ count: string }[]>('* as count'))[0]!.count), 1);
});

test('a request refused as invalid (400) does not keep its key: corrected, it runs with the same key', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const p = await product(sys, seller);
  const key = `fix-${randomUUID()}`;
  const bad = await create(sys, seller, { productId: p.id, startingPrice: '1000', durationSeconds: 600 }, key);
  t.is(bad.status, 400);
  const good = await create(sys, seller, { productId: p.id, startingPrice: 1000, durationSeconds: 600 }, key);
  t.is(good.status, 201);
  // A 409 of the route (a state it refused) is an answer like any other: replayed.
  const p2 = await product(sys, seller);
  await create(sys, seller, { productId: p2.id, startingPrice: 1000, durationSeconds: 600 });
  const key2 = `dup-${randomUUID()}`;
  const refused = await create(sys, seller, { productId: p2.id, startingPrice: 1000, durationSeconds: 600 }, key2);
  t.is(refused.status, 409);
  const refusedAgain = await create(sys, seller, { productId: p2.id, startingPrice: 1000, durationSeconds: 600 }, key2);
  t.is(refusedAgain.status, 409);
  t.is(refusedAgain.headers.get('idempotent-replayed'), 'true');
  t.is((await create(sys, seller, { productId: p.id, startingPrice: 1000, durationSeconds: 600 }, 'has spaces')).status, 400);
});

test('concurrent requests with one key: one does the work; the others replay it or are told it is in progress', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const p = await product(sys, seller);
  const key = `race-${randomUUID()}`;
  const body = { productId: p.id, startingPrice: 1000, durationSeconds: 600 };
  const answers = await Promise.all(Array.from({ length: 8 }, () => create(sys, seller, body, key)));
  const created = answers.filter((r) => r.status === 201);
  t.true(created.length >= 1);
  t.true(answers.every((r) => r.status === 201 || (r.status === 409 && /still being processed/.test(r.body.error.message))), answers.map((r) => r.status).join());
  t.is(new Set(created.map((r) => r.body.id)).size, 1, 'every 201 is the same auction');
  t.is(Number((await sys.db('auctions').where({ product_id: p.id }).count<{ count: string }[]>('* as count'))[0]!.count), 1);
});

test('a claim left by a request that died is taken over after a minute; records past a day expire and are purged', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const p = await product(sys, seller);
  const body = { productId: p.id, startingPrice: 1000, durationSeconds: 600 };
  const key = `stale-${randomUUID()}`;
  const first = await create(sys, seller, body, key);
  // As if the request had died before answering, 61 s ago: same fingerprint, no answer.
  await sys.db('idempotent_requests').where({ user_id: seller.id, key }).update({ status: null, body: null });
  t.is((await create(sys, seller, body, key)).status, 409, 'a fresh claim: still in progress');
  await sys.db('idempotent_requests').where({ user_id: seller.id, key }).update({ created_at: sys.db.raw("clock_timestamp() - interval '61 seconds'") });
  const taken = await create(sys, seller, body, key);
  t.is(taken.status, 409, 'the route ran again and found the auction it made');
  t.regex(taken.body.error.message, /open auction|already/);
  t.is(first.status, 201);
  // Expiry: a day-old record is gone and its key free again.
  await sys.db('idempotent_requests').where({ user_id: seller.id, key }).update({ created_at: sys.db.raw("clock_timestamp() - interval '25 hours'") });
  // (This system's own sweeper may purge it first: the record's absence is what counts.)
  await purgeExpiredKeys(sys.db);
  t.is(await sys.db('idempotent_requests').where({ user_id: seller.id, key }).first(), undefined);
});

test('chat moderation with a key: a repeated ban is replayed, not applied again', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const buyer = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const key = `ban-${randomUUID()}`;
  const ban = () => sys.api.post(`/api/v1/auctions/${a.id}/chat/bans`, { userId: buyer.id, durationSeconds: 600 }, { token: seller.accessToken, headers: { 'Idempotency-Key': key } });
  const first = await ban();
  t.is(first.status, 201);
  const before = await sys.db('auction_bans').where({ auction_id: a.id, user_id: buyer.id }).first();
  await new Promise((r) => setTimeout(r, 20));
  const again = await ban();
  t.is(again.status, 201);
  t.is(again.headers.get('idempotent-replayed'), 'true');
  t.deepEqual(again.body, first.body);
  t.deepEqual(await sys.db('auction_bans').where({ auction_id: a.id, user_id: buyer.id }).first(), before, 'the ban was not made again');
});

test('an answer whose record fails once is recorded by a second try: the retry is replayed, the work not done again', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const buyer = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const key = `rec-${randomUUID()}`;
  const ban = () =>
    sys.api.post(`/api/v1/auctions/${a.id}/chat/bans`, { userId: buyer.id, durationSeconds: 600 }, { token: seller.accessToken, headers: { 'Idempotency-Key': key } });
  // The first statement recording this key's answer fails (a lost connection, say).
  // (Other tests run at the same time: only this key's record is touched.)
  // (A sequence counts the tries: nextval is not undone by the failed statement.)
  await sys.db.raw('create sequence record_tries');
  await sys.db.raw(`create function fail_first_record() returns trigger language plpgsql as $$ begin
      if new.key = '${key}' and new.status is not null and nextval('record_tries') = 1 then
        raise exception 'connection lost';
      end if;
      return new; end $$`);
  await sys.db.raw('create trigger fail_first_record before update on idempotent_requests for each row execute function fail_first_record()');
  try {
    const first = await ban();
    t.is(first.status, 201);
    const { rows } = await sys.db.raw('select last_value from record_tries');
    t.is(Number(rows[0].last_value), 2, 'the first try failed, the second recorded it');
    const banned = await sys.db('auction_bans').where({ auction_id: a.id, user_id: buyer.id }).first();
    const again = await ban();
    t.is(again.status, 201);
    t.is(again.headers.get('idempotent-replayed'), 'true');
    t.deepEqual(again.body, first.body);
    t.deepEqual(await sys.db('auction_bans').where({ auction_id: a.id, user_id: buyer.id }).first(), banned);
  } finally {
    await sys.db.raw('drop trigger fail_first_record on idempotent_requests');
  }
});

test('a browser client can read Idempotent-Replayed and Location (CORS exposes them)', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const p = await product(sys, seller);
  const body = { productId: p.id, startingPrice: 1000, durationSeconds: 600 };
  const opts = { token: seller.accessToken, headers: { 'Idempotency-Key': `cors-${randomUUID()}`, Origin: 'https://app.example' } };
  t.is((await sys.api.post('/api/v1/auctions', body, opts)).status, 201);
  const again = await sys.api.post('/api/v1/auctions', body, opts);
  t.is(again.headers.get('idempotent-replayed'), 'true');
  const exposed = (again.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/\s*,\s*/);
  t.true(exposed.includes('idempotent-replayed') && exposed.includes('location'), exposed.join());
});
