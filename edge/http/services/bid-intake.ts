/**
 * Bid intake at the edge: record durably, then wake a worker. Bids that arrive
 * while earlier ones are being written are grouped and written together (group
 * commit): no waiting when traffic is light, few commits when it is heavy.
 *
 * - One auction's bids are never in two writes at once, so this edge's receipt
 *   order for an auction is the order it received them.
 * - A write takes the pending bids of up to MAX_AUCTIONS auctions, in one
 *   statement (counters locked in id order, see recordBids). Up to MAX_WRITES
 *   writes run at once.
 * - After a write commits, the drain of each bid partition touched is woken
 *   (a job is added unless one is pending, see Producer.wakeDrain).
 */
import type { IntakeItem } from '../../../db/operations/auctions.js';
import { recordBids } from '../../../db/operations/auctions.js';
import { missingUserIds } from '../../../db/operations/users.js';
import type { JobPayloads } from '../../../queues/jobs.js';
import { bidPartition } from '../../../queues/names.js';
import type { EdgeDeps } from '../deps.js';

export type IntakeOutcome = 'recorded' | 'duplicate' | 'no_auction' | 'no_user';

interface Pending {
  item: IntakeItem;
  resolve: (o: IntakeOutcome) => void;
  reject: (err: unknown) => void;
}

const MAX_PER_AUCTION = 500;
const MAX_AUCTIONS = 100;
const MAX_WRITES = 6;

export class BidIntake {
  /** Pending bids per auction; a Map keeps the order auctions first arrived in. */
  private readonly pending = new Map<string, Pending[]>();
  private readonly writing = new Set<string>();
  private writes = 0;
  private scheduled = false;

  constructor(private readonly deps: Pick<EdgeDeps, 'db' | 'producer' | 'logger' | 'metrics'>) {}

  submit(auctionId: string, item: IntakeItem): Promise<IntakeOutcome> {
    return new Promise((resolve, reject) => {
      const list = this.pending.get(auctionId);
      if (list) list.push({ item, resolve, reject });
      else this.pending.set(auctionId, [{ item, resolve, reject }]);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.writes >= MAX_WRITES) return;
    this.scheduled = true;
    // Let the requests already parsed in this turn of the event loop join.
    setImmediate(() => {
      this.scheduled = false;
      while (this.writes < MAX_WRITES) {
        const take = this.take();
        if (take.length === 0) break;
        this.writes++;
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          this.writes--;
          for (const [auctionId] of take) this.writing.delete(auctionId);
          if (this.pending.size > 0) this.schedule();
        };
        void this.write(take, release).finally(release);
      }
    });
  }

  /** Up to MAX_AUCTIONS auctions that are not being written, with their pending bids. */
  private take(): [string, Pending[]][] {
    const out: [string, Pending[]][] = [];
    for (const [auctionId, list] of this.pending) {
      if (this.writing.has(auctionId)) continue;
      const group = list.splice(0, MAX_PER_AUCTION);
      if (list.length === 0) this.pending.delete(auctionId);
      this.writing.add(auctionId);
      out.push([auctionId, group]);
      if (out.length >= MAX_AUCTIONS) break;
    }
    return out;
  }

  /** Records `take`; calls `release` once the write has committed (its wake-up may still run). */
  private async write(take: [string, Pending[]][], release: () => void): Promise<void> {
    try {
      const results = await this.record(take);
      this.deps.metrics.bidGroup.observe(take.reduce((n, [, g]) => n + g.length, 0));
      // The next bids of these auctions may be recorded while this wake-up is enqueued.
      release();
      await this.wake(results);
      for (const [auctionId, group] of take) {
        const r = results.get(auctionId);
        for (const p of group) p.resolve(!r ? 'no_auction' : r.ids.has(p.item.id) ? 'recorded' : 'duplicate');
      }
    } catch (err) {
      for (const [, group] of take) for (const p of group) p.reject(err);
    }
  }

  /**
   * Records the bids of `take`. A bid whose bidder is no user (a valid token of
   * an account since removed) fails the whole statement on bids_bidder_fk: its
   * bids are answered 'no_user' and the others written without them, rather
   * than all failing with it. (Checked only then: no cost per bid.)
   */
  private async record(take: [string, Pending[]][]): Promise<Map<string, { ids: Set<string>; upTo: number }>> {
    const groups = (t: [string, Pending[]][]) => t.map(([auctionId, group]) => ({ auctionId, items: group.map((p) => p.item) }));
    try {
      return await recordBids(this.deps.db, groups(take));
    } catch (err) {
      if ((err as { constraint?: string }).constraint !== 'bids_bidder_fk') throw err;
      const gone = await missingUserIds(this.deps.db, [...new Set(take.flatMap(([, group]) => group.map((p) => p.item.bidderId)))]);
      if (gone.size === 0) throw err;
      const rest: [string, Pending[]][] = [];
      for (const [auctionId, group] of take) {
        for (const p of group) if (gone.has(p.item.bidderId)) p.resolve('no_user');
        const kept = group.filter((p) => !gone.has(p.item.bidderId));
        if (kept.length > 0) rest.push([auctionId, kept]);
      }
      return rest.length > 0 ? recordBids(this.deps.db, groups(rest)) : new Map();
    }
  }

  /**
   * One wake-up per partition touched. The bids are already durable: if Redis
   * refuses, the worker's sweeper finds them within seconds, so they still count.
   */
  private async wake(results: Map<string, { ids: Set<string>; upTo: number }>): Promise<void> {
    const jobs = new Map<number, JobPayloads['bid.drain']>();
    for (const [auctionId, r] of results) {
      if (r.ids.size > 0) jobs.set(bidPartition(auctionId), { auctionId, upTo: r.upTo });
    }
    try {
      await Promise.all([...jobs.values()].map((data) => this.deps.producer.wakeDrain(data)));
    } catch (err) {
      this.deps.metrics.enqueueFailures.inc({ queue: 'bids' });
      this.deps.logger.warn({ err: (err as Error).message }, 'drain not enqueued; the sweeper will pick the bids up');
    }
  }
}
