import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Knex } from 'knex';
import type { Config } from '../../lib/env.js';
import type { Logger } from '../../lib/logger.js';
import { connectionErrorLog, createRedis, waitForRedis } from '../../lib/redis.js';
import { loadKeys } from '../../lib/jwt.js';
import { createDb } from '../../db/client.js';
import { Producer } from '../../queues/producer.js';
import { createApp } from './app.js';
import { createBidFastPath } from './fast-bids.js';
import { answerProtocolErrors } from './protocol-errors.js';
import { within } from '../../lib/within.js';
import { shutdownDelay } from '../../lib/shutdown.js';
import type { EdgeDeps } from './deps.js';
import { createEdgeMetrics, registerQueueGauge, registerQueuedBidsGauge } from './metrics.js';
import { CatalogCache } from './services/cache.js';

export interface RunningEdge {
  url: string;
  /** The Express app (tests walk its router). */
  app: ReturnType<typeof createApp>;
  port: number;
  deps: EdgeDeps;
  server: http.Server;
  /** Stop intake, let in-flight requests finish, then close queues and pools. */
  close: () => Promise<void>;
}

/**
 * Waits until no query is running or waiting for a connection (a handler whose
 * client hung up is still in flight), or `ms` passes.
 */
async function poolIdle(db: Knex, ms: number): Promise<void> {
  const pool = (db.client as { pool?: { numUsed(): number; numPendingAcquires(): number } }).pool;
  const until = Date.now() + ms;
  while (pool && (pool.numUsed() > 0 || pool.numPendingAcquires() > 0) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Builds the edge's dependencies and listens on config.port (0: any free port). */
export async function startEdge(config: Config, logger: Logger): Promise<RunningEdge> {
  const redis = createRedis(config, 'command');
  const redisError = connectionErrorLog(logger);
  redis.on('error', (err) => redisError(err));
  await waitForRedis(redis, 10_000);
  const db = createDb(config, { watchdog: true, logger });
  const metrics = createEdgeMetrics();
  const deps: EdgeDeps = {
    config,
    logger,
    db,
    redis,
    producer: new Producer(redis, config.redis.prefix),
    keys: loadKeys(config),
    metrics,
    cache: new CatalogCache(redis, config.redis.prefix, metrics, logger, config.catalogCache),
    state: { shuttingDown: false },
  };
  registerQueueGauge(metrics, deps.producer.queues);
  registerQueuedBidsGauge(metrics, db);
  const app = createApp(deps);
  const limitRedis = createRedis(config, 'command', { connectionName: 'blytz-limits', enableAutoPipelining: true });
  limitRedis.on('error', (err) => redisError(err, { connection: 'limits' }));
  // Connected before the edge listens: with no offline queue, checks sent while it
  // connects would fail open (let every bid through unlimited).
  await waitForRedis(limitRedis, 10_000);
  const fastBids = createBidFastPath(deps, app, limitRedis);
  // Responses still to be written; during shutdown they tell keep-alive clients
  // that the connection ends with them, so the server can finish closing.
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    if (deps.state.shuttingDown) res.setHeader('Connection', 'close');
    open.add(res);
    res.once('close', () => open.delete(res));
    if (!fastBids(req, res)) app(req, res);
  });
  answerProtocolErrors(server, config);
  // Slightly above common load balancer idle timeouts, so the LB closes first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    // Port taken, say: release what was opened so the caller can report and exit.
    await deps.producer.close().catch(() => undefined);
    redis.disconnect();
    limitRedis.disconnect();
    await db.destroy().catch(() => undefined);
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      deps.state.shuttingDown = true;
      // Still serving, /readyz 503, until the load balancer has taken this
      // instance out (SHUTDOWN_DELAY_MS); answers meanwhile close their connection.
      await shutdownDelay(logger, config.shutdownDelayMs);
      for (const res of open) if (!res.headersSent) res.setHeader('Connection', 'close');
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await drained;
      // With Redis unreachable, closing the queues would wait for a connection forever.
      await within(2_000, () => deps.producer.close()).catch((err: unknown) => logger.warn({ err: (err as Error).message }, 'queues not closed cleanly'));
      await within(1_000, () => redis.quit()).catch(() => redis.disconnect());
      await within(1_000, () => limitRedis.quit()).catch(() => limitRedis.disconnect());
      await poolIdle(db, 5_000);
      await db.destroy();
    })());
  return { url: `http://${host}:${port}`, port, app, deps, server, close };
}
