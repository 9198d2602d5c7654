/**
 * The outbox's second half: events committed in Postgres are appended to Redis
 * streams, then marked published. A process that dies in between leaves them
 * unpublished; the sweeper publishes them later.
 *
 * Auction events reach an auction's stream strictly in seq order, whoever
 * publishes them (a drain, a close, the edge, the sweeper, at the same time): one
 * Lua script appends an event only if it is the next one after the stream's last
 * entry (ids are `<seq>-0`), skips ones already there, and reports a gap when an
 * earlier event is missing. The publisher then fills the gap from the outbox in
 * Postgres and tries again. An empty stream starts at seq 1, or (a wiped Redis, or
 * a long-lived auction's first publish) with the auction's last MAXLEN events from
 * the outbox; subscribers that need older ones resync.
 *
 * Private events are stored in batches (one per round) and go to the user-events
 * stream at least once: one entry per batch (or per USER_EVENTS_PER_ENTRY of its
 * events), its fields `batch`, then `userId`, `event` pairs in order.
 */
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { frameJson } from '../auction/frames.js';
import { runPrepared } from '../db/client.js';
import { auctionStream, userEventsEntry } from '../queues/streams.js';
import type { Config } from './env.js';

export interface Published {
  auctionEvents: number;
  userEvents: number;
}

// KEYS[1]: the stream. ARGV[1]: MAXLEN; ARGV[2]: the seq an empty stream may start
// at besides 1 (0: none); then seq, payload pairs in ascending seq. Returns
// {appended, last seq in the stream}, or {-1, last} at a gap ({-1, 0}: an empty
// stream offered a first seq above 1).
const APPEND_IN_ORDER = `
local last = 0
local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local empty = #tail == 0
if not empty then last = tonumber(string.match(tail[1][1], '^(%d+)')) end
local floor = tonumber(ARGV[2])
local added = 0
for i = 3, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    if empty then
      if seq ~= 1 and seq ~= floor then return {-1, 0} end
    elseif seq ~= last + 1 then return {-1, last} end
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 'event', ARGV[i + 1])
    last = seq
    empty = false
    added = added + 1
  end
end
return {added, last}`;

type Frame = { seq: number; frame: unknown };
type AppendReply = [number, number];
type WithAppend = { blytzAppendInOrder(key: string, ...args: (string | number)[]): Promise<AppendReply> };

/** The script as a command of `redis` (EVALSHA, loaded once per connection; also on its pipelines). */
function appender(redis: Redis): Redis & WithAppend {
  if (!('blytzAppendInOrder' in redis)) redis.defineCommand('blytzAppendInOrder', { numberOfKeys: 1, lua: APPEND_IN_ORDER });
  return redis as Redis & WithAppend;
}

function appendArgs(maxlen: number, frames: Frame[], floor = 0): (string | number)[] {
  const args: (string | number)[] = [maxlen, floor];
  for (const f of frames) args.push(f.seq, frameJson(f.frame));
  return args;
}

/**
 * Fills the gap below `frames` from the outbox and appends again. Returns the last
 * seq in the stream. An empty stream (events published out of order on a new
 * stream, or a wiped Redis) gets the auction's last MAXLEN events back.
 */
async function fillGap(db: Knex, redis: Redis, key: string, maxlen: number, auctionId: string, last: number, upTo: number): Promise<{ added: number; last: number }> {
  const q = db('auction_events').where({ auction_id: auctionId }).where('seq', '>', last).where('seq', '<=', upTo).orderBy('seq', 'desc');
  if (last === 0) q.limit(maxlen);
  const missing = await q.select('seq', 'payload');
  const frames = missing.reverse().map((m: { seq: string; payload: unknown }) => ({ seq: Number(m.seq), frame: m.payload }));
  const [added, newLast] = await appender(redis).blytzAppendInOrder(key, ...appendArgs(maxlen, frames, frames[0]?.seq ?? 0));
  if (added === -1) throw new Error(`auction ${auctionId}: outbox gap after seq ${newLast}`);
  return { added, last: newLast };
}

/** What a publish leaves to record: each auction's last seq in its stream, and the private events sent. */
export interface Marks {
  auctions: Map<string, number>;
  userBatchIds: string[];
}

/** A batch of private events as stored (see the user_event_batches migration). */
export interface UserBatch {
  id: string;
  events: { userId: string; frame: unknown }[];
}

