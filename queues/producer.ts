import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOB_ID, JOB_QUEUE, JOB_SCHEMAS, type JobName, type JobPayloads } from './jobs.js';
import { BID_QUEUE_NAMES, QUEUE_NAMES, bidQueueFor, queuePrefix, type QueueName } from './names.js';
import { jobOptions } from './options.js';

/**
 * How long a partition's wake-up flag lasts without a drain taking it: a lost
 * job (its add failed after the flag was set) holds wake-ups back this long at
 * most, and a drain that waits longer than this gets company (harmless).
 */
export const WAKE_TTL_MS = 5_000;

/**
 * The producing side of the queues. `enqueue` validates the payload against the
 * contract, uses the job's deterministic id, and is always awaited: the edge's
 * connection has no offline queue, so when Redis is down it rejects at once.
 */
export class Producer {
  readonly queues: Map<QueueName, Queue>;

  constructor(
    private readonly connection: Redis,
    private readonly redisPrefix: string,
  ) {
    this.queues = new Map(
      QUEUE_NAMES.map((name) => [
        name,
        new Queue(name, { connection, prefix: queuePrefix(redisPrefix, name), defaultJobOptions: jobOptions(name) }),
      ]),
    );
  }

  queue(name: QueueName): Queue {
    const q = this.queues.get(name);
    if (!q) throw new Error(`no queue ${name}`);
    return q;
  }

  /**
   * Adds jobs of one queue in one round trip (addBulk), each as `enqueue` would
   * (validated, its deterministic id, its delay). Returns their ids.
   */
  async enqueueMany<N extends JobName>(name: N, jobs: { data: JobPayloads[N]; delayMs: number }[]): Promise<string[]> {
    if (jobs.length === 0) return [];
    const queues = new Set(jobs.map((j) => JOB_QUEUE[name](j.data)));
    if (queues.size !== 1) throw new Error(`enqueueMany: ${name} jobs for more than one queue`);
    const entries = jobs.map(({ data, delayMs }) => {
      const { error } = JOB_SCHEMAS[name].validate(data);
      if (error) throw new Error(`invalid ${name} payload: ${error.message}`);
      return { name, data, opts: { ...jobOptions(JOB_QUEUE[name](data)), jobId: JOB_ID[name](data), ...(delayMs > 0 ? { delay: delayMs } : {}) } };
    });
    await this.queue([...queues][0]!).addBulk(entries);
    return entries.map((e) => e.opts.jobId);
  }

  /** Adds the job; `delayMs` postpones it (timers). Returns the job id. */
  async enqueue<N extends JobName>(name: N, data: JobPayloads[N], delayMs = 0): Promise<string> {
    const { error } = JOB_SCHEMAS[name].validate(data);
    if (error) throw new Error(`invalid ${name} payload: ${error.message}`);
    const jobId = JOB_ID[name](data);
    await this.queue(JOB_QUEUE[name](data)).add(name, data, { jobId, ...(delayMs > 0 ? { delay: delayMs } : {}) });
    return jobId;
  }

  /**
   * Wakes the drain of `data.auctionId`'s partition unless a wake-up is already
   * pending there: a flag in the partition's slot, set here and cleared by the
   * drain before it looks for queued bids (clearWake). Bids committed before a
   * skipped wake-up are therefore seen by the pending drain. Without it, every
   * group of bids recorded woke every partition it touched: thousands of jobs a
   * second that found nothing to do. Returns whether a job was added.
   */
  async wakeDrain(data: JobPayloads['bid.drain']): Promise<boolean> {
    const flag = this.wakeKey(bidQueueFor(data.auctionId));
    if ((await this.connection.set(flag, '1', 'PX', WAKE_TTL_MS, 'NX')) !== 'OK') return false;
    try {
      await this.enqueue('bid.drain', data);
    } catch (err) {
      // No job behind the flag: take it down so the next wake-up adds one.
      await this.connection.del(flag).catch(() => undefined);
      throw err;
    }
    return true;
  }

  /** A drain of `queue` is about to look for queued bids: the next wake-up must add a job. */
  async clearWake(queue: QueueName): Promise<void> {
    await this.connection.del(this.wakeKey(queue));
  }

  /** The wake-up flag of a bid partition, in its queue's cluster slot. */
  private wakeKey(queue: QueueName): string {
    return `${queuePrefix(this.redisPrefix, queue)}:wake`;
  }

  /**
   * One consumer at a time per bid partition, across every worker process. Kept
   * in Redis, so it is re-applied periodically (a wiped Redis forgets it).
   */
  async limitBidPartitions(): Promise<void> {
    await Promise.all(BID_QUEUE_NAMES.map((name) => this.queue(name).setGlobalConcurrency(1)));
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
