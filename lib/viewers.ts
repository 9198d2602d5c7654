/**
 * Viewer counts across broadcaster instances, in Redis. Each instance writes its
 * own count of viewers per auction every second to a key that expires in 15 s,
 * and lists itself in the auction's instance set; the total is the sum of the
 * live keys. An instance that dies stops refreshing and its viewers vanish from
 * the total within 15 s (no ghosts). Peak is a running maximum; unique viewers
 * are a HyperLogLog of user ids (or connection ids for anonymous viewers).
 */
import type { Redis } from 'ioredis';

export const INSTANCE_TTL_MS = 15_000;

const key = (prefix: string, auctionId: string, part: string) => `${prefix}:viewers:{${auctionId}}:${part}`;

// KEYS: instances set, peak. ARGV: instance-key prefix. Sums live instance keys,
// forgets dead instances, raises the peak (kept 7 days after the last look). Returns {current, peak}.
const TOTAL = `
local total = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local n = redis.call('GET', ARGV[1] .. id)
  if n then total = total + tonumber(n) else redis.call('SREM', KEYS[1], id) end
end
local peak = tonumber(redis.call('GET', KEYS[2]) or '0')
if total > peak then peak = total; redis.call('SET', KEYS[2], peak, 'PX', 604800000)
elseif peak > 0 then redis.call('PEXPIRE', KEYS[2], 604800000) end
return {total, peak}`;

/** Writes this instance's count for an auction (0 removes it). */
export async function reportViewers(redis: Redis, prefix: string, auctionId: string, instance: string, count: number): Promise<void> {
  const k = key(prefix, auctionId, `i:${instance}`);
  if (count <= 0) {
    await redis.multi().del(k).srem(key(prefix, auctionId, 'instances'), instance).exec();
    return;
  }
  await redis
    .multi()
    .set(k, count, 'PX', INSTANCE_TTL_MS)
    .sadd(key(prefix, auctionId, 'instances'), instance)
    .pexpire(key(prefix, auctionId, 'instances'), 24 * 3_600_000)
    .exec();
}

export async function viewerTotals(redis: Redis, prefix: string, auctionId: string): Promise<{ current: number; peak: number }> {
  const [current, peak] = (await redis.eval(TOTAL, 2, key(prefix, auctionId, 'instances'), key(prefix, auctionId, 'peak'), key(prefix, auctionId, 'i:'))) as [number, number];
  return { current, peak };
}

/** How long an auction's unique-viewer count outlives its last new viewer. */
const UNIQUE_TTL_MS = 7 * 24 * 3_600_000;

export async function addUniqueViewer(redis: Redis, prefix: string, auctionId: string, viewer: string): Promise<void> {
  await redis.multi().pfadd(key(prefix, auctionId, 'unique'), viewer).pexpire(key(prefix, auctionId, 'unique'), UNIQUE_TTL_MS).exec();
}

export async function viewerStats(redis: Redis, prefix: string, auctionId: string): Promise<{ current: number; peak: number; unique: number }> {
  const [totals, unique] = await Promise.all([viewerTotals(redis, prefix, auctionId), redis.pfcount(key(prefix, auctionId, 'unique'))]);
  return { ...totals, unique };
}
