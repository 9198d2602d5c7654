/**
 * Auction subscriptions over real WebSockets: the broadcaster and the workers
 * run in this process against real Postgres and Redis; clients use `ws`.
 */
import test from 'ava';
import { registerUser, useSystem } from '../helpers/system.js';
import { bid, liveAuction, verdict, waitFor } from '../helpers/auctions.js';
import { connectWs, seqs } from '../helpers/ws.js';
import { startBroadcaster } from '../../edge/ws/server.js';
import { createLogger } from '../../lib/logger.js';
import { auctionStream, userEventsStream } from '../../queues/streams.js';

const system = useSystem(test, { workers: true, broadcaster: true });

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('subscribe: subscribed with the current seq, then live events, in order', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const buyers = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  const c = await connectWs(sys.broadcaster!.url);
  c.send({ type: 'subscribe', auctionId: a.id });
  const sub = await c.next((f) => f.type === 'subscribed');
  t.is(sub.auctionId, a.id);
  t.is(sub.seq, 1);
  t.is(sub.viewers, 1);
  for (let i = 0; i < 6; i++) await verdict(sys, buyers[i % 2]!, (await bid(sys, buyers[i % 2]!, a.id, 100 + i * 100)).body.bidId);
  await c.next((f) => f.type === 'bid.placed' && f.seq === 7);
  t.deepEqual(seqs(c.frames, a.id), range(2, 7));
  const last = c.frames.find((f) => f.seq === 7)!;
  t.is(last.amount, 600);
  t.is(last.leaderId, buyers[1]!.id);
  c.close();
});

test('sinceSeq replays every missed event once, in order, then continues live', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  for (let i = 0; i < 5; i++) await verdict(sys, u[i % 2]!, (await bid(sys, u[i % 2]!, a.id, 100 + i * 100)).body.bidId);
  await waitFor(async () => (await sys.redis.xlen(auctionStream(sys.config.redis.prefix, a.id))) === 6);
  const c = await connectWs(sys.broadcaster!.url);
  c.send({ type: 'subscribe', auctionId: a.id, sinceSeq: 2 });
  await c.next((f) => f.seq === 6 && f.type !== 'subscribed');
  // Bids keep coming during and after the replay.
  const who = (i: number) => u[(i + 1) % 2]!;
  const more = await Promise.all(Array.from({ length: 6 }, (_, i) => bid(sys, who(i), a.id, 1000 + i * 100)));
  await Promise.all(more.map((r, i) => verdict(sys, who(i), r.body.bidId)));
  await waitFor(async () => Number((await sys.db('auctions').where({ id: a.id }).first()).seq) >= 8);
  const final = Number((await sys.db('auctions').where({ id: a.id }).first()).seq);
  await c.next((f) => f.seq === final && f.type !== 'subscribed');
  t.is(c.frames[0]!.type, 'subscribed');
  t.deepEqual(seqs(c.frames, a.id), range(3, final), 'no gap, no duplicate');
  c.close();
});

test('resync when sinceSeq is ahead of the auction or history is gone', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  const ahead = await connectWs(sys.broadcaster!.url);
  ahead.send({ type: 'subscribe', auctionId: a.id, sinceSeq: 99 });
  await ahead.next((f) => f.type === 'resync' && f.auctionId === a.id);
  ahead.close();
  await verdict(sys, u, (await bid(sys, u, a.id, 100)).body.bidId);
  await waitFor(async () => (await sys.redis.xlen(auctionStream(sys.config.redis.prefix, a.id))) === 2);
  // Trim the history past what the client has.
  await sys.redis.xtrim(auctionStream(sys.config.redis.prefix, a.id), 'MAXLEN', 1);
  const behind = await connectWs(sys.broadcaster!.url);
  behind.send({ type: 'subscribe', auctionId: a.id, sinceSeq: 0 });
  await behind.next((f) => f.type === 'resync');
  t.deepEqual(seqs(behind.frames, a.id), [], 'nothing half-replayed');
  behind.close();
});

