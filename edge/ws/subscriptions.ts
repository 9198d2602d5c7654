/**
 * Auction subscriptions on one broadcaster instance: `subscribe` answers
 * `subscribed` with the auction's current seq, replays every event after
 * `sinceSeq` from the auction's stream, then switches the socket to the live
 * topic, with no gap and no duplicate. While it replays, live events for the
 * auction are kept for it; it joins the topic only once the feed has delivered
 * everything it has been sent, so nothing arrives twice. History that is gone
 * (trimmed, or a wiped Redis), or a `sinceSeq` ahead of the auction, gets
 * `resync`: the client reloads by REST and subscribes again.
 */
import type uWS from 'uWebSockets.js';
import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import { auctionStream } from '../../queues/streams.js';
import { AuctionFeed, eventOf, type FeedEvent } from './auction-feed.js';

export interface Subscriber {
  send(text: string): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** False once the socket has closed (a replay may outlive it). */
  isOpen(): boolean;
}

interface Pending {
  sub: Subscriber;
  lastSent: number;
  replayed: boolean;
  /** A catchUp read is in flight. */
  catchingUp?: boolean;
}

export const auctionTopic = (auctionId: string) => `auction:${auctionId}`;

export class Subscriptions {
  private readonly pending = new Map<string, Set<Pending>>();
  /** The (socket, auction) pairs counted in the feed: each is removed once, only if added. */
  private readonly fed = new Map<Subscriber, Set<string>>();
  /** Called before each live publish (metrics). */
  onPublish?: (topic: string) => void;
  /**
   * Called when a socket that `subscribe` answered 'subscribed' gets `resync`
   * later (catchUp): it is no longer subscribed, and its owner must forget it, so
   * that the client can subscribe again.
   */
  onResync?: (sub: Subscriber, auctionId: string) => void;

  constructor(
    private readonly app: Pick<uWS.TemplatedApp, 'publish'>,
    private readonly db: Knex,
    private readonly redis: Redis,
    private readonly prefix: string,
    readonly feed: AuctionFeed,
    private readonly viewers: (auctionId: string) => number,
    /** The auction's events after `after` and before `before`, in seq order, from the outbox (see catchUp). */
    private readonly missing?: (auctionId: string, after: number, before: number) => Promise<FeedEvent[]>,
  ) {}

  /** The feed's delivery: the live topic first, then sockets still replaying. */
  deliver = (e: FeedEvent): void => {
    this.onPublish?.(auctionTopic(e.auctionId));
    this.app.publish(auctionTopic(e.auctionId), e.json);
    for (const p of this.pending.get(e.auctionId) ?? []) {
      // Only the event that follows what the socket was sent. A later one (the
      // feed already tracked the auction past the replay's start, or read a
      // stream whose older entries are gone) would leave a gap: the replay
      // sends the events in between from the stream first (see catchUp).
      if (e.seq === p.lastSent + 1) {
        if (p.sub.isOpen()) p.sub.send(e.json);
        p.lastSent = e.seq;
      }
      if (p.replayed) this.settle(e.auctionId, p);
    }
  };

  /**
   * Joins the live topic once the feed has caught up with what the socket was
   * sent, and the socket with what the feed has delivered (else catchUp).
   */
  private settle(auctionId: string, p: Pending): void {
    const last = this.feed.last(auctionId) ?? 0;
    if (last < p.lastSent) return;
    if (last > p.lastSent) {
      void this.catchUp(auctionId, p);
      return;
    }
    this.pending.get(auctionId)?.delete(p);
    if (this.pending.get(auctionId)?.size === 0) this.pending.delete(auctionId);
    if (p.sub.isOpen()) {
      p.sub.subscribe(auctionTopic(auctionId));
      this.feed.joined(auctionId);
    }
  }

  private addFeed(sub: Subscriber, auctionId: string, from: number): void {
    const set = this.fed.get(sub) ?? new Set<string>();
    if (set.has(auctionId)) return;
    set.add(auctionId);
    this.fed.set(sub, set);
    this.feed.add(auctionId, from);
  }

  private removeFeed(sub: Subscriber, auctionId: string): void {
    const set = this.fed.get(sub);
    if (!set?.delete(auctionId)) return;
    if (set.size === 0) this.fed.delete(sub);
    this.feed.remove(auctionId);
  }