/** Private events per user-events stream entry at most (a round's batch can hold thousands). */
const USER_EVENTS_PER_ENTRY = 100;

/**
 * Appends events to Redis; returns what to mark published, and the auctions that
 * failed (their events stay unmarked for the sweeper). All streams' appends
 * and the private events go in one pipeline (one round trip however many
 * auctions a drain round touched); a stream with a gap is then filled from the
 * outbox.
 */
export async function appendEvents(
  db: Knex,
  redis: Redis,
  config: Config,
  auctionFrames: { auctionId: string; seq: number; frame: unknown }[],
  userBatches: UserBatch[],
): Promise<{ published: Published; marks: Marks; failures: Error[] }> {
  const marks: Marks = { auctions: new Map(), userBatchIds: userBatches.map((b) => b.id) };
  if (auctionFrames.length === 0 && userBatches.length === 0) return { published: { auctionEvents: 0, userEvents: 0 }, marks, failures: [] };
  const byAuction = new Map<string, Frame[]>();
  for (const e of auctionFrames) {
    const list = byAuction.get(e.auctionId) ?? [];
    list.push({ seq: e.seq, frame: e.frame });
    byAuction.set(e.auctionId, list);
  }
  const maxlen = config.auctionStreamMaxlen;
  const pipe = appender(redis).pipeline() as ReturnType<Redis['pipeline']> & WithAppend;
  const auctions = [...byAuction];
  for (const [auctionId, frames] of auctions) {
    frames.sort((a, b) => a.seq - b.seq);
    pipe.blytzAppendInOrder(auctionStream(config.redis.prefix, auctionId), ...appendArgs(maxlen, frames));
  }
  let userEvents = 0;
  for (const b of userBatches) {
    for (let i = 0; i < b.events.length; i += USER_EVENTS_PER_ENTRY) {
      const chunk = b.events.slice(i, i + USER_EVENTS_PER_ENTRY).map((e) => ({ userId: e.userId, json: frameJson(e.frame) }));
      const { key, args } = userEventsEntry(config.redis.prefix, chunk, b.id);
      pipe.xadd(key, ...args);
    }
    userEvents += b.events.length;
  }
  const replies = (await pipe.exec()) ?? [];
  for (const [err] of replies) if (err) throw err;
  let appended = 0;
  // One auction whose gap cannot be filled must not keep the others (and the
  // private events) from being marked: its failure is reported, not thrown.
  const failures: Error[] = [];
  await Promise.all(
    auctions.map(async ([auctionId, frames], i) => {
      try {
        let [added, last] = replies[i]![1] as AppendReply;
        if (added === -1) {
          ({ added, last } = await fillGap(db, redis, auctionStream(config.redis.prefix, auctionId), maxlen, auctionId, last, frames[frames.length - 1]!.seq));
        }
        appended += added;
        marks.auctions.set(auctionId, last);
      } catch (err) {
        failures.push(err as Error);
      }
    }),
  );
  return { published: { auctionEvents: appended, userEvents }, marks, failures };
}

/** markPublished's statement. */
const MARK_PUBLISHED_SQL = `with l as materialized (
   select id from auctions where id = any(?::uuid[]) order by id for no key update
 ), a as (
   update auctions as x set published_seq = least(x.seq, greatest(x.published_seq, v.seq))
   from l join unnest(?::uuid[], ?::bigint[]) as v(id, seq) on v.id = l.id where x.id = l.id
 )
 update user_event_batches set published_at = clock_timestamp()
 where id = any(?::bigint[]) and published_at is null and (select count(*) from l) >= 0`;

/**
 * Records `marks`: `published_seq` (never above seq, never lowered) and the
 * private event batches' `published_at`. Locks are taken as a drain round takes them:
 * the auctions first, in id order (the CTE's sorted output, locked as it is
 * produced, and read whole by an init plan before the first private event is
 * touched), then the private events. In any other order, marking many auctions
 * while a drain locks many deadlocks (seen under the bids benchmark).
 */
export async function markPublished(db: Knex, marks: Marks): Promise<void> {
  if (marks.auctions.size === 0 && marks.userBatchIds.length === 0) return;
  const ids = [...marks.auctions.keys()].sort();
  await runPrepared('blytz_mark_published', (options) => db.raw(MARK_PUBLISHED_SQL, [ids, ids, ids.map((id) => marks.auctions.get(id)!), marks.userBatchIds] as unknown as Knex.RawBinding[]).options(options), { retry: true });
}

