/**
 * The sweeper's publishing of what was committed but not published
 * (publishBacklog): the auctions behind take turns, so one deep backlog (a stream
 * lost with thousands of events) does not hold the others back, and what small
 * backlogs leave of a sweep goes to the deep ones. Private event batches go
 * oldest first, up to the sweep's budget of events, each to the user-events
 * stream in order.
 */
import test from 'ava';
import { createDb, type Knex } from '../../db/client.js';
import { publishBacklog } from '../../lib/publisher.js';
import { createRedis } from '../../lib/redis.js';
import type { Redis } from '../../lib/redis.js';
import { auctionStream, userEventsStream } from '../../queues/streams.js';
import { createTestDatabase } from '../helpers/db.js';
import { testConfig, uniqueId } from '../helpers/config.js';
import { deleteKeys } from '../helpers/redis.js';
import { insertLiveAuctions } from '../helpers/auctions.js';
import { insertUserEventBatch } from '../../db/operations/auctions.js';

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

/** A batch of `n` private events (`bid.ack`, numbered) for `users` in turn, committed `secondsAgo` ago and never published. */
async function unpublishedBatch(users: string[], n: number, from: number, secondsAgo = 60): Promise<string> {
  const events = Array.from({ length: n }, (_, i) => ({ userId: users[i % users.length], event: { type: 'bid.ack', n: from + i } }));
  const [row] = await db('user_event_batches')
    .insert({ events: JSON.stringify(events), size: n, created_at: db.raw('now() - make_interval(secs => ?)', [secondsAgo]) })
    .returning('id');
  return String(row.id);
}

/** The private events in the user-events stream after entry `after`, as [userId, n] in stream order. */
async function streamed(after: string): Promise<[string, number][]> {
  const out: [string, number][] = [];
  for (const [, fields] of await redis.xrange(userEventsStream(config.redis.prefix), `(${after}`, '+')) {
    let user = '';
    for (let i = 0; i < fields.length; i += 2) {
      if (fields[i] === 'userId') user = fields[i + 1]!;
      if (fields[i] === 'event') out.push([user, (JSON.parse(fields[i + 1]!) as { n: number }).n]);
    }
  }
  return out;
}

test.serial('private event batches go oldest first, in order, up to the sweep budget of events (at least one batch)', async (t) => {
  const users = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
  const stream = userEventsStream(config.redis.prefix);
  const start = (await redis.xadd(stream, '*', 'mark', 'start'))!;
  // 1,200 events: more than one stream entry holds (100), and more than the budget.
  const big = await unpublishedBatch(users, 1_200, 0, 90);
  const small = await unpublishedBatch(users, 3, 1_200, 80);
  const young = await unpublishedBatch(users, 2, 1_203, 0);
  const first = await publishBacklog(db, redis, config, 1_000, 1_000);
  t.is(first.userEvents, 1_200, 'the first batch goes whole, though larger than the budget; the next waits');
  const isPublished = async (id: string) => Boolean((await db('user_event_batches').where({ id }).first()).published_at);
  t.deepEqual(await Promise.all([big, small, young].map(isPublished)), [true, false, false]);
  const entries = await redis.xrange(stream, `(${start}`, '+');
  t.deepEqual(entries.map(([, f]) => (f.length - 2) / 4), Array(12).fill(100), "split into entries of at most 100");
  t.true(entries.every(([, f]) => f[0] === 'batch' && f[1] === big));
  const second = await publishBacklog(db, redis, config, 1_000, 1_000);
  t.is(second.userEvents, 3, 'the young batch is left to the drain that made it');
  t.deepEqual(await Promise.all([big, small, young].map(isPublished)), [true, true, false]);
  t.deepEqual(
    await streamed(start),
    Array.from({ length: 1_203 }, (_, i) => [users[i % 2]!, i] as [string, number]),
    'every event once, in order, to its user',
  );
});

