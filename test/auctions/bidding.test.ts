/**
 * Bidding end to end: the edge in this process, two worker processes spawned
 * from the Procfile's entry, real Postgres and Redis.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { registerUser, useSystem, type TestUser } from '../helpers/system.js';
import { bid, liveAuction, storedUserEvents, verdict, waitFor } from '../helpers/auctions.js';
import { replay } from '../helpers/audit.js';

const system = useSystem(test, { workerProcesses: 2 });

test('20 bidders x 10 concurrent bids: every bid gets a verdict, prices rise in seq order, seq is gapless, replay agrees', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const bidders: TestUser[] = [];
  for (let i = 0; i < 20; i++) bidders.push(await registerUser(sys));
  const a = await liveAuction(sys, seller, { startingPrice: 100, durationSeconds: 3600 });

  // Round k of every bidder's bids goes out together, rising from round to round
  // but shuffled within it (a fixed permutation): bids overtake each other, so
  // verdicts differ in kind.
  const requests = Array.from({ length: 10 }, (_, k) => bidders.map((u, i) => ({ u, amount: 100 + (k * 20 + ((i * 7 + 3) % 20)) * 137 }))).flat();
  const responses = await Promise.all(requests.map((r) => bid(sys, r.u, a.id, r.amount)));
  t.true(responses.every((r) => r.status === 202), 'every bid acknowledged');
  const ids = responses.map((r) => r.body.bidId as string);
  t.is(new Set(ids).size, 200);

  const verdicts = await Promise.all(ids.map((id, i) => verdict(sys, requests[i]!.u, id, 30_000)));
  t.true(verdicts.every((v) => v.status === 'accepted' || v.status === 'rejected'));
  const accepted = verdicts.filter((v) => v.status === 'accepted');
  const reasons = new Set(verdicts.filter((v) => v.status === 'rejected').map((v) => v.reason));
  t.true(accepted.length >= 10 && reasons.has('bid_too_low'), `accepted ${accepted.length}, rejected for ${[...reasons].join(', ')}`);
  t.log(`accepted ${accepted.length}; rejected ${200 - accepted.length} (${[...reasons].join(', ')})`);

  // The public record: gapless seq from 1 (auction.started), prices strictly rising.
  const events = await sys.db('auction_events').where({ auction_id: a.id }).orderBy('seq');
  t.deepEqual(events.map((e) => Number(e.seq)), events.map((_, i) => i + 1), 'seq is gapless');
  const placed = events.filter((e) => e.type === 'bid.placed').map((e) => e.payload);
  t.is(placed.length, accepted.length);
  for (let i = 1; i < placed.length; i++) t.true(placed[i].amount > placed[i - 1].amount, `price rises at seq ${placed[i].seq}`);
  // Each accepted bid's verdict names its own bid.placed event.
  for (const v of accepted) t.is(placed.find((p) => p.seq === v.seq)?.bidId, v.id);

  // Applied in receipt order: accepted bids' receipt numbers rise with their seq.
  const rows = await sys.db('bids').where({ auction_id: a.id }).orderBy('receipt_no');
  const acceptedRows = rows.filter((r) => r.status === 'accepted');
  for (let i = 1; i < acceptedRows.length; i++) t.true(Number(acceptedRows[i].seq) > Number(acceptedRows[i - 1].seq));

  // Replay: the pure rules over the recorded bids in receipt order, from the
  // auction's creation and start, give every verdict (status, reason, seq) and the final state.
  const replayed = await replay(sys, a.id);
  t.deepEqual(replayed.mismatched, [], 'every verdict as the replay gives it');
  t.false(replayed.stateDiffers);
  const row = await sys.db('auctions').where({ id: a.id }).first();

  const ended = await sys.api.put(`/api/v1/auctions/${a.id}/end`, undefined, { token: seller.accessToken });
  t.is(ended.body.winnerId, row.leader_id);
  t.is(ended.body.currentPrice, Number(row.current_price));
});

test('a bid received before endsAt but applied after it is on time, and wins', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const late = await registerUser(sys);
  const a = await liveAuction(sys, seller, { durationSeconds: 10, softCloseSeconds: 0 });
  const endsAt = Date.parse(a.endsAt);
  // Hold the auction row so no worker can apply anything until after endsAt.
  const trx = await sys.db.transaction();
  t.teardown(() => trx.rollback().catch(() => undefined));
  await trx('auctions').where({ id: a.id }).forNoKeyUpdate().first();
  // Sent well before the end (a loaded machine may take a while to record it); what
  // matters is that it is received before endsAt and cannot be applied until after.
  const r = await bid(sys, late, a.id, 1000);
  t.is(r.status, 202);
  const recorded = await sys.db('bids').where({ id: r.body.bidId }).first();
  t.true(recorded.received_at.getTime() < endsAt, 'received before the end');
  await new Promise((res) => setTimeout(res, Math.max(0, endsAt - Date.now() + 300)));
  await trx.commit();
  const v = await verdict(sys, late, r.body.bidId, 20_000);
  t.is(v.status, 'accepted');
  const ended = await waitFor(async () => {
    const x = await sys.api.get(`/api/v1/auctions/${a.id}`);
    return x.body.status === 'ended' ? x.body : undefined;
  }, 20_000, 'ended');
  t.is(ended.winnerId, late.id);
  const latecomer = await registerUser(sys);
  const after = await bid(sys, latecomer, a.id, 5000);
  t.is(after.status, 202);
  t.is((await verdict(sys, latecomer, after.body.bidId, 20_000)).reason, 'auction_ended');
  t.is((await sys.api.get(`/api/v1/auctions/${a.id}`)).body.winnerId, late.id, 'the winner stays');
});

test('Idempotency-Key: the same key replays the first answer and bids once; another request with it is 409', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const key = randomUUID();
  const first = await bid(sys, u, a.id, 1000, { 'idempotency-key': key });
  const again = await Promise.all([1, 2, 3].map(() => bid(sys, u, a.id, 1000, { 'idempotency-key': key })));
  t.is(first.status, 202);
  for (const r of again) t.deepEqual(r.body, first.body);
  t.is((await sys.db('bids').where({ auction_id: a.id })).length, 1);
  const other = await bid(sys, u, a.id, 2000, { 'idempotency-key': key });
  t.is(other.status, 409);
  t.is(other.body.error.code, 'conflict');
  // Another user may use the same key for their own bid.
  const v = await registerUser(sys);
  const theirs = await bid(sys, v, a.id, 1100, { 'idempotency-key': key });
  t.is(theirs.status, 202);
  t.not(theirs.body.bidId, first.body.bidId);
  t.is((await bid(sys, u, a.id, 1000, { 'idempotency-key': 'bad key with spaces' })).status, 400);
});

test('bad bids are 400 at the edge and record nothing; unknown auction 404; verdicts are the worker\'s', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  for (const body of [{ amount: 0 }, { amount: -5 }, { amount: 1.5 }, { amount: '1000' }, { amount: null }, { amount: 100_000_000_001 }, {}, { amount: 1000, currency: 'usd' }, { maxAmount: 1000 }]) {
    const res = await sys.api.post(`/api/v1/auctions/${a.id}/bid`, body, { token: u.accessToken });
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.error.code, 'validation_failed');
  }
  t.is((await sys.api.post(`/api/v1/auctions/${a.id}/bid`, { amount: 1000 })).status, 401);
  t.is((await bid(sys, u, randomUUID(), 1000)).status, 404);
  t.is((await bid(sys, u, 'not-a-uuid', 1000)).status, 400);
  t.deepEqual(await sys.db('bids').where({ auction_id: a.id }), []);

  const self = await bid(sys, seller, a.id, 5000);
  t.is((await verdict(sys, seller, self.body.bidId)).reason, 'self_bid');
  const low = await bid(sys, u, a.id, 999);
  t.is((await verdict(sys, u, low.body.bidId)).reason, 'bid_too_low');
  const ok = await bid(sys, u, a.id, 1000);
  t.is((await verdict(sys, u, ok.body.bidId)).status, 'accepted');
  const twice = await bid(sys, u, a.id, 2000);
  t.is((await verdict(sys, u, twice.body.bidId)).reason, 'already_leading');
  const other = await registerUser(sys);
  t.is((await sys.api.get(`/api/v1/bids/${ok.body.bidId}`, { token: other.accessToken })).status, 404, "someone else's bid is not found");
});

test('auto-bids: proxies answer for their owner, history shows auto bids, acks and outbid events', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const alice = await registerUser(sys);
  const bob = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 500 });
  const proxy = await sys.api.post(`/api/v1/auctions/${a.id}/autobid`, { maxAmount: 1000 }, { token: alice.accessToken });
  t.is(proxy.status, 202);
  t.truthy(proxy.body.autobidId);
  t.is((await verdict(sys, alice, proxy.body.autobidId)).status, 'accepted');
  const b = await bid(sys, bob, a.id, 800);
  t.is((await verdict(sys, bob, b.body.bidId)).status, 'accepted');
  const now = await waitFor(async () => {
    const x = await sys.api.get(`/api/v1/auctions/${a.id}`);
    return x.body.leaderId === alice.id && x.body.bidCount === 3 ? x.body : undefined;
  });
  t.is(now.currentPrice, 850, 'alice leads at 8.00 + 0.50');
  const history = await sys.api.get(`/api/v1/auctions/${a.id}/bids`);
  t.deepEqual(
    history.body.data.map((h: { bidderId: string; amount: number; auto: boolean }) => [h.bidderId, h.amount, h.auto]),
    [
      [alice.id, 850, true],
      [bob.id, 800, false],
      [alice.id, 500, true],
    ],
  );
  t.is(history.body.data[0].bidderName, alice.name);
  const outbid = await waitFor(async () => (await storedUserEvents(sys.db, [bob.id], 'bid.outbid'))[0]);
  t.is(outbid.payload.currentPrice, 850);
  const [ack] = await storedUserEvents(sys.db, [alice.id], 'autobid.ack');
  if (!ack) return t.fail('no autobid.ack stored');
  t.is(ack.payload.status, 'accepted');
  t.is(ack.payload.maxAmount, 1000);
});

test('soft close: a bid in the last seconds moves endsAt and emits auction.extended', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller, { durationSeconds: 10, softCloseSeconds: 30 });
  const r = await bid(sys, u, a.id, 1000);
  const v = await verdict(sys, u, r.body.bidId);
  t.is(v.status, 'accepted');
  const row = await sys.db('bids').where({ id: r.body.bidId }).first();
  const after = await sys.api.get(`/api/v1/auctions/${a.id}`);
  t.is(Date.parse(after.body.endsAt), row.received_at.getTime() + 30_000);
  const ext = await sys.db('auction_events').where({ auction_id: a.id, type: 'auction.extended' }).first();
  t.is(ext.payload.endsAt, after.body.endsAt);
});
