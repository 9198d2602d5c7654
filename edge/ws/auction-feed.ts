/**
 * Live auction events for one broadcaster instance. It reads the Redis streams of
 * the auctions that have subscribers here (XREAD on all of them, from the last
 * seq it has seen of each) and hands every new event, in seq order, to `deliver`.
 * Every instance reads every stream it needs: fan-out, not competing consumers.
 *
 * Adding an auction interrupts the blocking read (CLIENT UNBLOCK) so the new
 * stream is read at once. After a reconnect, ioredis resends the read on the new
 * connection, whose id differs: the id is forgotten then, and an interrupt looks
 * it up by the reader's connection name (unique per instance). Resending must
 * stay on: without it, ioredis 5.11 neither answers nor fails the read in flight
 * (redis/ioredis#2193), and the feed would wait for it forever.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../../lib/logger.js';
import { closeForGood } from '../../lib/redis.js';
import { auctionStream } from '../../queues/streams.js';

export interface FeedEvent {
  auctionId: string;
  seq: number;
  /** The frame as stored: JSON text, sent to clients as is. */
  json: string;
}

type Entry = [id: string, fields: string[]];

export function seqOf(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

export function eventOf(auctionId: string, [id, fields]: Entry): FeedEvent {
  return { auctionId, seq: seqOf(id), json: fields[fields.indexOf('event') + 1] ?? '{}' };
}

/**
 * A blocking read on `reader` that blocks for seconds at most: if it has no
 * answer in 15 s, the connection is dead without having closed (no FIN: a
 * failover, a lost host) and would wait for the OS's keepalive, hours. It is
 * dropped and reconnected, and ioredis resends the read on the new connection.
 * (ioredis's own socketTimeout leaves a timer that keeps a stopped process alive.)
 */
export async function withWatchdog<T>(reader: Redis, read: Promise<T>, ms = 15_000): Promise<T> {
  const watchdog = setTimeout(() => reader.disconnect(true), ms);
  try {
    return await read;
  } finally {
    clearTimeout(watchdog);
  }
}

export class AuctionFeed {
  /**
   * Per auction: the last seq delivered (or, before any, the seq it was added
   * at), how many subscriptions want it, and whether it is live: a read has
   * delivered some of it, or a socket has joined its topic (see joined). Only
   * then is a gap one this instance fell behind on, which live subscribers would
   * miss; before, a first read from an old sinceSeq is the replay's business,
   * which answers resync.
   */
  private readonly tracked = new Map<string, { last: number; refs: number; live: boolean }>();
  private readerId: number | null = null;
  /** Bumped at each (re)connection of the reader: a lookup begun before one is stale. */
  private connection = 0;
  private stopping = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly reader: Redis,
    private readonly control: Redis,
    private readonly prefix: string,
    private readonly logger: Logger,
    private readonly deliver: (e: FeedEvent) => void,
    /**
     * The auction's events after `after` and before `before`, in seq order, from
     * the outbox: what the stream no longer holds when this instance fell more
     * than its MAXLEN behind (a reconnect, a stall, a burst).
     */
    private readonly missing?: (auctionId: string, after: number, before: number) => Promise<FeedEvent[]>,
    /**
     * A live auction's events that neither the stream nor the outbox gave (a gap
     * longer than the stream, Postgres failing): its live subscribers must be
     * told (resync) rather than skip them. Called before the event after the gap.
     */
    private readonly lost?: (auctionId: string) => void,
  ) {}

  start(): void {
    // A connection lost or new: its id is looked up again (see interrupt).
    const forget = () => {
      this.readerId = null;
      this.connection++;
    };
    this.reader.on('close', forget);
    this.reader.on('ready', forget);
    this.loop = this.run();
  }

  /** The last seq this instance delivered for the auction (undefined if untracked). */
  last(auctionId: string): number | undefined {
    return this.tracked.get(auctionId)?.last;
  }

  /** Starts reading the auction after `fromSeq` (if not read already). */
  add(auctionId: string, fromSeq: number): void {
    const t = this.tracked.get(auctionId);
    if (t) {
      t.refs++;
      return;
    }
    this.tracked.set(auctionId, { last: fromSeq, refs: 1, live: false });
    this.interrupt();
  }

  /**
   * A socket joined the auction's live topic: from now on a gap is filled (a
   * socket that subscribed at the auction's current seq joins at once, before
   * the first read: trimmed events before that read would have been skipped
   * silently).
   */
  joined(auctionId: string): void {
    const t = this.tracked.get(auctionId);
    if (t) t.live = true;
  }

  remove(auctionId: string): void {
    const t = this.tracked.get(auctionId);
    if (!t) return;
    if (--t.refs <= 0) this.tracked.delete(auctionId);
  }

  auctions(): string[] {
    return [...this.tracked.keys()];
  }

  private interrupt(): void {
    void (async () => {
      this.readerId ??= await this.lookUpReaderId();
      if (this.readerId !== null) await this.control.call('CLIENT', 'UNBLOCK', String(this.readerId));
    })().catch(() => undefined);
  }

  /**
   * The reader connection's id, found by its name from the control connection
   * (the reader may be blocked): the newest such connection (the server may
   * still hold a dead one), and none if the reader reconnected meanwhile.
   */
  private async lookUpReaderId(): Promise<number | null> {
    const name = this.reader.options.connectionName;
    if (!name || this.reader.status !== 'ready') return null;
    const connection = this.connection;
    const list = String(await this.control.call('CLIENT', 'LIST', 'TYPE', 'normal'));
    if (connection !== this.connection) return null;
    const ids = list
      .split('\n')
      .filter((l) => l.includes(` name=${name} `))
      .map((l) => Number(/(?:^|\s)id=(\d+)/.exec(l)?.[1]));
    return ids.length ? Math.max(...ids) : null;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      try {
        this.readerId ??= Number(await this.reader.client('ID'));
        const ids = this.auctions();
        if (ids.length === 0) {
          await new Promise((r) => setTimeout(r, 50));
          continue;
        }
        const keys = ids.map((id) => auctionStream(this.prefix, id));
        const from = ids.map((id) => `${this.tracked.get(id)!.last}-0`);
        const res = (await withWatchdog(this.reader, this.reader.xread('COUNT', 1000, 'BLOCK', 5000, 'STREAMS', ...keys, ...from))) as [string, Entry[]][] | null;
        for (const [key, entries] of res ?? []) {
          const auctionId = key.slice(key.lastIndexOf(':') + 1);
          const t = this.tracked.get(auctionId);
          if (!t) continue;
          for (const entry of entries) {
            const e = eventOf(auctionId, entry);
            if (e.seq <= t.last) continue;
            if (e.seq > t.last + 1 && t.live && this.missing) {
              // Trimmed before this instance read them: live subscribers would
              // miss them silently. Sent from the outbox first, in order (at most
              // the stream's length of them). If Postgres fails, skipped as
              // before, logged: the other auctions' events must not wait for it.
              const before = t.last;
              let filled: FeedEvent[] = [];
              try {
                filled = await this.missing(auctionId, before, e.seq);
              } catch (err) {
                this.logger.warn({ err: (err as Error).message, auctionId }, 'trimmed auction events not read from the outbox');
              }
              if (this.tracked.get(auctionId) !== t || t.last !== before) break;
              for (const m of filled) {
                if (m.seq !== t.last + 1) break;
                t.last = m.seq;
                this.deliver(m);
              }
              if (e.seq !== t.last + 1) {
                this.logger.warn({ auctionId, from: t.last + 1, to: e.seq - 1 }, 'auction events missed by this instance; its live subscribers get resync');
                this.lost?.(auctionId);
              }
            }
            t.last = e.seq;
            t.live = true;
            this.deliver(e);
          }
        }
      } catch (err) {
        if (this.stopping) break;
        this.readerId = null;
        this.logger.warn({ err: (err as Error).message }, 'auction feed read failed; retrying');
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.interrupt();
    closeForGood(this.reader);
    await this.loop;
  }
}
