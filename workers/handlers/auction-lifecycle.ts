/**
 * Auction timers. Each job re-checks the auction when it fires: a start that is
 * no longer due (or no longer scheduled) does nothing; a close whose auction was
 * extended re-arms itself for the new end. Both are idempotent.
 */
import { startAuctionTx } from '../../db/operations/lifecycle.js';
import type { JobPayloads } from '../../queues/jobs.js';
import { Producer } from '../../queues/producer.js';
import type { WorkerContext } from '../context.js';
import { closeIfDue, publishOutbox } from './bid-drain.js';

/**
 * Arms the close timer for `endsAt` (a repeat for the same end is a no-op;
 * `retry` gives a re-arm from inside a close job an id of its own).
 */
export async function armClose(producer: Producer, auctionId: string, endsAt: number, retry?: number): Promise<void> {
  // A re-arm waits at least a moment: a worker clock slightly ahead of the
  // database's must not spin on a close that is not yet due.
  const delay = Math.max(retry ? 50 : 0, endsAt - Date.now());
  await producer.enqueue('auction.close', { auctionId, at: endsAt, ...(retry ? { retry } : {}) }, delay);
}

export async function auctionStart(ctx: WorkerContext, data: JobPayloads['auction.start']) {
  const result = await startAuctionTx(ctx.db, data.auctionId, true);
  if (result.outcome === 'not_due' && result.row?.starts_at) {
    // Fired a moment early by the worker's clock: try again when due.
    const at = result.row.starts_at.getTime();
    await ctx.producer.enqueue('auction.start', { auctionId: data.auctionId, at, retry: Date.now() }, Math.max(50, at - Date.now()));
  }
  if (result.outcome === 'not_scheduled' && result.row?.status === 'live' && result.row.ends_at) {
    // Started by an earlier run of this job (or by its owner) that may have died
    // before arming the close: arm it (the same job id: once).
    await armClose(ctx.producer, data.auctionId, result.row.ends_at.getTime());
  }
  if (result.outcome !== 'started') return { started: false, outcome: result.outcome };
  await publishOutbox(ctx, { frames: [result.frame], user: [] }, null);
  await armClose(ctx.producer, data.auctionId, result.row.ends_at!.getTime());
  return { started: true };
}

export async function auctionClose(ctx: WorkerContext, data: JobPayloads['auction.close']) {
  const result = await closeIfDue(ctx, data.auctionId);
  if (result && !result.ended && result.status === 'live' && result.endsAt !== null) {
    // Extended (soft close) or fired a moment early: wait for the current end.
    await armClose(ctx.producer, data.auctionId, result.endsAt, Date.now());
  }
  return { ended: result?.ended ?? false };
}
