/**
 * Applying bids. A drain job wakes its partition: the handler finds every
 * auction of the partition with queued bids and applies them in one transaction
 * per round: lock those auctions (in id order, one statement), read their queued
 * bids in receipt order (committed bids are a gap-free prefix, see recordBids),
 * run each auction's bids through the pure engine, and write verdicts, states,
 * proxies and the outbox (public events with their seq, private events) in a
 * handful of statements. A drain that runs twice, or two at once, change nothing
 * the second time: the row locks serialize them and a bid leaves `queued` once.
 */
import type { Knex } from 'knex';
import { applyBid, closeAuction, type AuctionState } from '../../auction/engine.js';
import { privateFrame, publicFrame, type AuctionFrame } from '../../auction/frames.js';
import {
  auctionsWithQueuedBids,
  changedProxies,
  createWinnerOrder,
  dbNow,
  insertEvents,
  insertUserEvents,
  loadDrainInputs,
  lockAuction,
  lockAuctions,
  lockReceipts,
  saveState,
  toState,
  writeRound,
  type Verdict,
} from '../../db/operations/auctions.js';
import type { AuctionRow } from '../../db/tables.js';
import type { Proxy } from '../../auction/engine.js';
import { publishEvents } from '../../lib/publisher.js';
import type { JobPayloads } from '../../queues/jobs.js';
import { bidPartition, bidQueueFor } from '../../queues/names.js';
import type { WorkerContext } from '../context.js';

/** Bids applied per transaction at most (the rest go in the next round). */
const BATCH = 2_000;
/** Auctions locked per transaction at most. */
const AUCTIONS_PER_ROUND = 200;
/** Rounds per drain job at most. */
const MAX_ROUNDS = 100;

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
  /** The batch was full: there may be more queued. */
  more: boolean;
  states: Map<string, AuctionState>;
}

/** Runs the queued bids of the locked `rows` through the engine; writes nothing. */
async function applyLocked(trx: Knex.Transaction, rows: AuctionRow[]) {
  const inputs = await loadDrainInputs(trx, rows.map((r) => r.id), BATCH);
  const outbox: Outbox = { frames: [], user: [] };
  const verdicts: Verdict[] = [];
  const receivedAt: number[] = [];
  const states = new Map<string, AuctionState>();
  const touched: AuctionState[] = [];
  const proxyChanges: { auctionId: string; proxy: Proxy }[] = [];
  let accepted = 0;
  for (const row of rows) {
    const before = inputs.proxies.get(row.id) ?? [];
    let state = toState(row, before);
    const bids = inputs.bids.get(row.id) ?? [];
    const banned = inputs.bans.get(row.id) ?? new Set<string>();
    for (const bid of bids) {
      const r = applyBid(state, bid, { banned, names: inputs.names });
      state = r.state;
      verdicts.push(r.verdict);
      receivedAt.push(bid.receivedAt);
      if (r.verdict.status === 'accepted') accepted++;
      for (const e of r.events) outbox.frames.push(publicFrame(row.id, e));
      for (const e of r.private) outbox.user.push(privateFrame(row.id, e));
    }
    states.set(row.id, state);
    if (bids.length > 0) {
      touched.push(state);
      for (const proxy of changedProxies(before, state.proxies)) proxyChanges.push({ auctionId: row.id, proxy });
    }
  }
  return { outbox, verdicts, receivedAt, states, touched, proxyChanges, accepted, more: inputs.total === BATCH };
}

/** Writes a round's verdicts, proxies, events and states (and `userEvents`); returns the private events' ids. */
function writeApplied(trx: Knex.Transaction, a: Awaited<ReturnType<typeof applyLocked>>, userEvents: Outbox['user']) {
  return writeRound(trx, { verdicts: a.verdicts, proxies: a.proxyChanges, frames: a.outbox.frames, states: a.touched, userEvents });
}

/** Applies the queued bids of several auctions in one transaction. */
export async function applyQueuedMany(trx: Knex.Transaction, ids: string[]): Promise<DrainResult> {
  const rows = await lockAuctions(trx, ids);
  const a = await applyLocked(trx, rows);
  const userEventIds = await writeApplied(trx, a, a.outbox.user);
  return { applied: a.verdicts.length, verdicts: a.verdicts, receivedAt: a.receivedAt, accepted: a.accepted, outbox: a.outbox, userEventIds, more: a.more, states: a.states };
}

