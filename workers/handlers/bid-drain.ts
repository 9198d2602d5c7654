/**
 * Applying bids. One transaction per auction and drain: lock the auction row,
 * read every queued bid in receipt order (committed bids are a gap-free prefix,
 * see recordBids), run them through the pure engine, and write verdicts, state,
 * proxies and the outbox (public events with their seq, private events) at once.
 * A drain that runs twice, or two drains at once, change nothing the second
 * time: the row lock serializes them and a bid leaves `queued` exactly once.
 */
import type { Knex } from 'knex';
import { applyBid, closeAuction, type AuctionState, type LifecycleEvent, type PrivateEvent, type PublicEvent } from '../../auction/engine.js';
import { privateFrame, publicFrame, type AuctionFrame } from '../../auction/frames.js';
import {
  activeBans,
  createWinnerOrder,
  dbNow,
  finishBids,
  insertEvents,
  insertUserEvents,
  loadProxies,
  lockAuction,
  lockReceipts,
  queuedBids,
  saveProxies,
  saveState,
  toState,
  userNames,
  type Verdict,
} from '../../db/operations/auctions.js';
import type { AuctionRow } from '../../db/tables.js';
import { publishEvents } from '../../lib/publisher.js';
import type { JobPayloads } from '../../queues/jobs.js';
import type { WorkerContext } from '../context.js';

/** Bids applied per transaction at most (the rest go in the next round). */
const BATCH = 2_000;

export interface Outbox {
  frames: AuctionFrame[];
  user: { userId: string; frame: { type: string; [k: string]: unknown } }[];
}

export interface DrainResult {
  applied: number;
  verdicts: Verdict[];
  receivedAt: number[];
  accepted: number;
  outbox: Outbox;
  userEventIds: string[];
  more: boolean;
}

/**
 * Applies queued bids of the locked auction `row` (inside `trx`). With `close`,
 * it also ends the auction if its end has passed. Used by drains and by close.
 */
export async function applyQueued(trx: Knex.Transaction, row: AuctionRow, close: boolean): Promise<DrainResult & { ended: boolean; state: AuctionState }> {
  const before = await loadProxies(trx, row.id);
  let state = toState(row, before);
  const bids = await queuedBids(trx, row.id, BATCH);
  const outbox: Outbox = { frames: [], user: [] };
  const verdicts: Verdict[] = [];
  let accepted = 0;
  if (bids.length > 0) {
    const banned = await activeBans(trx, row.id);
    const names = await userNames(trx, state.proxies.map((p) => p.userId));
    for (const bid of bids) {
      const r = applyBid(state, bid, { banned, names });
      state = r.state;
      verdicts.push(r.verdict);
      if (r.verdict.status === 'accepted') accepted++;
      for (const e of r.events as (PublicEvent | LifecycleEvent)[]) outbox.frames.push(publicFrame(row.id, e));
      for (const e of r.private as PrivateEvent[]) outbox.user.push(privateFrame(row.id, e));
    }
    await finishBids(trx, verdicts);
    await saveProxies(trx, row.id, before, state.proxies);
  }
  let ended = false;
  let winnerId: string | null | undefined;
  if (close && bids.length < BATCH) {
    const closed = closeAuction(state, await dbNow(trx));
    if (closed) {
      state = closed.state;
      ended = true;
      winnerId = closed.winnerId;
      outbox.frames.push(publicFrame(row.id, closed.event));
      if (closed.winnerId) {
        const orderId = await createWinnerOrder(trx, row, closed.winnerId, state.currentPrice);
        outbox.user.push({ userId: closed.winnerId, frame: { type: 'auction.won', auctionId: row.id, orderId } });
      }
    }
  }
  if (bids.length > 0 || ended) {
    await insertEvents(trx, outbox.frames);
    await saveState(trx, state, ended ? { winnerId: winnerId ?? null, ended: true } : {});
  }
  const userEventIds = await insertUserEvents(trx, outbox.user);
  return {
    applied: bids.length,
    verdicts,
    receivedAt: bids.map((b) => b.receivedAt),
    accepted,
    outbox,
    userEventIds,
    more: bids.length === BATCH,
    ended,
    state,
  };
}

/** Publishes a committed drain's outbox; failures leave it to the sweeper. */
export async function publishOutbox(ctx: WorkerContext, outbox: Outbox, userEventIds: string[]): Promise<void> {
  try {
    await publishEvents(
      ctx.db,
      ctx.redis,
      ctx.config.redis.prefix,
      outbox.frames.map((f) => ({ auctionId: f.auctionId, seq: f.seq, frame: f })),
      outbox.user.map((u, i) => ({ id: userEventIds[i]!, userId: u.userId, frame: u.frame })),
    );
  } catch (err) {
    ctx.logger.warn({ err: (err as Error).message }, 'publish failed; the sweeper will retry');
  }
}

export async function bidDrain(ctx: WorkerContext, data: JobPayloads['bid.drain']): Promise<{ applied: number }> {
  let total = 0;
  for (;;) {
    const result = await ctx.db.transaction(async (trx) => {
      const row = await lockAuction(trx, data.auctionId);
      if (!row) return null;
      return applyQueued(trx, row, false);
    });
    if (!result) return { applied: total };
    total += result.applied;
    ctx.metrics?.observeDrain(result.verdicts, result.receivedAt);
    await publishOutbox(ctx, result.outbox, result.userEventIds);
    if (!result.more) return { applied: total };
  }
}

/** Ends the auction if due, after applying every bid recorded before now. */
export async function closeIfDue(ctx: WorkerContext, auctionId: string, endAt?: number): Promise<{ ended: boolean; endsAt: number | null; status: string } | null> {
  for (;;) {
    const result = await ctx.db.transaction(async (trx) => {
      // The receipt lock first: every bid recorded so far is committed and visible,
      // and none can be recorded until this transaction ends.
      if (!(await lockReceipts(trx, auctionId))) return null;
      const row = await lockAuction(trx, auctionId);
      if (!row) return null;
      if (endAt !== undefined && row.status === 'live' && row.ends_at && row.ends_at.getTime() > endAt) {
        // The owner ended it early: bids received from the request on are late.
        row.ends_at = new Date(endAt);
      }
      return applyQueued(trx, row, true);
    });
    if (!result) return null;
    ctx.metrics?.observeDrain(result.verdicts, result.receivedAt);
    await publishOutbox(ctx, result.outbox, result.userEventIds);
    if (!result.more) return { ended: result.ended, endsAt: result.state.endsAt, status: result.state.status };
  }
}
