import type { Knex } from 'knex';
import type { Redis } from './redis.js';
import { within } from './within.js';

/**
 * Postgres and Redis reachability, as every role's /readyz reports it. Each check
 * has 2 s: a worker's Redis connection queues commands while it reconnects, so an
 * unbounded PING waited as long as Redis stayed away, and a probe got no answer.
 */
export async function readiness(deps: { db: Knex; redis: Redis }) {
  const check = async (fn: () => Promise<unknown>) => {
    try {
      await within(2_000, fn);
      return 'ok' as const;
    } catch {
      return 'down' as const;
    }
  };
  const [postgres, redis] = await Promise.all([check(() => deps.db.raw('select 1')), check(() => deps.redis.ping())]);
  return { ok: postgres === 'ok' && redis === 'ok', checks: { postgres, redis } };
}
