/**
 * Engine events → the WebSocket frames of API.md (timestamps as ISO strings).
 * Pure, shared by the worker (which stores them in the outbox) and tests.
 */
import type { LifecycleEvent, PrivateEvent, PublicEvent } from './engine.js';

const iso = (ms: number) => new Date(ms).toISOString();

const serialized = new WeakMap<object, string>();

/**
 * A frame's JSON, made once per frame object: a round's frames go both to the
 * outbox (Postgres) and to the streams (Redis), and this is the hot path. Frames
 * are never changed once made.
 */
export function frameJson(frame: unknown): string {
  if (typeof frame !== 'object' || frame === null) return JSON.stringify(frame);
  let json = serialized.get(frame);
  if (json === undefined) serialized.set(frame, (json = JSON.stringify(frame)));
  return json;
}

export interface AuctionFrame {
  type: string;
  auctionId: string;
  seq: number;
  at: string;
  [k: string]: unknown;
}

export function publicFrame(auctionId: string, e: PublicEvent | LifecycleEvent): AuctionFrame {
  switch (e.type) {
    case 'bid.placed':
      return {
        type: e.type,
        auctionId,
        seq: e.seq,
        at: iso(e.at),
        bidId: e.bidId,
        bidderId: e.bidderId,
        bidderName: e.bidderName,
        amount: e.amount,
        auto: e.auto,
        currentPrice: e.currentPrice,
        minNextBid: e.minNextBid,
        leaderId: e.leaderId,
        bidCount: e.bidCount,
        endsAt: iso(e.endsAt),
      };
    case 'auction.extended':
      return { type: e.type, auctionId, seq: e.seq, at: iso(e.at), endsAt: iso(e.endsAt) };
    case 'auction.started':
      return { type: e.type, auctionId, seq: e.seq, at: iso(e.at), startsAt: iso(e.startsAt), endsAt: iso(e.endsAt), currentPrice: e.currentPrice, minNextBid: e.minNextBid };
    case 'auction.ended':
      return { type: e.type, auctionId, seq: e.seq, at: iso(e.at), winnerId: e.winnerId, finalPrice: e.finalPrice, reserveMet: e.reserveMet };
  }
}

export function privateFrame(auctionId: string, e: PrivateEvent): { userId: string; frame: { type: string; [k: string]: unknown } } {
  switch (e.type) {
    case 'bid.ack':
      return { userId: e.userId, frame: { type: e.type, bidId: e.bidId, auctionId, status: e.status, ...(e.reason ? { reason: e.reason } : {}), amount: e.amount } };
    case 'autobid.ack':
      return { userId: e.userId, frame: { type: e.type, autobidId: e.autobidId, auctionId, status: e.status, ...(e.reason ? { reason: e.reason } : {}), maxAmount: e.maxAmount } };
    case 'bid.outbid':
      return { userId: e.userId, frame: { type: e.type, auctionId, currentPrice: e.currentPrice } };
    case 'autobid.exhausted':
      return { userId: e.userId, frame: { type: e.type, auctionId, maxAmount: e.maxAmount } };
  }
}
