/**
 * Auction lifecycle transitions that apply no bid (start, cancel), shared by the
 * edge's PUT endpoints and the worker's timers. Each locks the auction, checks its
 * status, takes the next seq and writes its event to the outbox in one
 * transaction; the caller publishes the returned frame after commit.
 */
import type { Knex } from 'knex';
import { startAuction } from '../../auction/engine.js';
import { publicFrame, type AuctionFrame } from '../../auction/frames.js';
import { dbNow, hasQueuedBids, insertEvents, lockAuction, lockReceipts, NEXT_MS, saveState, toState, waitForDbTime } from './auctions.js';
import type { AuctionRow } from '../tables.js';

export type StartOutcome = { outcome: 'started'; row: AuctionRow; frame: AuctionFrame } | { outcome: 'not_found' | 'not_scheduled' | 'not_due'; row?: AuctionRow };

export async function startAuctionTx(db: Knex, auctionId: string, onlyIfDue: boolean): Promise<StartOutcome> {
  return db.transaction(async (trx) => {
    const row = await lockAuction(trx, auctionId);
    if (!row) return { outcome: 'not_found' };
    if (row.status !== 'scheduled') return { outcome: 'not_scheduled', row };
    const now = await dbNow(trx);
    if (onlyIfDue && row.starts_at && row.starts_at.getTime() > now) return { outcome: 'not_due', row };
    const started = startAuction(toState(row, []), now, row.duration_seconds)!;
    const frame = publicFrame(row.id, started.event);
    await insertEvents(trx, [frame]);
    await saveState(trx, started.state, { startsAt: now });
    return { outcome: 'started', row: (await trx<AuctionRow>('auctions').where({ id: auctionId }).first())!, frame };
  });
}

export type CancelOutcome = { outcome: 'cancelled'; row: AuctionRow; frame: AuctionFrame } | { outcome: 'not_found' | 'has_bids' | 'not_open' | 'ending'; row?: AuctionRow };

/**
 * Cancels a scheduled auction, or a live one before any bid (none applied, none
 * queued) and before its end: one its owner has ended (`hard_end`) or whose end
 * has passed is ending, and a close will end it; cancelled then, the owner's
 * end would have waited for an end that never came.
 */
export async function cancelAuctionTx(db: Knex, auctionId: string): Promise<CancelOutcome> {
  return db.transaction(async (trx) => {
    if (!(await lockReceipts(trx, auctionId))) return { outcome: 'not_found' };
    const row = (await lockAuction(trx, auctionId))!;
    if (row.status !== 'scheduled' && row.status !== 'live') return { outcome: 'not_open', row };
    const now = await dbNow(trx);
    if (row.status === 'live' && (row.end_cap !== null || row.hard_end || (row.ends_at !== null && row.ends_at.getTime() <= now))) return { outcome: 'ending', row };
    // Queued bids of an auction not yet due to start are all to be rejected
    // (received before its start: auction_not_live), so they do not stand in the
    // way; a live auction's (or one whose start is due) may be its first bid.
    const doomed = row.status === 'scheduled' && (row.starts_at === null || row.starts_at.getTime() > now);
    if (row.bid_count > 0 || (!doomed && (await hasQueuedBids(trx, auctionId)))) return { outcome: 'has_bids', row };
    const seq = Number(row.seq) + 1;
    const frame: AuctionFrame = { type: 'auction.cancelled', auctionId, seq, at: new Date(now).toISOString() };
    await insertEvents(trx, [frame]);
    await trx('auctions').where({ id: auctionId }).update({ status: 'cancelled', seq, ended_at: trx.raw('clock_timestamp()'), updated_at: trx.raw('clock_timestamp()') });
    return { outcome: 'cancelled', row: (await trx<AuctionRow>('auctions').where({ id: auctionId }).first())!, frame };
  });
}

export type EndOutcome = { outcome: 'ending'; endsAt: number } | { outcome: 'not_found' | 'ended' | 'not_live'; row?: AuctionRow };

/**
 * The owner's early end: caps the end at the request's database time
 * (`end_cap`, and `ends_at` no later) under the receipt and auction locks, so
 * every drain from now on judges bids against it; a worker's close then applies
 * the bids received before it and ends the auction. Soft close still extends a
 * stale `ends_at` up to the cap: queued bids received in its window before the
 * request move it, as they would have without the request (see the engine's
 * endCap). Returns the cap.
 *
 * That time is the database clock's next whole millisecond. Receipt times are
 * judged in whole milliseconds, floored (see loadDrainInputs), against
 * `ends_at`: an end at the floor of now rejected as late the bids received
 * earlier in the same millisecond, on a busy auction the last ones, which
 * decide the winner. The commit then waits for that time, so
 * a bid recorded after it (recording waits on the receipt lock) is at or past it.
 */
export async function endEarlyTx(db: Knex, auctionId: string): Promise<EndOutcome> {
  return db.transaction(async (trx) => {
    if (!(await lockReceipts(trx, auctionId))) return { outcome: 'not_found' };
    const row = (await lockAuction(trx, auctionId))!;
    if (row.status === 'ended') return { outcome: 'ended', row };
    if (row.status !== 'live') return { outcome: 'not_live', row };
    // The cap: the next whole millisecond. An end asked again keeps the first (one
    // fixed by the version before end_cap kept its ends_at, with hard_end set).
    const { rows } = await trx.raw(
      `update auctions a set end_cap = c.cap, ends_at = least(a.ends_at, c.cap), hard_end = true, updated_at = clock_timestamp()
       from (select coalesce(end_cap, case when hard_end then ends_at end, ${NEXT_MS}) as cap from auctions where id = ?) c
       where a.id = ? returning a.end_cap`,
      [auctionId, auctionId],
    );
    const cap = (rows[0].end_cap as Date).getTime();
    await waitForDbTime(trx, cap);
    return { outcome: 'ending', endsAt: cap };
  });
}
