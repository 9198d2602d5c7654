import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOB_ID, JOB_QUEUE, JOB_SCHEMAS, type JobName, type JobPayloads } from './jobs.js';
import { BID_QUEUE_NAMES, QUEUE_NAMES, queuePrefix, type QueueName } from './names.js';
import { jobOptions } from './options.js';

/**
 * The producing side of the queues. `enqueue` validates the payload against the
 * contract, uses the job's deterministic id, and is always awaited: the edge's
 * connection has no offline queue, so when Redis is down it rejects at once.
 */
export class Producer {
  readonly queues: Map<QueueName, Queue>;

  constructor(connection: Redis, redisPrefix: string) {
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

  /** Adds the job; `delayMs` postpones it (timers). Returns the job id. */
  async enqueue<N extends JobName>(name: N, data: JobPayloads[N], delayMs = 0): Promise<string> {
    const { error } = JOB_SCHEMAS[name].validate(data);
    if (error) throw new Error(`invalid ${name} payload: ${error.message}`);
    const jobId = JOB_ID[name](data);
    await this.queue(JOB_QUEUE[name](data)).add(name, data, { jobId, ...(delayMs > 0 ? { delay: delayMs } : {}) });
    return jobId;
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
