/**
 * Replays that the live feed overtakes, driven by hand against a real Redis
 * stream: the feed already tracks the auction past the replay's start (another
 * viewer), and delivers new events while the replay's read is in flight.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { Subscriptions, type Subscriber } from '../../edge/ws/subscriptions.js';
import type { AuctionFeed } from '../../edge/ws/auction-feed.js';
import { auctionStream } from '../../queues/streams.js';

const frame = (auctionId: string, seq: number) => JSON.stringify({ type: 'bid.placed', auctionId, seq });

/**
 * A stream holding events 1..5, a feed that has delivered up to 5, and a socket
 * that subscribes with sinceSeq 1. `duringRead` runs when the replay's first
 * read has its answer, before the replay sees it.
 */
async function overtaken(duringRead: (ctx: { append: (seq: number) => Promise<void>; deliver: (seq: number) => void; subs: Subscriptions; sub: Subscriber; redis: Redis; stream: string; auctionId: string }) => Promise<void>) {
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  const prefix = `test-gap-${randomUUID()}`;
  const auctionId = randomUUID();
  const stream = auctionStream(prefix, auctionId);
  for (let seq = 1; seq <= 5; seq++) await redis.xadd(stream, `${seq}-0`, 'event', frame(auctionId, seq));
  let feedLast = 5;
  const feed = { last: () => feedLast, add: () => undefined, remove: () => undefined, joined: () => undefined } as unknown as AuctionFeed;
  const db = (() => ({ where: () => ({ first: async () => ({ seq: 5 }) }) })) as unknown as Knex;
  const got: (number | string)[] = [];
  const state = { joined: false, resyncs: [] as string[] };
  const sub: Subscriber = {
    send: (text) => {
      const f = JSON.parse(text) as { type: string; seq?: number };
      if (f.type === 'bid.placed') got.push(f.seq!);
      else if (f.type === 'resync') got.push('resync');
    },
    subscribe: () => (state.joined = true),
    unsubscribe: () => undefined,
    isOpen: () => true,
  };
  let reads = 0;
  let subs: Subscriptions | undefined;
  const racing = new Proxy(redis, {
    get(target, prop, receiver) {
      if (prop !== 'xrange') return Reflect.get(target, prop, receiver);
      return async (...args: unknown[]) => {
        const result = await (target.xrange as (...a: unknown[]) => Promise<unknown>)(...args);
        if (reads++ === 0) {
          await duringRead({
            append: async (seq) => void (await redis.xadd(stream, `${seq}-0`, 'event', frame(auctionId, seq))),
            deliver: (seq) => {
              feedLast = seq;
              subs!.deliver({ auctionId, seq, json: frame(auctionId, seq) });
            },
            subs: subs!,
            sub,
            redis,
            stream,
            auctionId,
          });
        }
        return result;
      };
    },
  });
  subs = new Subscriptions({ publish: () => true } as never, db, racing, prefix, feed, () => 0);
  subs.onResync = (_s, id) => state.resyncs.push(id);
  const outcome = await subs.subscribe(sub, auctionId, 1);
  for (let i = 0; i < 50 && !state.joined && state.resyncs.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  await redis.del(stream);
  redis.disconnect();
  return { outcome, got, ...state, auctionId };
}

test('a live event that arrives while a replay reads is sent after the events before it, never ahead of them', async (t) => {
  const r = await overtaken(async ({ append, deliver }) => {
    await append(6);
    deliver(6);
  });
  t.is(r.outcome, 'subscribed');
  t.deepEqual(r.got, [2, 3, 4, 5, 6], 'in order, no gap, no duplicate');
  t.true(r.joined, 'then joins the live topic');
});

test('when the events in between are gone by then, the socket gets resync, and its owner is told so the client can subscribe again', async (t) => {
  const r = await overtaken(async ({ append, deliver, redis, stream }) => {
    await append(6);
    await append(7);
    deliver(6);
    deliver(7);
    await redis.xtrim(stream, 'MAXLEN', 1);
  });
  t.is(r.outcome, 'subscribed', 'the replay itself had everything');
  t.deepEqual(r.got, [2, 3, 4, 5, 'resync'], 'nothing past the gap, nothing after resync');
  t.false(r.joined);
  t.deepEqual(r.resyncs, [r.auctionId]);
});

test('a socket that leaves while its replay reads is sent nothing more and does not join', async (t) => {
  const r = await overtaken(async ({ subs, sub, auctionId }) => {
    subs.unsubscribe(sub, auctionId);
  });
  t.is(r.outcome, 'subscribed', 'nothing for its owner to undo');
  t.deepEqual(r.got, []);
  t.false(r.joined);
  t.deepEqual(r.resyncs, []);
});
