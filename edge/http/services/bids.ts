/**
 * Taking a bid or auto-bid at the edge: replay the first answer for a repeated
 * Idempotency-Key, else record it (group commit, see bid-intake.ts) and answer
 * with its id. One instance per edge (per deps), shared by the Express route and
 * the fast path, so one auction's bids are never in two writes at once.
 */
import { randomUUID } from 'node:crypto';
import { findBidByIdempotencyKey } from '../../../db/operations/auctions.js';
import { AppError, conflict, notFound, unauthorized } from '../../../lib/errors.js';
import type { AccessClaims } from '../../../lib/jwt.js';
import type { EdgeDeps } from '../deps.js';
import { BidIntake } from './bid-intake.js';

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,200}$/;

/** The Idempotency-Key header's value, or null without one; 400 when malformed. */
export function parseIdempotencyKey(header: string | undefined): string | null {
  if (header === undefined) return null;
  if (!IDEMPOTENCY_KEY.test(header)) {
    throw new AppError('validation_failed', 'Idempotency-Key must be 1..200 of A-Z a-z 0-9 _ . : -', [{ path: 'headers.idempotency-key', message: 'malformed' }]);
  }
  return header;
}

export interface BidService {
  /** Records the request (or finds the first one with its key) and returns its id. */
  take(caller: AccessClaims, auctionId: string, kind: 'bid' | 'autobid', amount: number, key: string | null): Promise<string>;
}

const services = new WeakMap<EdgeDeps, BidService>();

export function bidService(deps: EdgeDeps): BidService {
  let service = services.get(deps);
  if (!service) {
    service = createBidService(deps);
    services.set(deps, service);
  }
  return service;
}

function createBidService(deps: EdgeDeps): BidService {
  const intake = new BidIntake(deps);
  return {
    async take(caller, auctionId, kind, amount, key) {
      const replay = async () => {
        const first = key ? await findBidByIdempotencyKey(deps.db, caller.id, key) : undefined;
        if (!first) return null;
        if (first.auction_id !== auctionId || first.kind !== kind || Number(first.amount) !== amount) {
          throw conflict('this Idempotency-Key was used for a different request');
        }
        return first.id;
      };
      // No lookup of the key first: the bid's receipt time is taken when it is
      // recorded, and a lookup would put a keyed bid behind plain ones that came
      // after it. A key used before makes the insert a no-op ('duplicate', the
      // unique (bidder, key)), and the first answer is replayed from there.
      const id = randomUUID();
      const outcome = await intake.submit(auctionId, { id, kind, bidderId: caller.id, amount, idempotencyKey: key });
      if (outcome === 'no_auction') throw notFound('auction');
      if (outcome === 'no_user') throw unauthorized('the account of this token no longer exists');
      if (outcome === 'duplicate') {
        const first = await replay();
        if (!first) throw new AppError('internal', 'idempotent replay lost');
        return first;
      }
      deps.metrics.bids.inc({ kind });
      return id;
    },
  };
}
