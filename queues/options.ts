import type { JobsOptions } from 'bullmq';
import type { QueueName } from './names.js';

/**
 * Default job options per queue, chosen on purpose:
 * - bid drains: correctness never depends on job order or count (a drain applies
 *   whatever is queued in Postgres, in receipt order, under the auction's row
 *   lock), so a failed drain may simply retry with a short backoff; completed
 *   drains are trimmed fast (they are many and carry nothing). 5 attempts 200 ms
 *   apart ride out a second of trouble (a deadlock, a failover); past that the
 *   sweeper re-enqueues a drain for any bid queued over 2 s, so a drain that
 *   failed for good loses nothing.
 * - auction timers: retried with backoff; they re-check the auction when they
 *   run. 10 attempts, exponential from 500 ms: retries over about 4 minutes, longer
 *   than a Postgres restart; the sweeper re-arms an overdue timer after that.
 * - notifications: idempotent, retried with exponential backoff (5 attempts from
 *   1 s: retries over ~15 s); the sweeper pushes a stored one whose push failed.
 * Lock durations (workers/runner.ts): bid partitions 5 s (a dead worker's drain
 * blocks its partition until stalled); auctions and notifications keep BullMQ's
 * 30 s, as their jobs are short, independent and idempotent, and a stalled one
 * only runs again later.
 * Failed jobs are kept (bounded) for inspection: never `removeOnFail: true`.
 */
export function jobOptions(queue: QueueName): JobsOptions {
  if (queue.startsWith('bids-')) {
    return {
      attempts: 5,
      backoff: { type: 'fixed', delay: 200 },
      removeOnComplete: { count: 200 },
      removeOnFail: { count: 5_000, age: 7 * 24 * 3_600 },
    };
  }
  if (queue === 'auctions') {
    return {
      attempts: 10,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { count: 1_000, age: 24 * 3_600 },
      removeOnFail: { count: 5_000, age: 7 * 24 * 3_600 },
    };
  }
  return {
    attempts: 5,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { count: 1_000, age: 3_600 },
    removeOnFail: { count: 10_000, age: 7 * 24 * 3_600 },
  };
}
