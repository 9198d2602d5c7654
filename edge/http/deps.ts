import type { Knex } from 'knex';
import type { Redis } from 'ioredis';
import type { Config } from '../../lib/env.js';
import type { Logger } from '../../lib/logger.js';
import type { KeySet } from '../../lib/jwt.js';
import type { Producer } from '../../queues/producer.js';
import type { EdgeMetrics } from './metrics.js';
import type { CatalogCache } from './services/cache.js';

/** Everything the edge app needs, built by main.ts (or a test) and passed in. */
export interface EdgeDeps {
  config: Config;
  logger: Logger;
  db: Knex;
  redis: Redis;
  producer: Producer;
  keys: KeySet;
  metrics: EdgeMetrics;
  cache: CatalogCache;
  /** Flipped to true when shutdown starts: /readyz then answers 503. */
  state: { shuttingDown: boolean };
}