test('two broadcaster instances: each client gets every event exactly once', async (t) => {
  const sys = system();
  const second = await startBroadcaster(sys.config, createLogger('test', 'silent'));
  t.teardown(() => second.close());
  const seller = await registerUser(sys, 'seller');
  const u = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  const c1 = await connectWs(sys.broadcaster!.url);
  const c2 = await connectWs(second.url);
  for (const c of [c1, c2]) c.send({ type: 'subscribe', auctionId: a.id });
  await Promise.all([c1, c2].map((c) => c.next((f) => f.type === 'subscribed')));
  const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => bid(sys, u[i % 2]!, a.id, 100 + i * 100)));
  await Promise.all(rs.map((r, i) => verdict(sys, u[i % 2]!, r.body.bidId)));
  const final = await waitFor(async () => {
    const row = await sys.db('auctions').where({ id: a.id }).first();
    return Number(row.published_seq) === Number(row.seq) ? Number(row.seq) : undefined;
  });
  for (const c of [c1, c2]) {
    await c.next((f) => f.seq === final && f.type !== 'subscribed');
    t.deepEqual(seqs(c.frames, a.id), range(2, final));
    c.close();
  }
});

test('a client that resumes after a broadcaster restart loses nothing', async (t) => {
  const sys = system();
  const logger = createLogger('test', 'silent');
  let b = await startBroadcaster(sys.config, logger);
  t.teardown(() => b.close());
  const seller = await registerUser(sys, 'seller');
  const u = [await registerUser(sys), await registerUser(sys)];
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  let c = await connectWs(b.url);
  c.send({ type: 'subscribe', auctionId: a.id });
  await c.next((f) => f.type === 'subscribed');
  await verdict(sys, u[0]!, (await bid(sys, u[0]!, a.id, 100)).body.bidId);
  await c.next((f) => f.seq === 2 && f.type !== 'subscribed');
  const seen = seqs(c.frames, a.id);
  await b.close();
  // Events while no broadcaster runs.
  for (let i = 1; i < 5; i++) await verdict(sys, u[i % 2]!, (await bid(sys, u[i % 2]!, a.id, 100 + i * 100)).body.bidId);
  b = await startBroadcaster(sys.config, logger);
  c = await connectWs(b.url);
  c.send({ type: 'subscribe', auctionId: a.id, sinceSeq: Math.max(...seen) });
  await c.next((f) => f.seq === 6 && f.type !== 'subscribed');
  t.deepEqual([...seen, ...seqs(c.frames, a.id)], range(2, 6));
  c.close();
});

test('unsubscribe stops events; unknown auctions and repeats are error frames', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  const c = await connectWs(sys.broadcaster!.url);
  c.send({ type: 'subscribe', auctionId: a.id });
  await c.next((f) => f.type === 'subscribed');
  c.send({ type: 'subscribe', auctionId: a.id });
  t.is((await c.next((f) => f.type === 'error')).code, 'already_subscribed');
  c.send({ type: 'subscribe', auctionId: '00000000-0000-4000-8000-000000000000' });
  t.is((await c.next((f) => f.type === 'error' && f.code === 'not_found')).code, 'not_found');
  c.send({ type: 'unsubscribe', auctionId: a.id });
  await c.next((f) => f.type === 'unsubscribed');
  await verdict(sys, u, (await bid(sys, u, a.id, 100)).body.bidId);
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(seqs(c.frames, a.id), []);
  c.send({ type: 'ping' });
  await c.next((f) => f.type === 'pong');
  c.close();
});

test('private events reach only their user: bid.ack to the bidder', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const alice = await registerUser(sys);
  const bob = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100 });
  const ca = await connectWs(sys.broadcaster!.url, alice.accessToken);
  const cb = await connectWs(sys.broadcaster!.url, bob.accessToken);
  for (const c of [ca, cb]) {
    c.send({ type: 'ping' });
    await c.next((f) => f.type === 'pong');
  }
  const r = await bid(sys, alice, a.id, 100);
  const ack = await ca.next((f) => f.type === 'bid.ack');
  t.is(ack.bidId, r.body.bidId);
  t.is(ack.status, 'accepted');
  t.is(ack.auctionId, a.id);
  await new Promise((res) => setTimeout(res, 200));
  t.false(cb.frames.some((f) => f.type === 'bid.ack'));
  ca.close();
  cb.close();
});

