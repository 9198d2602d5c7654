/**
 * The bidding rules of API.md as a pure function: no I/O, no clock, no randomness.
 * The worker feeds it the auction's state and the bids in receipt order; replay
 * and property tests call it the same way.
 *
 * Proxy bidding (auto-bid): after every change the contenders are the leader (at
 * their proxy max, or at the current price without one) and every other proxy
 * that can still beat the price. The strongest (highest max; equal maxes: the one
 * placed first) leads at min(its max, the second's max + increment). The second
 * contender's proxy first bids its whole max (an auto bid), then the leader's
 * proxy answers: at most two auto bids per change.
 */
import { createHash } from 'node:crypto';
import { increment } from './increments.js';

/** The namespace of auto bids' ids (a fixed random UUID; see autoBidId). */
const AUTO_BID_NAMESPACE = Buffer.from('6f1c2d3e8a9b4c5d9e0f1a2b3c4d5e6f', 'hex');

/**
 * The id of the `n`th bid placed for `userId`'s proxy in answer to bid
 * `triggerId`: a name-based UUID (version 5, RFC 9562), since API.md's ids are
 * UUIDs, and derived rather than random, so a replay of the same bids gives the
 * same ids.
 */
export function autoBidId(triggerId: string, n: number, userId: string): string {
  const hash = createHash('sha1').update(AUTO_BID_NAMESPACE).update(`${triggerId}:${n}:${userId}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export type AuctionStatus = 'scheduled' | 'live' | 'ended' | 'cancelled';

export type RejectReason = 'auction_not_live' | 'auction_ended' | 'banned' | 'self_bid' | 'already_leading' | 'bid_too_low';

export interface Proxy {
  userId: string;
  maxAmount: number;
  /** Receipt order of the auto-bid request that set this max (ties: lower wins). */
  placedOrder: number;
  /** Told it was outbid past its max (autobid.exhausted sent). */
  exhausted: boolean;
}

export interface AuctionState {
  id: string;
  sellerId: string;
  status: AuctionStatus;
  startingPrice: number;
  reservePrice: number | null;
  bidIncrement: number | null;
  currentPrice: number;
  leaderId: string | null;
  /** Receipt order of the bid or proxy that holds the lead (ties: lower wins). */
  leaderOrder: number;
  bidCount: number;
  /** Epoch milliseconds (the database clock); null until started. */
  endsAt: number | null;
  /**
   * When it went live (epoch ms); a bid received before it is not live, however
   * late it is applied. Null (or absent) until started.
   */
  startsAt?: number | null;
  /**
   * The owner's early end (epoch ms): it ends then at the latest. Soft close
   * still extends `endsAt` (bids received before the owner's request but not yet
   * applied may move a stale end) up to the cap, never past it. Null (or absent):
   * no cap.
   */
  endCap?: number | null;
  softCloseSeconds: number;
  seq: number;
  proxies: Proxy[];
}

export interface BidInput {
  /** The request's id: a bid's `bidId` or an auto-bid's `autobidId`. */
  id: string;
  kind: 'bid' | 'autobid';
  bidderId: string;
  bidderName: string;
  /** `amount` of a bid, `maxAmount` of an auto-bid. */
  amount: number;
  /** When the edge recorded it (epoch ms, database clock). */
  receivedAt: number;
  /** Its position in the auction's receipt order. */
  receiptNo: number;
}

/**
 * Who is banned when: `has(userId, at)` is true when the user was banned at
 * receipt time `at` (ms). A Set of user ids (banned throughout) is one.
 */
export interface Bans {
  has(userId: string, at: number): boolean;
}

/** An auction's bans as periods: a user is banned at `at` when a period of theirs holds it (from ≤ at < until). */
export class BanPeriods implements Bans {
  private readonly periods = new Map<string, { from: number; until: number | null }>();

  add(userId: string, from: number, until: number | null): this {
    this.periods.set(userId, { from, until });
    return this;
  }

  has(userId: string, at: number): boolean {
    const p = this.periods.get(userId);
    return p !== undefined && p.from <= at && (p.until === null || at < p.until);
  }
}

export interface Context {
  /** Judged at each bid's receipt time, as everything else is. */
  banned: Bans;
  /**
   * Display names of users who may bid by proxy in this run of bids: the owners
   * of the state's proxies and the bidders of every bid applied with it (a proxy
   * placed by one of them bids under its owner's name on later bids).
   */
  names: ReadonlyMap<string, string>;
}

/** Public events (each takes the next `seq`) and private ones (to one user). */
export type PublicEvent =
  | {
      type: 'bid.placed';
      seq: number;
      at: number;
      bidId: string;
      bidderId: string;
      bidderName: string;
      amount: number;
      auto: boolean;
      currentPrice: number;
      minNextBid: number;
      leaderId: string;
      bidCount: number;
      endsAt: number;
    }
  | { type: 'auction.extended'; seq: number; at: number; endsAt: number };

export type PrivateEvent =
  | { type: 'bid.ack'; userId: string; bidId: string; status: 'accepted' | 'rejected'; reason?: RejectReason; amount: number }
  | { type: 'autobid.ack'; userId: string; autobidId: string; status: 'accepted' | 'rejected'; reason?: RejectReason; maxAmount: number }
  | { type: 'bid.outbid'; userId: string; currentPrice: number }
  | { type: 'autobid.exhausted'; userId: string; maxAmount: number };

export interface Verdict {
  id: string;
  status: 'accepted' | 'rejected';
  reason?: RejectReason;
  /** For an accepted bid: the seq of its `bid.placed` event. */
  seq?: number;
}

export interface ApplyResult {
  state: AuctionState;
  verdict: Verdict;
  events: PublicEvent[];
  private: PrivateEvent[];
}

export function minNextBid(s: Pick<AuctionState, 'leaderId' | 'startingPrice' | 'currentPrice' | 'bidIncrement'>): number {
  return s.leaderId === null ? s.startingPrice : s.currentPrice + increment(s.currentPrice, s.bidIncrement);
}

export function reserveMet(s: Pick<AuctionState, 'reservePrice' | 'currentPrice' | 'leaderId'>): boolean {
  return s.reservePrice === null || (s.leaderId !== null && s.currentPrice >= s.reservePrice);
}

function clone(s: AuctionState): AuctionState {
  return { ...s, proxies: s.proxies.map((p) => ({ ...p })) };
}

/** Applies one bid or auto-bid to `state`; returns the new state and what happened. */
export function applyBid(state: AuctionState, bid: BidInput, ctx: Context): ApplyResult {
  const s = clone(state);
  const events: PublicEvent[] = [];
  const priv: PrivateEvent[] = [];
  const reject = (reason: RejectReason): ApplyResult => {
    priv.push(
      bid.kind === 'bid'
        ? { type: 'bid.ack', userId: bid.bidderId, bidId: bid.id, status: 'rejected', reason, amount: bid.amount }
        : { type: 'autobid.ack', userId: bid.bidderId, autobidId: bid.id, status: 'rejected', reason, maxAmount: bid.amount },
    );
    return { state, verdict: { id: bid.id, status: 'rejected', reason }, events: [], private: priv };
  };

  if (s.status === 'ended' || (s.status === 'live' && s.endsAt !== null && bid.receivedAt >= s.endsAt)) return reject('auction_ended');
  if (s.status !== 'live' || (s.startsAt != null && bid.receivedAt < s.startsAt)) return reject('auction_not_live');
  if (ctx.banned.has(bid.bidderId, bid.receivedAt)) return reject('banned');
  if (bid.bidderId === s.sellerId) return reject('self_bid');

  const previousEndsAt = s.endsAt;
  // Everyone who holds the lead at some point of this change (before it, or by one
  // of its bids) and not at its end was outbid: each is told once.
  const leaders: string[] = s.leaderId === null ? [] : [s.leaderId];
  const nameOf = (userId: string) => (userId === bid.bidderId ? bid.bidderName : (ctx.names.get(userId) ?? ''));
  let verdictSeq: number | undefined;

  const place = (userId: string, amount: number, auto: boolean, order: number, bidId: string) => {
    s.currentPrice = amount;
    s.leaderId = userId;
    s.leaderOrder = order;
    s.bidCount += 1;
    if (!leaders.includes(userId)) leaders.push(userId);
    // Soft close: an accepted bid within the window moves the end to its receipt + window.
    if (s.softCloseSeconds > 0 && s.endsAt !== null && s.endsAt - bid.receivedAt <= s.softCloseSeconds * 1000) {
      s.endsAt = Math.max(s.endsAt, bid.receivedAt + s.softCloseSeconds * 1000);
      if (s.endCap != null) s.endsAt = Math.min(s.endsAt, s.endCap);
    }
    s.seq += 1;
    events.push({
      type: 'bid.placed',
      seq: s.seq,
      at: bid.receivedAt,
      bidId,
      bidderId: userId,
      bidderName: nameOf(userId),
      amount,
      auto,
      currentPrice: s.currentPrice,
      minNextBid: minNextBid(s),
      leaderId: userId,
      bidCount: s.bidCount,
      endsAt: s.endsAt ?? 0,
    });
    return s.seq;
  };

  if (bid.kind === 'bid') {
    if (s.leaderId === bid.bidderId) return reject('already_leading');
    if (bid.amount < minNextBid(s)) return reject('bid_too_low');
    verdictSeq = place(bid.bidderId, bid.amount, false, bid.receiptNo, bid.id);
    priv.push({ type: 'bid.ack', userId: bid.bidderId, bidId: bid.id, status: 'accepted', amount: bid.amount });
  } else {
    const own = s.proxies.find((p) => p.userId === bid.bidderId);
    if (s.leaderId === bid.bidderId) {
      // The leader raises (or sets) their own max: the price does not move.
      if (bid.amount <= Math.max(s.currentPrice, own?.maxAmount ?? 0)) return reject('bid_too_low');
    } else if (bid.amount < minNextBid(s)) {
      return reject('bid_too_low');
    }
    if (own) {
      own.maxAmount = bid.amount;
      own.placedOrder = bid.receiptNo;
      own.exhausted = false;
    } else {
      s.proxies.push({ userId: bid.bidderId, maxAmount: bid.amount, placedOrder: bid.receiptNo, exhausted: false });
    }
    priv.push({ type: 'autobid.ack', userId: bid.bidderId, autobidId: bid.id, status: 'accepted', maxAmount: bid.amount });
  }

  resolveProxies(s, place, bid, ctx.banned);

  // Anyone left behind by their own max is told once.
  const next = minNextBid(s);
  for (const p of s.proxies) {
    if (!p.exhausted && p.userId !== s.leaderId && p.maxAmount < next) {
      p.exhausted = true;
      priv.push({ type: 'autobid.exhausted', userId: p.userId, maxAmount: p.maxAmount });
    }
  }
  for (const userId of leaders) {
    if (userId !== s.leaderId) priv.push({ type: 'bid.outbid', userId, currentPrice: s.currentPrice });
  }
  if (s.endsAt !== previousEndsAt && s.endsAt !== null) {
    s.seq += 1;
    events.push({ type: 'auction.extended', seq: s.seq, at: bid.receivedAt, endsAt: s.endsAt });
  }
  return { state: s, verdict: { id: bid.id, status: 'accepted', ...(verdictSeq !== undefined ? { seq: verdictSeq } : {}) }, events, private: priv };
}

type Contender = { userId: string; max: number; order: number; proxy: boolean };

const stronger = (a: Contender, b: Contender) => a.max > b.max || (a.max === b.max && a.order < b.order);

function resolveProxies(
  s: AuctionState,
  place: (userId: string, amount: number, auto: boolean, order: number, bidId: string) => number,
  trigger: BidInput,
  banned: Bans,
): void {
  const autoId = (userId: string, n: number) => autoBidId(trigger.id, n, userId);
  let n = 0;
  // A banned user's bids are refused: their proxy bids no more (a lead they hold stays).
  const proxies = s.proxies.filter((p) => !banned.has(p.userId, trigger.receivedAt));
  const leaderProxy = s.leaderId ? proxies.find((p) => p.userId === s.leaderId && p.maxAmount >= s.currentPrice) : undefined;
  const leader: Contender | null =
    s.leaderId === null
      ? null
      : leaderProxy
        ? { userId: s.leaderId, max: leaderProxy.maxAmount, order: leaderProxy.placedOrder, proxy: true }
        : { userId: s.leaderId, max: s.currentPrice, order: s.leaderOrder, proxy: false };
  // A proxy contends if it could hold the lead: above the price (equal to it only
  // if placed before the leader), or at least the starting price with no leader.
  const contenders: Contender[] = proxies
    .filter((p) => p.userId !== s.leaderId)
    .map((p) => ({ userId: p.userId, max: p.maxAmount, order: p.placedOrder, proxy: true }))
    .filter((c) => (leader ? stronger(c, { ...leader, max: s.currentPrice }) : c.max >= s.startingPrice));
  if (leader) contenders.push(leader);
  if (contenders.length === 0) return;
  contenders.sort((a, b) => (stronger(a, b) ? -1 : stronger(b, a) ? 1 : 0));
  const [winner, second] = contenders as [Contender, Contender | undefined];
  // The reserve plays no part here: API.md's formula is the least needed to lead,
  // and "a leader may raise their own max at any time without raising the price".
  // A proxy that bid up to a hidden reserve would also show everyone where it is.

  if (!second) {
    // A lone proxy and no leader yet: it opens at the starting price.
    if (s.leaderId === null && winner.proxy) place(winner.userId, s.startingPrice, true, winner.order, autoId(winner.userId, n++));
  } else if (winner.userId === s.leaderId) {
    // The leader's proxy holds against the strongest challenger: the challenger's
    // proxy bids its max, the leader's answers just above (or equal, being earlier).
    if (second.proxy && second.max > s.currentPrice) {
      place(second.userId, second.max, true, second.order, autoId(second.userId, n++));
      const answer = Math.min(winner.max, second.max + increment(second.max, s.bidIncrement));
      place(winner.userId, answer, true, winner.order, autoId(winner.userId, n++));
    }
  } else {
    // A challenger's proxy takes the lead. The runner-up's proxy first goes to its max.
    if (second.proxy && second.max > s.currentPrice) {
      place(second.userId, second.max, true, second.order, autoId(second.userId, n++));
    }
    const floor = minNextBid(s);
    const target = second.max === winner.max ? winner.max : Math.min(winner.max, second.max + increment(second.max, s.bidIncrement));
    if (s.leaderId !== winner.userId) {
      place(winner.userId, Math.max(target, Math.min(floor, winner.max)), true, winner.order, autoId(winner.userId, n++));
    }
  }
}

export type LifecycleEvent =
  | { type: 'auction.started'; seq: number; at: number; startsAt: number; endsAt: number; currentPrice: number; minNextBid: number }
  | { type: 'auction.ended'; seq: number; at: number; winnerId: string | null; finalPrice: number; reserveMet: boolean };

/** Starts a scheduled auction at `now` for `durationSeconds`; null if it is not scheduled. */
export function startAuction(state: AuctionState, now: number, durationSeconds: number): { state: AuctionState; event: LifecycleEvent } | null {
  if (state.status !== 'scheduled') return null;
  const s = clone(state);
  s.status = 'live';
  s.startsAt = now;
  s.endsAt = now + durationSeconds * 1000;
  s.seq += 1;
  return {
    state: s,
    event: { type: 'auction.started', seq: s.seq, at: now, startsAt: now, endsAt: s.endsAt, currentPrice: s.currentPrice, minNextBid: minNextBid(s) },
  };
}

/**
 * Ends a live auction whose end has passed (`now >= endsAt`): the leader wins if
 * the reserve is met. Null when it is not live or not yet due. The caller must
 * have applied every bid received before `endsAt` first.
 */
export function closeAuction(state: AuctionState, now: number): { state: AuctionState; event: LifecycleEvent; winnerId: string | null } | null {
  if (state.status !== 'live' || state.endsAt === null || now < state.endsAt) return null;
  const s = clone(state);
  s.status = 'ended';
  s.seq += 1;
  const met = reserveMet(s);
  const winnerId = s.leaderId !== null && met ? s.leaderId : null;
  return {
    state: s,
    winnerId,
    event: { type: 'auction.ended', seq: s.seq, at: now, winnerId, finalPrice: s.currentPrice, reserveMet: met },
  };
}
