/**
 * Auction use cases at the edge: create, read, start, cancel, and asking the
 * workers to end one. Bids are recorded by BidIntake; the edge never applies one.
 */
import { minNextBid, reserveMet } from '../../../auction/engine.js';
import { publishEvents } from '../../../lib/publisher.js';
import type { AccessClaims } from '../../../lib/jwt.js';
import { AppError, conflict, forbidden, notFound } from '../../../lib/errors.js';
import { dbNow, findAuction, insertAuction, toState } from '../../../db/operations/auctions.js';
import { cancelAuctionTx, endEarlyTx, startAuctionTx } from '../../../db/operations/lifecycle.js';
import type { AuctionRow } from '../../../db/tables.js';
import type { AuctionFrame } from '../../../auction/frames.js';
import type { EdgeDeps } from '../deps.js';

export interface CreateAuctionInput {
  productId: string;
  startingPrice: number;
  reservePrice?: number;
  bidIncrement?: number;
  startsAt?: string;
  durationSeconds: number;
  softCloseSeconds?: number;
}

/**
 * The API shape of an auction; the reserve is shown to its seller only (API.md:
 * hidden from non-owners, admins included: they see `reserveMet`, as bidders do).
 */
export function toApiAuction(row: AuctionRow, viewer: AccessClaims | undefined) {
  const state = toState(row, []);
  const privileged = viewer !== undefined && viewer.id === row.seller_id;
  return {
    id: row.id,
    sellerId: row.seller_id,
    productId: row.product_id,
    title: row.title,
    status: row.status,
    startingPrice: state.startingPrice,
    ...(privileged ? { reservePrice: state.reservePrice } : { reserveMet: reserveMet(state) }),
    currentPrice: state.currentPrice,
    currency: row.currency,
    minNextBid: minNextBid(state),
    bidIncrement: state.bidIncrement,
    leaderId: row.leader_id,
    bidCount: row.bid_count,
    startsAt: row.starts_at?.toISOString() ?? null,
    endsAt: row.ends_at?.toISOString() ?? null,
    softCloseSeconds: row.soft_close_seconds,
    durationSeconds: row.duration_seconds,
    seq: Number(row.seq),
    winnerId: row.winner_id,
    createdAt: row.created_at.toISOString(),
  };
}

async function publish(deps: EdgeDeps, frame: AuctionFrame): Promise<void> {
  try {
    await publishEvents(deps.db, deps.redis, deps.config, [{ auctionId: frame.auctionId, seq: frame.seq, frame }], []);
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message }, 'publish failed; the sweeper will retry');
  }
}

async function armClose(deps: EdgeDeps, row: AuctionRow): Promise<void> {
  const at = row.ends_at!.getTime();
  try {
    await deps.producer.enqueue('auction.close', { auctionId: row.id, at }, Math.max(0, at - Date.now()));
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, auctionId: row.id }, 'close timer not armed; the sweeper will close it');
  }
}

/**
 * How far ahead an auction may be scheduled: a year. Its timers are BullMQ
 * delayed jobs, whose order (a score of the due time in ms times 4096) is exact
 * only up to 2^53, around the year 2039; and a show is not planned further.
 */
const START_HORIZON_MS = 366 * 86_400_000;

