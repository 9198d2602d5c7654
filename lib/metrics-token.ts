import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from './env.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Whether a request may read /metrics: always when METRICS_TOKEN is unset, else
 * with `Authorization: Bearer <METRICS_TOKEN>` (compared in constant time). The
 * web edge, the broadcaster and the worker all answer /metrics this way.
 */
export function metricsAllowed(config: Pick<Config, 'metricsToken'>, authorization: string | undefined): boolean {
  if (!config.metricsToken) return true;
  return authorization !== undefined && timingSafeEqual(digest(authorization), digest(`Bearer ${config.metricsToken}`));
}
