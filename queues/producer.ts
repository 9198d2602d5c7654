import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JOB_ID, JOB_QUEUE, JOB_SCHEMAS, type JobName, type JobPayloads } from './jobs.js';
import { QUEUE_NAMES, queuePrefix, type QueueName } from './names.js';
import { QUEUE_JOB_OPTIONS } from './options.js';

/**
 * The edge's side of the queues. `enqueue` validates the payload against the
 * contract, uses the job's deterministic id, and is always awaited: the
 * connection has no offline queue, so when Redis is down it rejects at once and
 * the edge answers 503 instead of acknowledging work it did not store.
 */
export class Producer {
  readonly queues: Map<QueueName, Queue>;

  constructor(connection: Redis, redisPrefix: string) {
    this.queues = new Map(
      QUEUE_NAMES.map((name) => [
        name,
        new Queue(name, {
          connection,
          prefix: queuePrefix(redisPrefix, name),
          defaultJobOptions: QUEUE_JOB_OPTIONS[name],
        }),
      ]),
    );
  }

  async enqueue<N extends JobName>(name: N, data: JobPayloads[N]): Promise<string> {
    const { error } = JOB_SCHEMAS[name].validate(data);
    if (error) throw new Error(`invalid ${name} payload: ${error.message}`);
    const queue = this.queues.get(JOB_QUEUE[name]);
    if (!queue) throw new Error(`no queue for ${name}`);
    const jobId = JOB_ID[name](data);
    await queue.add(name, data, { jobId });
    return jobId;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