/** Appends events and marks them published (see appendEvents, markPublished); throws the first failure after marking the rest. */
export async function publishEvents(...args: Parameters<typeof appendEvents>): Promise<Published> {
  const { published, marks, failures } = await appendEvents(...args);
  await markPublished(args[0], marks);
  if (failures.length > 0) throw failures[0];
  return published;
}

/** Auctions a sweep publishes for, at most (see publishBacklog). */
const AUCTIONS_PER_SWEEP = 50;

/**
 * Publishes what was committed but not published: every auction's events above
 * its `published_seq` (safe while others publish: the script keeps order) and
 * private events, each older than `graceMs`. Younger ones are probably being
 * published: under load a busy auction is always a round or two behind in its
 * mark (see RoundMerger), and sending those again every sweep was wasted work.
 * An auction's older events have lower seqs, so what is sent is usually a
 * prefix of what is missing (rounds in two processes can start in one order
 * and commit in the other: a gap that leaves is filled from the outbox).
 *
 * The auctions behind are those whose first event above the mark is past the
 * grace period; a sweep takes the AUCTIONS_PER_SWEEP of them that have waited
 * longest, and those take turns: every auction's first event, then every one's
 * second, and so on until `limit`. So one deep backlog (a stream lost with
 * thousands of events) cannot hold the others back, what small backlogs leave of
 * the budget goes to the deep ones, and a sweep touches few auctions (each costs
 * an append call and a mark: spreading a sweep over a thousand auctions, one event
 * each, doubled Postgres's CPU per bid under overload). Each auction reads at most
 * four fair shares of its backlog, which bounds the rows sorted.
 */
export async function publishBacklog(db: Knex, redis: Redis, config: Config, graceMs = 2_000, limit = 1_000): Promise<Published> {
  // Per auction behind in its mark, its events above the mark (an index range each):
  // a plain join here was planned as a merge join over the whole outbox (380 ms
  // at 130,000 events, every second).
  const { rows: auctionRows } = await db.raw(
    `with p as (
       select clock_timestamp() - make_interval(secs => ?) as before, ?::int as auctions, ?::int as lim
     ), lagging as (
       select a.id, a.published_seq,
              (select e.created_at from auction_events e where e.auction_id = a.id and e.seq > a.published_seq order by e.seq limit 1) as waiting_since
       from auctions a where (a.status = 'live' and a.published_seq < a.seq) or a.unpublished_not_live
     ), behind as materialized (
       select id, published_seq, waiting_since from lagging
       where waiting_since < (select before from p)
       order by waiting_since limit (select auctions from p)
     ), reads as (select least(p.lim, 4 * ceil(p.lim::numeric / greatest(count(*), 1)))::int as n from p, behind group by p.lim)
     select b.id as auction_id, e.seq, e.payload
     from behind b
     cross join lateral (
       select seq, payload, row_number() over (order by seq) as turn
       from (
         select seq, payload from auction_events e
         where e.auction_id = b.id and e.seq > b.published_seq and e.created_at < (select before from p)
         order by seq limit (select n from reads)
       ) e
     ) e
     order by e.turn, b.waiting_since, b.id limit (select lim from p)`,
    [graceMs / 1000, AUCTIONS_PER_SWEEP, limit],
  );
  // Private event batches, oldest first, while fewer than `limit` events come
  // before them (so at least one batch, however large, and the last one taken
  // may cross the budget).
  const { rows: batchRows } = (await db.raw(
    `select id, events from (
       select id, events, sum(size) over (order by id) - size as before from (
         select id, events, size from user_event_batches
         where published_at is null and created_at < clock_timestamp() - make_interval(secs => ?)
         order by id limit ?
       ) b
     ) b where before < ? order by id`,
    [graceMs / 1000, limit, limit],
  )) as { rows: { id: string; events: { userId: string; event: unknown }[] }[] };
  return publishEvents(
    db,
    redis,
    config,
    auctionRows.map((r: { auction_id: string; seq: string; payload: unknown }) => ({ auctionId: r.auction_id, seq: Number(r.seq), frame: r.payload })),
    batchRows.map((r) => ({ id: String(r.id), events: r.events.map((e) => ({ userId: e.userId, frame: e.event })) })),
  );
}
