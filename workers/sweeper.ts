/**
 * The safety net that makes Postgres, not Redis, the source of truth. Every
 * second (one worker process at a time, by a Redis lease) it:
 * - re-enqueues drains for partitions whose bids have waited too long (the job was
 *   lost: Redis wiped, or the edge could not enqueue);
 * - re-creates every future timer's delayed job when Redis has lost them (a
 *   marker key tells), and re-arms overdue timers (a close past its end, a start
 *   past its time);
 * - publishes outbox events a crashed process left unpublished;
 * - re-applies the one-consumer-per-partition setting (a wiped Redis forgets it);
 * - once a minute, deletes Idempotency-Key records older than a day.
 * Everything it does is idempotent, so overlapping sweeps are harmless.
 */
import { BID_PARTITIONS, queuePrefix } from '../queues/names.js';
import type { WorkerContext } from './context.js';
import { publishBacklog } from '../lib/publisher.js';
import { purgeExpiredKeys } from '../db/operations/idempotency.js';
import { within } from '../lib/within.js';

let lastPurge = 0;

export interface SweepReport {
  drains: number;
  closes: number;
  starts: number;
  /** Future timers re-created after Redis lost them. */
  rearmed: number;
  published: number;
}

const TIMERS = {
  close: { status: 'live', column: 'ends_at' },
  start: { status: 'scheduled', column: 'starts_at' },
} as const;

/** Auctions whose close (or start) time passed more than `stale` seconds ago. */
async function overdueTimers(ctx: WorkerContext, timer: keyof typeof TIMERS, stale: number) {
  const { status, column } = TIMERS[timer];
  const { rows } = await ctx.db.raw(
    `select id, floor(extract(epoch from ??) * 1000)::bigint as at from auctions
     where status = ? and ?? < clock_timestamp() - make_interval(secs => ?) limit 500`,
    [column, status, column, stale],
  );
  return (rows as { id: string; at: string }[]).map((r) => ({ id: r.id, at: Number(r.at) }));
}

/** Marks every timer armed ("done"); a wiped Redis loses it with the timers' jobs. */
function armedKey(ctx: WorkerContext): string {
  return `${queuePrefix(ctx.config.redis.prefix, 'auctions')}:timers-armed`;
}