export async function createAuction(deps: EdgeDeps, caller: AccessClaims, input: CreateAuctionInput) {
  if (input.reservePrice !== undefined && input.reservePrice < input.startingPrice) {
    throw new AppError('validation_failed', 'reservePrice is below startingPrice', [{ path: 'body.reservePrice', message: 'must be >= startingPrice' }]);
  }
  const row = await deps.db.transaction(async (trx) => {
    // Shares the product's row lock with deletes: a product cannot vanish under a new auction.
    const product = await trx('products').where({ id: input.productId }).whereNull('deleted_at').forShare().first();
    if (!product) throw new AppError('validation_failed', 'unknown product', [{ path: 'body.productId', message: 'no such product' }]);
    if (product.seller_id !== caller.id && caller.role !== 'admin') throw forbidden('you can only auction your own products');
    let startsAt: Date | null = null;
    if (input.startsAt !== undefined) {
      startsAt = new Date(input.startsAt);
      const now = await dbNow(trx);
      if (startsAt.getTime() <= now) {
        throw new AppError('validation_failed', 'startsAt must be in the future', [{ path: 'body.startsAt', message: 'is in the past' }]);
      }
      if (startsAt.getTime() > now + START_HORIZON_MS) {
        throw new AppError('validation_failed', 'startsAt must be within a year', [{ path: 'body.startsAt', message: 'is more than a year ahead' }]);
      }
    }
    const open = await trx('auctions').where({ product_id: input.productId }).whereIn('status', ['scheduled', 'live']).first('id');
    if (open) throw conflict('this product already has a scheduled or live auction');
    return insertAuction(trx, {
      sellerId: product.seller_id,
      productId: input.productId,
      title: product.title,
      startingPrice: input.startingPrice,
      reservePrice: input.reservePrice ?? null,
      bidIncrement: input.bidIncrement ?? null,
      currency: product.currency,
      durationSeconds: input.durationSeconds,
      softCloseSeconds: input.softCloseSeconds ?? 30,
      startsAt,
    });
  });
  if (row.starts_at) {
    const at = row.starts_at.getTime();
    try {
      await deps.producer.enqueue('auction.start', { auctionId: row.id, at }, Math.max(0, at - Date.now()));
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message }, 'start timer not armed; the sweeper will start it');
    }
  }
  return toApiAuction(row, caller);
}

export async function getAuction(deps: EdgeDeps, id: string): Promise<AuctionRow> {
  const row = await findAuction(deps.db, id);
  if (!row) throw notFound('auction');
  return row;
}

async function owned(deps: EdgeDeps, id: string, caller: AccessClaims): Promise<AuctionRow> {
  const row = await getAuction(deps, id);
  if (row.seller_id !== caller.id && caller.role !== 'admin') throw forbidden('only the seller or an admin may do this');
  return row;
}

export async function startAuctionNow(deps: EdgeDeps, caller: AccessClaims, id: string) {
  await owned(deps, id, caller);
  const result = await startAuctionTx(deps.db, id, false);
  if (result.outcome !== 'started') throw conflict('only a scheduled auction can be started');
  await publish(deps, result.frame);
  await armClose(deps, result.row);
  return toApiAuction(result.row, caller);
}

export async function cancelAuction(deps: EdgeDeps, caller: AccessClaims, id: string) {
  await owned(deps, id, caller);
  const result = await cancelAuctionTx(deps.db, id);
  if (result.outcome === 'has_bids') throw conflict('an auction with bids cannot be cancelled');
  if (result.outcome === 'ending') throw conflict('an auction that is ending cannot be cancelled');
  if (result.outcome !== 'cancelled') throw conflict('only a scheduled or live auction can be cancelled');
  await publish(deps, result.frame);
  return toApiAuction(result.row, caller);
}

/**
 * Ends a live auction: its end is fixed at this request's database time, then a
 * worker applies every bid received before it and ends it. Waits for the worker
 * up to `waitMs`.
 */
export async function endAuction(deps: EdgeDeps, caller: AccessClaims, id: string, waitMs = 10_000) {
  const row = await owned(deps, id, caller);
  if (row.status === 'ended') return toApiAuction(row, caller);
  const result = await endEarlyTx(deps.db, id);
  if (result.outcome === 'ended') return toApiAuction(result.row!, caller);
  if (result.outcome !== 'ending') throw conflict('only a live auction can be ended');
  try {
    await deps.producer.enqueue('auction.close', { auctionId: id, at: result.endsAt });
  } catch {
    // The end is fixed in Postgres; the sweeper closes overdue auctions.
    deps.logger.warn({ auctionId: id }, 'close not enqueued; the sweeper will close it');
  }
  const until = Date.now() + waitMs;
  for (;;) {
    const now = await getAuction(deps, id);
    if (now.status === 'ended') return toApiAuction(now, caller);
    if (Date.now() > until) throw new AppError('service_unavailable', 'ending is queued but not finished yet; check the auction again');
    await new Promise((r) => setTimeout(r, 25));
  }
}