  /**
   * 'subscribed' (replayed, now live), 'resync' (the socket must reload and
   * subscribe again: it is no longer subscribed), or 'not_found'. `wanted` says
   * whether the socket still wants this subscription: one it left (unsubscribe,
   * close) while the auction was being looked up gets nothing, and one it asked
   * for again meanwhile is the new call's (this one returns 'subscribed', having
   * done nothing).
   */
  async subscribe(sub: Subscriber, auctionId: string, sinceSeq: number | undefined, wanted: () => boolean = () => true): Promise<'subscribed' | 'resync' | 'not_found'> {
    const row = await this.db('auctions').where({ id: auctionId }).first('seq');
    if (!row) return 'not_found';
    const current = Number(row.seq);
    if (!sub.isOpen() || !wanted()) return 'subscribed';
    if (sinceSeq !== undefined && sinceSeq > current) {
      sub.send(JSON.stringify({ type: 'subscribed', auctionId, seq: current, viewers: this.viewers(auctionId) }));
      sub.send(JSON.stringify({ type: 'resync', auctionId }));
      return 'resync';
    }
    const start = sinceSeq ?? current;
    const p: Pending = { sub, lastSent: start, replayed: false };
    const set = this.pending.get(auctionId) ?? new Set<Pending>();
    set.add(p);
    this.pending.set(auctionId, set);
    this.addFeed(sub, auctionId, start);
    sub.send(JSON.stringify({ type: 'subscribed', auctionId, seq: current, viewers: this.viewers(auctionId) }));
    // Left meanwhile (unsubscribe or close; perhaps subscribed again since, as a
    // new pending entry; see replaying): this call has nothing more to do, and
    // must not undo what belongs to the new subscription.
    try {
      const entries = await this.readAfter(auctionId, start);
      const first = entries[0] ? eventOf(auctionId, entries[0]) : undefined;
      const lost = sinceSeq !== undefined && ((first && first.seq > start + 1) || (!first && current > start && (await this.streamStartsAfter(auctionId, start))));
      if (!this.replaying(auctionId, p)) return 'subscribed';
      if (lost) {
        this.resync(auctionId, p);
        return 'resync';
      }
      this.sendNext(auctionId, p, entries);
    } catch (err) {
      if (!this.replaying(auctionId, p)) return 'subscribed';
      this.stopReplay(auctionId, p);
      throw err;
    }
    p.replayed = true;
    this.settle(auctionId, p);
    return 'subscribed';
  }

  /**
   * The feed is past what a replaying socket was sent: it delivered the events
   * in between before the replay had sent them, or it was added at a seq read
   * from Postgres that the stream does not hold yet (a publish behind, for a
   * moment or until the sweeper). Sends the rest from the stream, or else from
   * the outbox (every seq up to the feed's is committed there), then settles.
   * Neither has them (history gone): resync.
   */
  private async catchUp(auctionId: string, p: Pending): Promise<void> {
    if (p.catchingUp) return;
    p.catchingUp = true;
    let complete = false;
    try {
      // Each step moves the socket on, or ends in resync.
      while ((this.feed.last(auctionId) ?? 0) > p.lastSent) {
        const entries = await this.readAfter(auctionId, p.lastSent);
        if (!this.replaying(auctionId, p)) return;
        const before = p.lastSent;
        this.sendNext(auctionId, p, entries);
        if (p.lastSent === before && this.missing) {
          const rows = await this.missing(auctionId, p.lastSent, (this.feed.last(auctionId) ?? 0) + 1);
          if (!this.replaying(auctionId, p)) return;
          for (const e of rows) {
            if (e.seq !== p.lastSent + 1) break;
            if (p.sub.isOpen()) p.sub.send(e.json);
            p.lastSent = e.seq;
          }
        }
        if (p.lastSent === before) break;
      }
      complete = (this.feed.last(auctionId) ?? 0) <= p.lastSent;
    } catch {
      // Redis failed: resync below, and the client subscribes again.
    } finally {
      p.catchingUp = false;
    }
    if (!this.replaying(auctionId, p)) return;
    if (complete) this.settle(auctionId, p);
    else {
      this.resync(auctionId, p);
      this.onResync?.(p.sub, auctionId);
    }
  }

  /** The auction's stream entries after `seq`. */
  private async readAfter(auctionId: string, seq: number): Promise<[string, string[]][]> {
    return (await this.redis.xrange(auctionStream(this.prefix, auctionId), `${seq + 1}-0`, '+')) as [string, string[]][];
  }

  /** Sends `entries` that follow on from what `p` was sent, in order; stops at a gap (history trimmed). */
  private sendNext(auctionId: string, p: Pending, entries: [string, string[]][]): void {
    for (const entry of entries) {
      const e = eventOf(auctionId, entry);
      if (e.seq <= p.lastSent) continue;
      if (e.seq !== p.lastSent + 1) break;
      if (p.sub.isOpen()) p.sub.send(e.json);
      p.lastSent = e.seq;
    }
  }

  /** Whether `p` still replays (its socket has not left the auction). */
  private replaying(auctionId: string, p: Pending): boolean {
    return this.pending.get(auctionId)?.has(p) ?? false;
  }

  /** Ends `p`'s replay: out of the pending set and the feed. */
  private stopReplay(auctionId: string, p: Pending): void {
    this.drop(auctionId, p);
    this.removeFeed(p.sub, auctionId);
  }

  /** Ends `p`'s replay with `resync`: the client reloads and subscribes again. */
  private resync(auctionId: string, p: Pending): void {
    this.stopReplay(auctionId, p);
    if (p.sub.isOpen()) p.sub.send(JSON.stringify({ type: 'resync', auctionId }));
  }

  /** True when the stream's oldest entry is past `seq + 1` (or the stream is empty while events exist). */
  private async streamStartsAfter(auctionId: string, seq: number): Promise<boolean> {
    const oldest = (await this.redis.xrange(auctionStream(this.prefix, auctionId), '-', '+', 'COUNT', 1)) as [string, string[]][];
    return oldest.length === 0 ? true : eventOf(auctionId, oldest[0]!).seq > seq + 1;
  }

  private drop(auctionId: string, p: Pending): void {
    this.pending.get(auctionId)?.delete(p);
    if (this.pending.get(auctionId)?.size === 0) this.pending.delete(auctionId);
  }

  /** Leaves an auction (unsubscribe or close). */
  unsubscribe(sub: Subscriber, auctionId: string): void {
    for (const p of this.pending.get(auctionId) ?? []) if (p.sub === sub) this.drop(auctionId, p);
    if (sub.isOpen()) sub.unsubscribe(auctionTopic(auctionId));
    this.removeFeed(sub, auctionId);
  }
}
