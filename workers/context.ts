import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import type { Config } from '../lib/env.js';
import type { Logger } from '../lib/logger.js';

/** What every job handler gets: pools, not per-job connections. */
export interface WorkerContext {
  config: Config;
  logger: Logger;
  db: Knex;
  redis: Redis;
}
