/**
 * Shared fixtures for the auction engine tests: an auction state builder and a
 * runner that feeds requests to `applyBid` in receipt order, the way the worker does.
 */
import {
  applyBid,
  type ApplyResult,
  type AuctionState,
  type BidInput,
  type Context,
  type PrivateEvent,
  type PublicEvent,
} from '../../auction/engine.js';

export const SELLER = 'seller';
export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
export const HOUR = 3_600_000;

export function auction(over: Partial<AuctionState> = {}): AuctionState {
  return {
    id: 'auction-1',
    sellerId: SELLER,
    status: 'live',
    startingPrice: 100,
    reservePrice: null,
    bidIncrement: null,
    currentPrice: over.startingPrice ?? 100,
    leaderId: null,
    leaderOrder: 0,
    bidCount: 0,
    endsAt: T0 + HOUR,
    softCloseSeconds: 30,
    seq: 1, // auction.started
    proxies: [],
    ...over,
  };
}

/** A request: `[kind, user, amount]`, optionally with its receipt time. */
export type Step = ['bid' | 'autobid', string, number] | ['bid' | 'autobid', string, number, { at: number }];

export function ctxFor(banned: Iterable<string> = [], users: Iterable<string> = []): Context {
  return { banned: new Set(banned), names: new Map([...users].map((u) => [u, nameOf(u)])) };
}

export const nameOf = (u: string) => `Name of ${u}`;

export interface Run {
  state: AuctionState;
  results: ApplyResult[];
  events: PublicEvent[];
  private: PrivateEvent[];
  inputs: BidInput[];
}

/**
 * Applies the steps in order; receipt numbers continue from `firstReceipt`, receipt
 * times default to one second apart from T0.
 */
export function run(start: AuctionState, steps: readonly Step[], ctx: Context = ctxFor(), firstReceipt = 1): Run {
  let state = start;
  const results: ApplyResult[] = [];
  const inputs: BidInput[] = [];
  steps.forEach((step, i) => {
    const [kind, user, amount] = step;
    const receiptNo = firstReceipt + i;
    const input: BidInput = {
      id: `${kind === 'bid' ? 'bid' : 'autobid'}-${receiptNo}`,
      kind,
      bidderId: user,
      bidderName: nameOf(user),
      amount,
      receivedAt: step[3]?.at ?? T0 + receiptNo * 1000,
      receiptNo,
    };
    inputs.push(input);
    const r = applyBid(state, input, ctx);
    results.push(r);
    state = r.state;
  });
  return {
    state,
    results,
    inputs,
    events: results.flatMap((r) => r.events),
    private: results.flatMap((r) => r.private),
  };
}

/** The public `bid.placed` events as `[bidderId, amount, auto]`. */
export function placed(events: readonly PublicEvent[]): [string, number, boolean][] {
  return events.flatMap((e) => (e.type === 'bid.placed' ? [[e.bidderId, e.amount, e.auto] as [string, number, boolean]] : []));
}

/** The private events other than acks, as `[type, userId]`. */
export function notices(priv: readonly PrivateEvent[]): [string, string][] {
  return priv.filter((p) => p.type !== 'bid.ack' && p.type !== 'autobid.ack').map((p) => [p.type, p.userId]);
}
