/**
 * Bid intake at the edge: record durably, then wake a worker. Bids for one
 * auction that arrive while a write for it is in flight are grouped and written
 * together in one statement and one commit (group commit): no waiting when the
 * auction is quiet, fewer commits when it is hot. Within a group the receipt
 * order is the order this edge received them.
 */
import type { IntakeItem } from '../../../db/operations/auctions.js';
import { recordBids } from '../../../db/operations/auctions.js';
import type { EdgeDeps } from '../deps.js';

export type IntakeOutcome = 'recorded' | 'duplicate' | 'no_auction';

interface Pending {
  item: IntakeItem;
  resolve: (o: IntakeOutcome) => void;
  reject: (err: unknown) => void;
}

const MAX_GROUP = 500;

export class BidIntake {
  private readonly pending = new Map<string, Pending[]>();
  private readonly busy = new Set<string>();

  constructor(private readonly deps: Pick<EdgeDeps, 'db' | 'producer' | 'logger' | 'metrics'>) {}

  submit(auctionId: string, item: IntakeItem): Promise<IntakeOutcome> {
    return new Promise((resolve, reject) => {
      const list = this.pending.get(auctionId);
      if (list) list.push({ item, resolve, reject });
      else this.pending.set(auctionId, [{ item, resolve, reject }]);
      if (!this.busy.has(auctionId)) {
        this.busy.add(auctionId);
        // Let the requests already parsed in this turn of the event loop join.
        setImmediate(() => void this.drain(auctionId));
      }
    });
  }

  private async drain(auctionId: string): Promise<void> {
    for (;;) {
      const all = this.pending.get(auctionId) ?? [];
      const group = all.splice(0, MAX_GROUP);
      if (all.length === 0) this.pending.delete(auctionId);
      if (group.length === 0) {
        this.busy.delete(auctionId);
        return;
      }
      try {
        const inserted = await recordBids(this.deps.db, auctionId, group.map((p) => p.item));
        if (inserted === null) {
          for (const p of group) p.resolve('no_auction');
          continue;
        }
        this.deps.metrics.bidGroup.observe(group.length);
        // The next group may be recorded while this one's wake-up is enqueued; its
        // requests are answered once the enqueue has been tried.
        const woken = inserted.ids.size > 0 ? this.wake(auctionId, inserted.upTo) : Promise.resolve();
        void woken.then(() => {
          for (const p of group) p.resolve(inserted.ids.has(p.item.id) ? 'recorded' : 'duplicate');
        });
      } catch (err) {
        for (const p of group) p.reject(err);
      }
    }
  }

  /**
   * Enqueues the drain. The bids are already durable: if Redis refuses, the
   * worker's sweeper finds them within seconds, so the bid is still accepted.
   */
  private async wake(auctionId: string, upTo: number): Promise<void> {
    try {
      await this.deps.producer.enqueue('bid.drain', { auctionId, upTo });
    } catch (err) {
      this.deps.metrics.enqueueFailures.inc({ queue: 'bids' });
      this.deps.logger.warn({ err: (err as Error).message, auctionId }, 'drain not enqueued; the sweeper will pick the bids up');
    }
  }
}