test('a stream entry holding several users\' private events (a round\'s batch) gives each user only theirs, in order; single-event entries too', async (t) => {
  const sys = system();
  const alice = await registerUser(sys);
  const bob = await registerUser(sys);
  const ca = await connectWs(sys.broadcaster!.url, alice.accessToken);
  const cb = await connectWs(sys.broadcaster!.url, bob.accessToken);
  for (const c of [ca, cb]) {
    c.send({ type: 'ping' });
    await c.next((f) => f.type === 'pong');
  }
  const ev = (n: number) => JSON.stringify({ type: 'test.private', n });
  const stream = userEventsStream(sys.config.redis.prefix);
  // As lib/publisher.ts writes a batch, then as notifications and the release before wrote single events.
  await sys.redis.xadd(stream, '*', 'batch', '1', 'userId', alice.id, 'event', ev(1), 'userId', bob.id, 'event', ev(2), 'userId', alice.id, 'event', ev(3));
  await sys.redis.xadd(stream, '*', 'userId', bob.id, 'event', ev(4));
  await sys.redis.xadd(stream, '*', 'userId', alice.id, 'id', '77', 'event', ev(5));
  await ca.next((f) => f.type === 'test.private' && f.n === 5);
  await cb.next((f) => f.type === 'test.private' && f.n === 4);
  await new Promise((res) => setTimeout(res, 200));
  const got = (c: typeof ca) => c.frames.filter((f) => f.type === 'test.private').map((f) => f.n);
  t.deepEqual(got(ca), [1, 3, 5]);
  t.deepEqual(got(cb), [2, 4]);
  ca.close();
  cb.close();
});

test('viewers who leave at once or get resync do not stop live events for the others; resubscribing after resync works', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  const stayer = await connectWs(sys.broadcaster!.url);
  stayer.send({ type: 'subscribe', auctionId: a.id });
  await stayer.next((f) => f.type === 'subscribed');
  // One subscribes and disconnects before the subscription completes.
  const quick = await connectWs(sys.broadcaster!.url);
  quick.send({ type: 'subscribe', auctionId: a.id });
  quick.ws.terminate();
  // One asks for the future, gets resync, subscribes properly, then leaves.
  const ahead = await connectWs(sys.broadcaster!.url);
  ahead.send({ type: 'subscribe', auctionId: a.id, sinceSeq: 50 });
  await ahead.next((f) => f.type === 'resync');
  ahead.send({ type: 'subscribe', auctionId: a.id });
  await ahead.next((f) => f.type === 'subscribed' && f.seq === 1 && ahead.frames.filter((x) => x.type === 'subscribed').length === 2);
  t.false(ahead.frames.some((f) => f.type === 'error'), 'no already_subscribed after a resync');
  ahead.close();
  await new Promise((r) => setTimeout(r, 200));
  await verdict(sys, u, (await bid(sys, u, a.id, 100)).body.bidId);
  await stayer.next((f) => f.type === 'bid.placed' && f.seq === 2, 5_000);
  t.deepEqual(seqs(stayer.frames, a.id), [2]);
  stayer.close();
});

