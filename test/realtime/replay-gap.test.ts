/**
 * A replay that the live feed overtakes: the feed already tracks the auction
 * past the replay's start (another viewer), and delivers a new event while the
 * replay's read is in flight. The socket must get every event in order, with
 * no gap, before it joins the live topic.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Knex } from 'knex';
import { Subscriptions, type Subscriber } from '../../edge/ws/subscriptions.js';
import type { AuctionFeed } from '../../edge/ws/auction-feed.js';
import { auctionStream } from '../../queues/streams.js';

const frame = (auctionId: string, seq: number) => JSON.stringify({ type: 'bid.placed', auctionId, seq });

test('a live event that arrives while a replay reads is sent after the events before it, never ahead of them', async (t) => {
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  const prefix = `test-gap-${randomUUID()}`;
  const auctionId = randomUUID();
  const stream = auctionStream(prefix, auctionId);
  try {
    for (let seq = 1; seq <= 5; seq++) await redis.xadd(stream, `${seq}-0`, 'event', frame(auctionId, seq));
    // The feed already delivered up to 5 to other viewers.
    let feedLast = 5;
    const feed = { last: () => feedLast, add: () => undefined, remove: () => undefined } as unknown as AuctionFeed;
    const db = (() => ({ where: () => ({ first: async () => ({ seq: 5 }) }) })) as unknown as Knex;
    const sent: number[] = [];
    let joined = false;
    const sub: Subscriber = {
      send: (text) => {
        const f = JSON.parse(text) as { type: string; seq?: number };
        if (f.type === 'bid.placed') sent.push(f.seq!);
      },
      subscribe: () => (joined = true),
      unsubscribe: () => undefined,
      isOpen: () => true,
    };
    let subs: Subscriptions;
    // The replay's first read answers only once event 6 has been appended and
    // delivered live: the read in flight does not have it.
    let reads = 0;
    const racing = new Proxy(redis, {
      get(target, prop, receiver) {
        if (prop !== 'xrange') return Reflect.get(target, prop, receiver);
        return async (...args: unknown[]) => {
          const result = await (target.xrange as (...a: unknown[]) => Promise<unknown>)(...args);
          if (reads++ === 0) {
            await redis.xadd(stream, '6-0', 'event', frame(auctionId, 6));
            feedLast = 6;
            subs.deliver({ auctionId, seq: 6, json: frame(auctionId, 6) });
          }
          return result;
        };
      },
    });
    subs = new Subscriptions({ publish: () => true } as never, db, racing, prefix, feed, () => 0);
    t.is(await subs.subscribe(sub, auctionId, 1), 'subscribed');
    for (let i = 0; i < 50 && !joined; i++) await new Promise((r) => setTimeout(r, 20));
    t.deepEqual(sent, [2, 3, 4, 5, 6], 'in order, no gap, no duplicate');
    t.true(joined, 'then joins the live topic');
  } finally {
    await redis.del(stream);
    redis.disconnect();
  }
});