test.serial('a batch committed by a transaction that began long ago is young: its committer publishes it, not the sweep', async (t) => {
  const users = ['00000000-0000-4000-8000-000000000003'];
  const id = await db.transaction(async (trx) => {
    // The transaction waited (for locks, say) longer than the sweep's grace before its insert.
    // (Grace 2 s, so that a stall of this process between the commit and the
    // sweep, on a loaded machine, does not make the batch old: it was 300 ms.)
    await trx.raw('select pg_sleep(2.2)');
    return insertUserEventBatch(trx, [{ userId: users[0]!, frame: { type: 'bid.outbid', auctionId: '00000000-0000-4000-8000-0000000000aa', currentPrice: 1 } }]);
  });
  await publishBacklog(db, redis, config, 2_000, 1_000);
  t.falsy((await db('user_event_batches').where({ id }).first()).published_at, 'left to its committer within the grace period');
  await new Promise((r) => setTimeout(r, 2_100));
  await publishBacklog(db, redis, config, 2_000, 1_000);
  t.truthy((await db('user_event_batches').where({ id }).first()).published_at, 'the sweep takes it once it is older');
});

test.serial('auctions behind in publishing are found whatever their status: live, scheduled (chat), ended, cancelled', async (t) => {
  const ids = await insertLiveAuctions(db, seller, 4);
  const statuses = ['live', 'scheduled', 'ended', 'cancelled'] as const;
  for (const [i, id] of ids.entries()) {
    await unpublished(id, 2);
    if (statuses[i] !== 'live') await db('auctions').where({ id }).update({ status: statuses[i] });
  }
  await publishBacklog(db, redis, config, 1_000, 1_000);
  for (const [i, id] of ids.entries()) {
    t.is(await published(id), 2, statuses[i]);
    t.deepEqual(
      (await redis.xrange(auctionStream(config.redis.prefix, id), '-', '+')).map(([entry]) => Number(entry.split('-')[0])),
      [1, 2],
      statuses[i],
    );
  }
});

test.serial("a round's updates of a live auction are HOT: no index covers a column rounds and marks change", async (t) => {
  // Without this, each update writes a new entry in each of auctions' indexes
  // (migration 20261201000008): a new index on such a column would bring that back.
  const [id] = (await insertLiveAuctions(db, seller, 1)) as [string];
  // A round writes ends_at from milliseconds (it only moves on a soft close): as after a first round.
  await db('auctions').where({ id }).update({ ends_at: db.raw("date_trunc('milliseconds', ends_at)") });
  const { ends_at: endsAt } = await db('auctions').where({ id }).first('ends_at');
  // HOT also needs room on the row's page: the dead versions of earlier rounds are
  // pruned only once no snapshot in the database still sees them, which a busy
  // machine may delay past a round. An index on a column the round's update (or
  // the mark's) changes makes that update non-HOT in every round; so of each kind,
  // most, not all, must be HOT.
  const hot = { round: 0, mark: 0 };
  for (let seq = 1; seq <= 5; seq++) {
    // What writeRound's auction update and then markPublished change, each round in
    // a transaction of its own as in the worker (earlier versions become prunable).
    await db.transaction(async (trx) => {
      // The backend's counts not yet reported include earlier transactions': take the difference.
      const counts = async () =>
        (await trx.raw("select pg_stat_get_xact_tuples_hot_updated('auctions'::regclass)::int as hot, pg_stat_get_xact_tuples_updated('auctions'::regclass)::int as all")).rows[0] as { hot: number; all: number };
      const before = await counts();
      await trx('auctions')
        .where({ id })
        .update({ seq, current_price: 1_000 + seq, leader_order: seq, bid_count: seq, ends_at: endsAt, updated_at: trx.raw('clock_timestamp()'), published_seq: seq - 1 });
      const between = await counts();
      await trx('auctions').where({ id }).update({ published_seq: seq });
      const after = await counts();
      t.is(after.all - before.all, 2, `round ${seq}`);
      hot.round += between.hot - before.hot;
      hot.mark += after.hot - between.hot;
    });
  }
  t.true(hot.round >= 3 && hot.mark >= 3, `HOT of 5: ${hot.round} round updates, ${hot.mark} marks`);
});
