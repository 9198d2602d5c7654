import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import type { Config } from '../lib/env.js';
import type { Logger } from '../lib/logger.js';
import type { Producer } from '../queues/producer.js';
import type { WorkerMetrics } from './metrics.js';

/** What every job handler gets: pools, not per-job connections. */
export interface WorkerContext {
  config: Config;
  logger: Logger;
  db: Knex;
  /** A command connection (streams, locks). */
  redis: Redis;
  /** For jobs that schedule other jobs (timers). */
  producer: Producer;
  metrics?: WorkerMetrics;
  /** Aborted when the process is stopping: long jobs (drains) stop between steps and hand over. */
  stopping?: AbortSignal;
}