test('unsubscribe (or unsubscribe and subscribe again) while the auction is being looked up: nothing from the first subscribe', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  const b = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  // Frames sent together reach the server in one read, before its lookup answers.
  const left = await connectWs(sys.broadcaster!.url);
  left.ws.send(JSON.stringify({ type: 'subscribe', auctionId: a.id }) );
  left.ws.send(JSON.stringify({ type: 'unsubscribe', auctionId: a.id }));
  const again = await connectWs(sys.broadcaster!.url);
  again.send({ type: 'subscribe', auctionId: b.id, sinceSeq: 0 });
  again.send({ type: 'unsubscribe', auctionId: b.id });
  again.send({ type: 'subscribe', auctionId: b.id, sinceSeq: 0 });
  await left.next((f) => f.type === 'unsubscribed');
  await again.next((f) => f.type === 'subscribed');
  await verdict(sys, u, (await bid(sys, u, a.id, 100)).body.bidId);
  await verdict(sys, u, (await bid(sys, u, b.id, 100)).body.bidId);
  await again.next((f) => f.type === 'bid.placed' && f.auctionId === b.id);
  // The feed would deliver a's bid within milliseconds; give it time to (wrongly) arrive.
  await new Promise((r) => setTimeout(r, 500));
  t.deepEqual(left.frames.map((f) => f.type), ['unsubscribed'], 'no subscribed, no events after unsubscribed');
  t.is(again.frames.filter((f) => f.type === 'subscribed').length, 1, 'one subscribed: the second subscribe');
  t.deepEqual(seqs(again.frames, b.id), [1, 2], 'each event once');
  // The viewer count was released: a new viewer of `a` is its only one (a count
  // kept by `left` would make it 2: a subscribe's count is the higher of the
  // instance's own and the shared one).
  const fresh = await connectWs(sys.broadcaster!.url);
  fresh.send({ type: 'subscribe', auctionId: a.id });
  t.is((await fresh.next((f) => f.type === 'subscribed')).viewers, 1);
  fresh.close();
  left.close();
  again.close();
});

test('a live subscriber gets events trimmed from the stream before this instance read them, from the outbox, in order', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  const c = await connectWs(sys.broadcaster!.url);
  c.send({ type: 'subscribe', auctionId: a.id });
  await c.next((f) => f.type === 'subscribed');
  const frame = (seq: number) => ({ type: 'auction.extended', auctionId: a.id, seq, at: new Date().toISOString(), endsAt: new Date(Date.now() + 60_000).toISOString() });
  const stream = auctionStream(sys.config.redis.prefix, a.id);
  const commit = async (seqs: number[]) => {
    await sys.db('auction_events').insert(seqs.map((seq) => ({ auction_id: a.id, seq, type: 'auction.extended', payload: JSON.stringify(frame(seq)) })));
    await sys.db('auctions').where({ id: a.id }).update({ seq: Math.max(...seqs), published_seq: Math.max(...seqs) });
  };
  // The feed is reading this auction: event 2 goes through the stream.
  await commit([2]);
  await sys.redis.xadd(stream, '2-0', 'event', JSON.stringify(frame(2)));
  await c.next((f) => f.seq === 2 && f.type !== 'subscribed');
  // Events 3..6 are committed, but by the time the feed reads again, the stream
  // (past its MAXLEN) holds only 6: as when an instance falls behind a burst.
  await commit([3, 4, 5, 6]);
  await sys.redis.xadd(stream, '6-0', 'event', JSON.stringify(frame(6)));
  await c.next((f) => f.seq === 6 && f.type !== 'subscribed');
  t.deepEqual(seqs(c.frames, a.id), [2, 3, 4, 5, 6], 'the missing ones first, each once');
  c.close();
});

/** Stores events `seqs` of auction `id` in the outbox (and its seq), as a round commits them; the stream gets only what the test appends. */
function outbox(sys: ReturnType<typeof system>, id: string) {
  const frame = (seq: number) => ({ type: 'auction.extended', auctionId: id, seq, at: new Date().toISOString(), endsAt: new Date(Date.now() + 60_000).toISOString() });
  const stream = auctionStream(sys.config.redis.prefix, id);
  return {
    commit: async (list: number[]) => {
      await sys.db('auction_events').insert(list.map((seq) => ({ auction_id: id, seq, type: 'auction.extended', payload: JSON.stringify(frame(seq)) })));
      await sys.db('auctions').where({ id }).update({ seq: Math.max(...list) });
    },
    append: async (list: number[]) => {
      for (const seq of list) await sys.redis.xadd(stream, `${seq}-0`, 'event', JSON.stringify(frame(seq)));
    },
  };
}

