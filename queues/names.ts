/**
 * Queue names: never renamed without a migration of the jobs in them.
 *
 * - `bids-0` … `bids-{N-1}`: bid drains, partitioned by auction
 *   (`bidQueueFor`); each is processed by one consumer at a time (global
 *   concurrency 1), different partitions in parallel.
 * - `auctions`: lifecycle timers (start at `startsAt`, close at `endsAt`).
 * - `notifications`: courtesy messages to users.
 *
 * Each queue's BullMQ prefix puts the queue name in braces (`blytz:{bids-3}`) so
 * all of a queue's keys share one Redis Cluster hash slot.
 */
/**
 * Bids store their auction's partition (`bids.partition`, from bidPartition at
 * intake). Rounds look for queued bids by it, and read an auction's queued bids
 * in the partition of its newest bid: a change of this number must re-partition
 * the queued bids in the same release (an auction's newest bid is queued if any
 * is).
 */
// Why 8: a partition is one consumer at a time, so this bounds how many
// auctions' drains run in parallel across all workers; and a worker process
// merges its partitions' drains into shared rounds (bid-drain.ts), so more
// partitions buy parallelism only with more worker processes. 8 lets up to 8
// processes each own a busy partition, while a hot auction (one partition) is
// unaffected; each partition costs a BullMQ worker (two Redis connections) per
// worker process, so far more would cost connections for nothing on 1-4 workers.
export const BID_PARTITIONS = 8;

export type BidQueueName = `bids-${number}`;
export type QueueName = 'notifications' | 'auctions' | BidQueueName;

export const BID_QUEUE_NAMES: BidQueueName[] = Array.from({ length: BID_PARTITIONS }, (_, i) => `bids-${i}` as const);
export const QUEUE_NAMES: readonly QueueName[] = ['auctions', 'notifications', ...BID_QUEUE_NAMES];

export function isQueueName(name: string): name is QueueName {
  return (QUEUE_NAMES as readonly string[]).includes(name);
}

export function queuePrefix(redisPrefix: string, queue: QueueName): string {
  return `${redisPrefix}:{${queue}}`;
}

/** FNV-1a over the id: a stable partition for an auction, the same in every process. */
export function bidPartition(auctionId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < auctionId.length; i++) {
    h ^= auctionId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % BID_PARTITIONS;
}

export function bidQueueFor(auctionId: string): BidQueueName {
  return `bids-${bidPartition(auctionId)}`;
}
