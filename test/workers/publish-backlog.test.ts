/**
 * The sweeper's publishing of what was committed but not published
 * (publishBacklog): the auctions behind take turns, so one deep backlog (a stream
 * lost with thousands of events) does not hold the others back, and what small
 * backlogs leave of a sweep goes to the deep ones.
 */
import test from 'ava';
import { createDb, type Knex } from '../../db/client.js';
import { publishBacklog } from '../../lib/publisher.js';
import { createRedis } from '../../lib/redis.js';
import type { Redis } from '../../lib/redis.js';
import { auctionStream } from '../../queues/streams.js';
import { createTestDatabase } from '../helpers/db.js';
import { testConfig, uniqueId } from '../helpers/config.js';
import { deleteKeys } from '../helpers/redis.js';
import { insertLiveAuctions } from '../helpers/auctions.js';

const config = testConfig({ REDIS_PREFIX: uniqueId('backlog') });
let db: Knex;
let redis: Redis;
let drop: () => Promise<void>;
let seller: string;

test.before(async () => {
  const made = await createTestDatabase();
  drop = made.drop;
  db = createDb(config, { database: made.name, poolMax: 4 });
  redis = createRedis(config);
  const [s] = await db('users').insert({ email: 's@pb', name: 'S', role: 'seller', password_hash: 'x' }).returning('id');
  seller = s.id;
});

test.after.always(async () => {
  redis?.disconnect();
  await deleteKeys(config, config.redis.prefix);
  await db?.destroy();
  await drop?.();
});

/** `n` events committed `secondsAgo` ago and never published. */
async function unpublished(auctionId: string, n: number, secondsAgo = 60): Promise<void> {
  await db('auction_events').insert(
    Array.from({ length: n }, (_, i) => ({
      auction_id: auctionId,
      seq: i + 1,
      type: 'bid.placed',
      payload: { type: 'bid.placed', auctionId, seq: i + 1 },
      created_at: db.raw('now() - make_interval(secs => ?)', [secondsAgo]),
    })),
  );
  await db('auctions').where({ id: auctionId }).update({ seq: n });
}

const published = async (id: string) => Number((await db('auctions').where({ id }).first('published_seq')).published_seq);

test.serial('one deep backlog does not take a whole sweep from the other auctions behind', async (t) => {
  // The deep one sorts first, as the sweep orders auctions.
  const [deep, small] = (await insertLiveAuctions(db, seller, 2)).sort() as [string, string];
  await unpublished(deep, 50);
  await unpublished(small, 3);
  const first = await publishBacklog(db, redis, config, 1_000, 10);
  t.is(await published(small), 3, 'the small backlog is sent in the first sweep');
  t.true((await published(deep)) >= 5, 'the deep one gets its share');
  t.is(first.auctionEvents, 3 + (await published(deep)));
  t.deepEqual(
    (await redis.xrange(auctionStream(config.redis.prefix, small), '-', '+')).map(([id]) => id),
    ['1-0', '2-0', '3-0'],
  );

  // Later sweeps finish the deep one, in order.
  for (let i = 0; i < 20 && (await published(deep)) < 50; i++) await publishBacklog(db, redis, config, 1_000, 10);
  t.is(await published(deep), 50);
  const ids = (await redis.xrange(auctionStream(config.redis.prefix, deep), '-', '+')).map(([id]) => Number(id.split('-')[0]));
  t.deepEqual(ids, Array.from({ length: 50 }, (_, i) => i + 1));
});

test.serial('what small backlogs leave of a sweep goes to a deep one', async (t) => {
  const [deep, ...small] = (await insertLiveAuctions(db, seller, 6)).sort() as [string, ...string[]];
  await unpublished(deep, 50);
  for (const id of small) await unpublished(id, 1);
  const sweep = await publishBacklog(db, redis, config, 1_000, 10);
  t.is(sweep.auctionEvents, 10, 'the whole budget is used');
  for (const id of small) t.is(await published(id), 1);
  t.is(await published(deep), 5);
});

test.serial('a sweep publishes for the 50 auctions that have waited longest', async (t) => {
  const ids = await insertLiveAuctions(db, seller, 60);
  // The i-th has waited 100 + i seconds.
  for (const [i, id] of ids.entries()) await unpublished(id, 2, 100 + i);
  const sweep = await publishBacklog(db, redis, config, 1_000, 1_000);
  t.is(sweep.auctionEvents, 100);
  const marks = await Promise.all(ids.map(published));
  t.deepEqual(marks.slice(10), Array(50).fill(2), 'the 50 waiting longest');
  t.deepEqual(marks.slice(0, 10), Array(10).fill(0), 'the others wait for the next sweep');
  await publishBacklog(db, redis, config, 1_000, 1_000);
  t.deepEqual(await Promise.all(ids.slice(0, 10).map(published)), Array(10).fill(2));
});