/** How long a re-arm holds the marker without renewing it (a process that died mid-way lets it go). */
const ARMING_MS = 60_000;
// KEYS[1]: the marker. ARGV[1]: this re-arm's token; ARGV[2]: "renew", "done" or "release".
const ARMING = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == 'renew' then redis.call('PEXPIRE', KEYS[1], ${ARMING_MS})
elseif ARGV[2] == 'done' then redis.call('SET', KEYS[1], 'done')
else redis.call('DEL', KEYS[1]) end
return 1`;

/**
 * Re-creates, from Postgres, the delayed jobs of every timer still to come (a
 * scheduled start, a live auction's end) when Redis has lost them: its marker
 * is gone (Redis wiped, or a new one). Otherwise they would fire only once
 * overdue (below), seconds late: a start late by that much rejected the bids of
 * its first seconds as auction_not_live. The marker is claimed first with this
 * re-arm's token and an expiry it renews page by page, and set to "done" only if
 * still its own: a wipe during the re-arm takes it away (the next sweep re-arms),
 * and a process that dies mid-way lets it lapse (a later sweep re-arms). Each job
 * has its timer's id: one already there is not added twice. Returns how many were
 * armed.
 */
export async function rearmTimers(ctx: WorkerContext, pageSize = 1_000): Promise<number> {
  const key = armedKey(ctx);
  const token = `arming:${process.pid}:${Date.now()}:${Math.random().toString(36).slice(2)}`;
  if ((await ctx.redis.set(key, token, 'PX', ARMING_MS, 'NX')) === null) return 0;
  try {
    let armed = 0;
    for (const [timer, status, column] of [
      ['auction.start', 'scheduled', 'starts_at'],
      ['auction.close', 'live', 'ends_at'],
    ] as const) {
      // Page by page along the column's time, each status on its own.
      let after = 0;
      let afterId = '00000000-0000-0000-0000-000000000000';
      for (;;) {
        const { rows } = await ctx.db.raw(
          `select id, floor(extract(epoch from ??) * 1000)::bigint as at from auctions
           where status = ? and ?? > clock_timestamp() and (floor(extract(epoch from ??) * 1000)::bigint, id) > (?, ?)
           order by 2, id limit ?`,
          [column, status, column, column, after, afterId, pageSize],
        );
        const page = (rows as { id: string; at: string }[]).map((r) => ({ id: r.id, at: Number(r.at) }));
        await ctx.producer.enqueueMany(
          timer,
          page.map((r) => ({ data: { auctionId: r.id, at: r.at }, delayMs: Math.max(0, r.at - Date.now()) })),
        );
        armed += page.length;
        if (page.length < pageSize) break;
        after = page[page.length - 1]!.at;
        afterId = page[page.length - 1]!.id;
        if ((await ctx.redis.eval(ARMING, 1, key, token, 'renew')) !== 1) return armed; // wiped meanwhile: the next sweep starts over
      }
    }
    await ctx.redis.eval(ARMING, 1, key, token, 'done');
    return armed;
  } catch (err) {
    await ctx.redis.eval(ARMING, 1, key, token, 'release').catch(() => undefined);
    throw err;
  }
}

export async function sweepOnce(ctx: WorkerContext, staleMs = 2_000): Promise<SweepReport> {
  const stale = staleMs / 1000;
  // First: a wiped Redis forgot it, and a later step failing must not hold it back.
  await ctx.producer.limitBidPartitions();
  // Per partition, the first queued bid (index order) that has waited too long:
  // one drain per partition is all a backlog needs (a drain takes its whole
  // partition), and a probe per partition costs the same whatever the backlog.
  // (Grouping every queued bid by auction, as this did before, read the whole
  // backlog each second: ~600 ms a sweep with 1.5 million bids queued.)
  const { rows: stuck } = await ctx.db.raw(
    `select s.auction_id, s.receipt_no as up_to
     from unnest(?::smallint[]) as p(partition)
     cross join lateral (
       select auction_id, receipt_no from bids
       where partition = p.partition and status = 'queued' and received_at < clock_timestamp() - make_interval(secs => ?)
       order by partition, auction_id, receipt_no limit 1
     ) s`,
    [Array.from({ length: BID_PARTITIONS }, (_, i) => i), stale],
  );
  for (const r of stuck as { auction_id: string; up_to: string }[]) {
    await ctx.producer.enqueue('bid.drain', { auctionId: r.auction_id, upTo: Number(r.up_to), retry: Date.now() });
  }
  // Timers that should have fired: closes past their end, starts past their time.
  const overdue = await overdueTimers(ctx, 'close', stale);
  for (const r of overdue) await ctx.producer.enqueue('auction.close', { auctionId: r.id, at: r.at, retry: Date.now() });
  const due = await overdueTimers(ctx, 'start', stale);
  for (const r of due) await ctx.producer.enqueue('auction.start', { auctionId: r.id, at: r.at, retry: Date.now() });
  // After the drains and the overdue timers: after a wipe, those are what is late.
  const rearmed = await rearmTimers(ctx);
  const published = await publishBacklog(ctx.db, ctx.redis, ctx.config, staleMs);
  // Idempotency-Key records past their day, once a minute (up to 50,000 a minute).
  if (Date.now() - lastPurge >= 60_000) {
    lastPurge = Date.now();
    for (let i = 0; i < 10 && (await purgeExpiredKeys(ctx.db, 5_000)) === 5_000; i++);
  }
  return { drains: stuck.length, closes: overdue.length, starts: due.length, rearmed, published: published.auctionEvents + published.userEvents };
}

// Takes the lease if it is free or already ours, and extends it: one atomic step.
const TAKE_LEASE = `
local owner = redis.call('GET', KEYS[1])
if owner == false or owner == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0`;

/**
 * Runs a sweep every `intervalMs` while this process holds the sweeper lease.
 * A tick is skipped while the previous one still runs (a hung Redis must not
 * pile them up).
 */
export function startSweeper(ctx: WorkerContext, intervalMs = 1_000): { stop: (redisAnswering?: boolean) => Promise<void> } {
  const lease = `${ctx.config.redis.prefix}:lease:sweeper`;
  const owner = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  let stopped = false;
  let running: Promise<void> | null = null;
  const tick = async () => {
    try {
      const mine = (await ctx.redis.eval(TAKE_LEASE, 1, lease, owner, intervalMs * 5)) === 1;
      if (!mine) return;
      const report = await sweepOnce(ctx);
      if (report.drains || report.closes || report.starts || report.rearmed || report.published) ctx.logger.info(report, 'sweeper recovered work');
    } catch (err) {
      ctx.logger.warn({ err: (err as Error).message }, 'sweep failed');
    }
  };
  const timer = setInterval(() => {
    if (stopped || running) return;
    running = tick().finally(() => {
      running = null;
    });
  }, intervalMs);
  return {
    /** `redisAnswering` false: Redis is gone, and nothing is waited for (a sweep in flight waits on it; the lease lapses by itself). */
    stop: async (redisAnswering = true) => {
      stopped = true;
      clearInterval(timer);
      if (!redisAnswering) return;
      // A sweep waiting on a Redis or Postgres that does not answer must not keep
      // the workers from closing: at most 5 s (its steps are all safe to cut).
      await Promise.race([running, new Promise((r) => setTimeout(r, 5_000).unref())]);
      // Handing the lease back is a courtesy (it lapses in 5 s): with Redis gone it
      // would wait in the connection's queue for good.
      await within(1_000, () => ctx.redis.eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, lease, owner)).catch(() => undefined);
    },
  };
}