/**
 * Applies queued bids of the locked auction `row` (inside `trx`). With `close`,
 * it also ends the auction if its end has passed. Used by close.
 */
export async function applyQueued(trx: Knex.Transaction, row: AuctionRow, close: boolean): Promise<DrainResult & { ended: boolean; state: AuctionState }> {
  const a = await applyLocked(trx, [row]);
  await writeApplied(trx, a, []);
  let state = a.states.get(row.id)!;
  let ended = false;
  if (close && !a.more) {
    const closed = closeAuction(state, await dbNow(trx));
    if (closed) {
      state = closed.state;
      ended = true;
      const frame = publicFrame(row.id, closed.event);
      a.outbox.frames.push(frame);
      await insertEvents(trx, [frame]);
      if (closed.winnerId) {
        const orderId = await createWinnerOrder(trx, row, closed.winnerId, state.currentPrice);
        a.outbox.user.push({ userId: closed.winnerId, frame: { type: 'auction.won', auctionId: row.id, orderId } });
      }
      await saveState(trx, state, { winnerId: closed.winnerId, ended: true });
    }
  }
  const userEventIds = await insertUserEvents(trx, a.outbox.user);
  return {
    applied: a.verdicts.length,
    verdicts: a.verdicts,
    receivedAt: a.receivedAt,
    accepted: a.accepted,
    outbox: a.outbox,
    userEventIds,
    more: a.more,
    states: a.states,
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
      ctx.config,
      outbox.frames.map((f) => ({ auctionId: f.auctionId, seq: f.seq, frame: f })),
      outbox.user.map((u, i) => ({ id: userEventIds[i]!, userId: u.userId, frame: u.frame })),
    );
  } catch (err) {
    ctx.logger.warn({ err: (err as Error).message }, 'publish failed; the sweeper will retry');
  }
}

/** Drains the partition of `data.auctionId`: every auction there with queued bids. */
export async function bidDrain(ctx: WorkerContext, data: JobPayloads['bid.drain']): Promise<{ applied: number }> {
  const partition = bidPartition(data.auctionId);
  // Before the first look: a bid committed after this point wakes a new drain.
  // If Redis refuses, the job fails and is retried (a drain that went on with
  // the flag up could leave bids committed after its last look without a job).
  await ctx.producer.clearWake(bidQueueFor(data.auctionId));
  let total = 0;
  // Each round's events are published while the next round runs; rounds publish in
  // order (one chain, one Redis connection), so every auction's stream stays in seq order.
  let published: Promise<void> = Promise.resolve();
  for (let round = 0; round < MAX_ROUNDS; round++) {
    // An unlocked look first: most jobs of a busy partition find their bids already applied.
    const ids = await auctionsWithQueuedBids(ctx.db, partition, AUCTIONS_PER_ROUND);
    if (ids.length === 0) break;
    const result = await ctx.db.transaction((trx) => applyQueuedMany(trx, ids));
    total += result.applied;
    ctx.metrics?.observeDrain(result.verdicts, result.receivedAt);
    published = published.then(() => publishOutbox(ctx, result.outbox, result.userEventIds));
    if (round === MAX_ROUNDS - 1) {
      // Still busy after the last round: hand over to a fresh job (other partitions get a turn).
      await ctx.producer.enqueue('bid.drain', { ...data, retry: Date.now() });
    }
  }
  await published;
  return { applied: total };
}

/** Ends the auction if due, after applying every bid recorded before now. */
export async function closeIfDue(ctx: WorkerContext, auctionId: string): Promise<{ ended: boolean; endsAt: number | null; status: string } | null> {
  for (;;) {
    const result = await ctx.db.transaction(async (trx) => {
      // The receipt lock first: every bid recorded so far is committed and visible,
      // and none can be recorded until this transaction ends.
      if (!(await lockReceipts(trx, auctionId))) return null;
      const row = await lockAuction(trx, auctionId);
      if (!row) return null;
      return applyQueued(trx, row, true);
    });
    if (!result) return null;
    ctx.metrics?.observeDrain(result.verdicts, result.receivedAt);
    await publishOutbox(ctx, result.outbox, result.userEventIds);
    if (!result.more) return { ended: result.ended, endsAt: result.state.endsAt, status: result.state.status };
  }
}