/** A live auction, its outbox writer, and a socket subscribed to it at its current seq. */
async function subscribedToNewAuction(sys: ReturnType<typeof system>) {
  const seller = await registerUser(sys, 'seller');
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  const o = outbox(sys, a.id);
  const c = await connectWs(sys.broadcaster!.url);
  c.send({ type: 'subscribe', auctionId: a.id });
  await c.next((f) => f.type === 'subscribed');
  return { a, o, c };
}

test('a replay while the stream is behind the outbox (a publish not yet appended) gets the rest from the outbox, not resync', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await liveAuction(sys, seller, { startingPrice: 100, softCloseSeconds: 0 });
  const o = outbox(sys, a.id);
  // Committed up to 5; the stream has 1..3 (4 and 5 not appended yet).
  await o.commit([2, 3, 4, 5]);
  await o.append([2, 3]);
  // A viewer at the current seq: the feed now follows the auction from 5.
  const live = await connectWs(sys.broadcaster!.url);
  live.send({ type: 'subscribe', auctionId: a.id });
  t.is((await live.next((f) => f.type === 'subscribed')).seq, 5);
  // A viewer resuming from 1: 2..3 from the stream, 4..5 from the outbox.
  const resuming = await connectWs(sys.broadcaster!.url);
  resuming.send({ type: 'subscribe', auctionId: a.id, sinceSeq: 1 });
  await resuming.next((f) => f.seq === 5 || f.type === 'resync');
  // The late publish, then a new event: each once, live.
  await o.commit([6]);
  await o.append([4, 5, 6]);
  await resuming.next((f) => f.seq === 6);
  await live.next((f) => f.seq === 6);
  t.false(resuming.frames.some((f) => f.type === 'resync'), 'no resync');
  t.deepEqual(seqs(resuming.frames, a.id), [2, 3, 4, 5, 6]);
  t.deepEqual(seqs(live.frames, a.id), [6]);
  live.close();
  resuming.close();
});

test('a viewer live before the feed read the auction at all still gets events trimmed before that first read, from the outbox', async (t) => {
  const { a, o, c } = await subscribedToNewAuction(system());
  // Before the feed has read anything of it: 2..6 committed, the stream (past its MAXLEN) holding only 6.
  await o.commit([2, 3, 4, 5, 6]);
  await o.append([6]);
  await c.next((f) => f.seq === 6 && f.type !== 'subscribed');
  t.deepEqual(seqs(c.frames, a.id), [2, 3, 4, 5, 6]);
  c.close();
});

test('events a live subscriber cannot be sent (gone from the stream and not in the outbox) end in resync, not a silent gap; subscribing again works', async (t) => {
  const { a, o, c } = await subscribedToNewAuction(system());
  await o.commit([2]);
  await o.append([2]);
  await c.next((f) => f.seq === 2 && f.type !== 'subscribed');
  // 3..5 are nowhere this instance can read them (here: never stored); 6 comes.
  await o.append([6]);
  await c.next((f) => f.type === 'resync');
  await o.commit([7]);
  await o.append([7]);
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(seqs(c.frames, a.id), [2], 'nothing past the gap');
  c.send({ type: 'subscribe', auctionId: a.id });
  t.is((await c.next((f) => f.type === 'subscribed' && f.seq === 7)).seq, 7, 'no longer subscribed: may subscribe again');
  c.close();
});

test('an auction id in upper case subscribes to the same auction, as on the REST side', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await liveAuction(sys, seller);
  const c = await connectWs(sys.broadcaster!.url);
  c.send({ type: 'subscribe', auctionId: a.id.toUpperCase() });
  const sub = await c.next((f) => f.type === 'subscribed' || f.type === 'error');
  t.is(sub.type, 'subscribed');
  t.is(sub.auctionId, a.id);
  c.close();
});
