/**
 * The catalog's read-through cache in Redis, shared by every edge instance.
 *
 * Invalidation cannot be raced by a slow reader: each entry is guarded by a
 * generation counter. A reader notes the generation, reads Postgres, and stores
 * its result only if the generation has not moved meanwhile (one Lua script). A
 * writer commits, then bumps the generation and deletes the entry. So once a
 * write has returned, no reader can see (or store) the value from before it.
 *
 * When Redis is down, reads go straight to Postgres (logged), they do not fail.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../../../lib/logger.js';
import type { EdgeMetrics } from '../metrics.js';

const SET_IF_GENERATION = `
local current = redis.call('GET', KEYS[2]) or ''
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0`;

export const PRODUCT_TTL_SECONDS = 15 * 60;
export const LIST_TTL_SECONDS = 30;
export const CATEGORIES_TTL_SECONDS = 60;
const GENERATION_TTL_SECONDS = 24 * 3600;

export type CacheName = 'product' | 'product_list' | 'categories';

export class CatalogCache {
  private lastWarn = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly metrics: EdgeMetrics,
    private readonly logger: Logger,
    readonly enabled: boolean,
  ) {}

  private key(...parts: string[]) {
    return `${this.prefix}:cache:${parts.join(':')}`;
  }

  private warn(err: unknown) {
    const now = Date.now();
    if (now - this.lastWarn > 10_000) {
      this.lastWarn = now;
      this.logger.warn({ err: (err as Error).message }, 'cache unavailable: reading Postgres');
    }
  }

  private async readThrough<T>(
    cache: CacheName,
    dataKey: (generation: string) => string,
    generationKey: string,
    ttl: number,
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    if (!this.enabled) return load();
    let generation: string;
    try {
      generation = (await this.redis.get(generationKey)) ?? '';
      const hit = await this.redis.get(dataKey(generation));
      if (hit !== null) {
        this.metrics.cache.inc({ cache, result: 'hit' });
        return JSON.parse(hit) as T;
      }
    } catch (err) {
      this.metrics.cache.inc({ cache, result: 'error' });
      this.warn(err);
      return load();
    }
    this.metrics.cache.inc({ cache, result: 'miss' });
    const value = await load();
    if (value !== undefined) {
      try {
        await this.redis.eval(SET_IF_GENERATION, 2, dataKey(generation), generationKey, generation, JSON.stringify(value), ttl);
      } catch (err) {
        this.warn(err);
      }
    }
    return value;
  }

  product<T>(id: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    return this.readThrough('product', () => this.key('product', id), this.key('gen', 'product', id), PRODUCT_TTL_SECONDS, load);
  }

  /** A list page, keyed by its normalized query. */
  productList<T>(query: Record<string, unknown>, load: () => Promise<T>): Promise<T> {
    const hash = createHash('sha256').update(JSON.stringify(Object.entries(query).filter(([, v]) => v !== undefined).sort())).digest('base64url');
    const generationKey = this.key('gen', 'product_list');
    return this.readThrough('product_list', (g) => this.key('product_list', g, hash), generationKey, LIST_TTL_SECONDS, load) as Promise<T>;
  }

  categories<T>(load: () => Promise<T>): Promise<T> {
    return this.readThrough('categories', (g) => this.key('categories', g), this.key('gen', 'categories'), CATEGORIES_TTL_SECONDS, load) as Promise<T>;
  }

  /** After a product write commits: drop the product and every list page. */
  async invalidateProduct(id: string): Promise<void> {
    if (!this.enabled) return;
    const productGen = this.key('gen', 'product', id);
    const listGen = this.key('gen', 'product_list');
    await this.invalidate(`product ${id}`, PRODUCT_TTL_SECONDS, () =>
      this.redis.multi().incr(productGen).expire(productGen, GENERATION_TTL_SECONDS).del(this.key('product', id)).incr(listGen).exec(),
    );
  }

  async invalidateCategories(): Promise<void> {
    if (!this.enabled) return;
    await this.invalidate('categories', CATEGORIES_TTL_SECONDS, () => this.redis.incr(this.key('gen', 'categories')));
  }

  /**
   * Runs an invalidation after a write committed. If Redis errs (a blip: one that
   * was down has lost every entry anyway, keeping nothing on disk), it is retried
   * in the background, backing off up to 30 s, until it succeeds or the entries it
   * drops have expired (`ttlSeconds`): until then an edge may serve the value from
   * before the write. The write itself has succeeded and is answered as such.
   */
  private async invalidate(what: string, ttlSeconds: number, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
      return;
    } catch (err) {
      this.logger.error({ err: (err as Error).message, what }, 'cache invalidation failed; retrying in the background');
    }
    const until = Date.now() + ttlSeconds * 1000;
    let delay = 250;
    const retry = () => {
      setTimeout(() => {
        run().then(
          () => this.logger.info({ what }, 'cache invalidated after a retry'),
          () => {
            delay = Math.min(delay * 2, 30_000);
            if (Date.now() + delay < until) retry();
            else this.logger.error({ what }, 'cache invalidation abandoned: the entries have expired');
          },
        );
      }, delay).unref();
    };
    retry();
  }
}
