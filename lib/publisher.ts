/**
 * The outbox's second half: events committed in Postgres are appended to Redis
 * streams, then marked published. A process that dies in between leaves them
 * unpublished; the sweeper publishes them again. Auction events go to the
 * auction's stream with id `<seq>-0`, which Redis accepts once only, so a repeat
 * publish cannot duplicate them; private events may repeat (clients dedupe by id).
 */
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { AUCTION_STREAM_MAXLEN, USER_EVENTS_MAXLEN, auctionStream, userEventsStream } from '../queues/streams.js';

export interface Published {
  auctionEvents: number;
  userEvents: number;
}

const ALREADY_THERE = /equal or smaller/;

/** Appends events (any order of auctions; each auction's in seq order) and marks them. */
export async function publishEvents(
  db: Knex,
  redis: Redis,
  prefix: string,
  auctionFrames: { auctionId: string; seq: number; frame: unknown }[],
  userFrames: { id: string; userId: string; frame: unknown }[],
): Promise<Published> {
  if (auctionFrames.length === 0 && userFrames.length === 0) return { auctionEvents: 0, userEvents: 0 };
  const pipe = redis.pipeline();
  for (const e of auctionFrames) {
    pipe.xadd(auctionStream(prefix, e.auctionId), 'MAXLEN', '~', String(AUCTION_STREAM_MAXLEN), `${e.seq}-0`, 'event', JSON.stringify(e.frame));
  }
  for (const e of userFrames) {
    pipe.xadd(userEventsStream(prefix), 'MAXLEN', '~', String(USER_EVENTS_MAXLEN), '*', 'userId', e.userId, 'id', e.id, 'event', JSON.stringify(e.frame));
  }
  const results = (await pipe.exec()) ?? [];
  for (const [err] of results) {
    if (err && !ALREADY_THERE.test(err.message)) throw err;
  }
  const highest = new Map<string, number>();
  for (const e of auctionFrames) highest.set(e.auctionId, Math.max(highest.get(e.auctionId) ?? 0, e.seq));
  const ids = [...highest.keys()];
  await db.raw(
    `with a as (
       update auctions as x set published_seq = greatest(x.published_seq, v.seq)
       from unnest(?::uuid[], ?::bigint[]) as v(id, seq) where x.id = v.id
     )
     update user_events set published_at = clock_timestamp() where id = any(?::bigint[]) and published_at is null`,
    [ids, ids.map((id) => highest.get(id)!), userFrames.map((e) => e.id)] as unknown as Knex.RawBinding[],
  );
  return { auctionEvents: auctionFrames.length, userEvents: userFrames.length };
}

/**
 * Publishes what a crashed process left behind: auction events above each
 * auction's `published_seq`, and private events older than `graceMs`.
 */
export async function publishBacklog(db: Knex, redis: Redis, prefix: string, graceMs = 2_000, limit = 1_000): Promise<Published> {
  const { rows: auctionRows } = await db.raw(
    `select e.auction_id, e.seq, e.payload from auctions a
     join auction_events e on e.auction_id = a.id and e.seq > a.published_seq
     where a.published_seq < a.seq and a.updated_at < clock_timestamp() - make_interval(secs => ?)
     order by e.auction_id, e.seq limit ?`,
    [graceMs / 1000, limit],
  );
  const { rows: userRows } = await db.raw(
    `select id, user_id, payload from user_events
     where published_at is null and created_at < clock_timestamp() - make_interval(secs => ?)
     order by id limit ?`,
    [graceMs / 1000, limit],
  );
  return publishEvents(
    db,
    redis,
    prefix,
    auctionRows.map((r: { auction_id: string; seq: string; payload: unknown }) => ({ auctionId: r.auction_id, seq: Number(r.seq), frame: r.payload })),
    userRows.map((r: { id: string; user_id: string; payload: unknown }) => ({ id: String(r.id), userId: r.user_id, frame: r.payload })),
  );
}
