/**
 * Procfile `worker`: BullMQ workers for every queue (WORKER_QUEUES narrows them),
 * and the sweeper. With WORKER_PORT set it also serves /healthz, /readyz and
 * /metrics (bid verdicts, bid→commit latency, drain batch sizes).
 */
import { metricsAllowed } from '../lib/metrics-token.js';
import http from 'node:http';
import { getConfigOrExit } from '../lib/env.js';
import { createLogger } from '../lib/logger.js';
import { closeForGood, connectionErrorLog, createRedis, waitForRedis, watchLiveness } from '../lib/redis.js';
import { within } from '../lib/within.js';
import { installShutdown } from '../lib/shutdown.js';
import { readiness } from '../lib/readiness.js';
import { createDb } from '../db/client.js';
import { QUEUE_NAMES, isQueueName, type QueueName } from '../queues/names.js';
import { Producer } from '../queues/producer.js';
import { settleDrains } from './handlers/bid-drain.js';
import { startWorkers } from './runner.js';
import { startSweeper } from './sweeper.js';
import { createWorkerMetrics } from './metrics.js';

const config = getConfigOrExit('worker');
const logger = createLogger('worker', config.logLevel);

const selected = (process.env.WORKER_QUEUES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const unknown = selected.filter((q) => !isQueueName(q));
if (unknown.length) {
  process.stderr.write(`worker: unknown queue(s) in WORKER_QUEUES: ${unknown.join(', ')}\n`);
  process.exit(1);
}
const queues = (selected.length ? selected : QUEUE_NAMES) as QueueName[];
const port = process.env.WORKER_PORT ? Number(process.env.WORKER_PORT) : null;
if (port !== null && !(Number.isInteger(port) && port >= 0 && port < 65536)) {
  process.stderr.write('worker: WORKER_PORT must be a port number\n');
  process.exit(1);
}

try {
  const redis = createRedis(config, 'blocking');
  const redisError = connectionErrorLog(logger);
  redis.on('error', (err) => redisError(err));
  watchLiveness(redis); // no blocking command is sent on it
  await waitForRedis(redis, 10_000);
  const db = createDb(config, { watchdog: true, logger });
  await db.raw('select 1');
  const producer = new Producer(redis, config.redis.prefix);
  await producer.limitBidPartitions();
  const metrics = createWorkerMetrics();
  const stopping = new AbortController();
  const ctx = { config, logger, db, redis, producer, metrics, stopping: stopping.signal };
  let server: http.Server | undefined;
  if (port !== null) {
    server = http.createServer((req, res) => {
      const send = (status: number, body: string, type = 'application/json') => {
        res.writeHead(status, { 'content-type': type, 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY' }).end(body);
      };
      if (req.url === '/healthz') return send(200, '{"status":"ok"}');
      if (req.url === '/metrics') {
        if (!metricsAllowed(config, req.headers.authorization)) return send(401, '{"error":{"code":"unauthorized","message":"metrics token required"}}');
        void metrics.registry.metrics().then(
          (text) => send(200, text, metrics.registry.contentType),
          (err: unknown) => {
            logger.warn({ err: (err as Error).message }, 'metrics not collected');
            send(500, '{"error":{"code":"internal","message":"metrics not collected"}}');
          },
        );
        return;
      }
      if (req.url === '/readyz') {
        void readiness({ db, redis }).then(({ ok, checks }) =>
          send(ok ? 200 : 503, JSON.stringify({ status: ok ? 'ready' : 'not_ready', checks })),
        );
        return;
      }
      send(404, '{"error":{"code":"not_found","message":"no such route"}}');
    });
    // Listening first, refused at once: a port in use was an 'error' event after
    // the workers had started, which nothing handled, and the process died.
    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(port, config.host, () => {
        listening.off('error', reject);
        // Later errors (an accept failing: EMFILE) are logged; they must not end the process.
        listening.on('error', (err) => logger.warn({ err: err.message }, 'worker http server error'));
        resolve();
      });
    });
  }
  const running = startWorkers(ctx, queues);
  const sweeper = startSweeper(ctx);
  // Signals are handled before the log line says the role is up.
  // With Redis gone when shutdown starts (its connection lost and retrying), the
  // steps that need it would wait for it until the deadline: they drop their
  // connections instead. Nothing is lost: bids are in Postgres, jobs in flight
  // are run again by a worker once Redis is back, and the sweeper re-enqueues
  // what a lost Redis forgot. The drain marks are Postgres's: recorded either way.
  // Decided once, at the start (a blip later must not make a healthy worker
  // abandon its jobs in flight), allowing a reconnect in progress 2 s.
  let redisOk = true;
  installShutdown(logger, config.shutdownGraceMs, [
    // Drains in flight stop after their current round (and hand over), so closing the workers does not wait for up to MAX_ROUNDS rounds.
    { name: 'drains', run: () => stopping.abort() },
    { name: 'http', run: () => new Promise<void>((r) => (server ? server.close(() => r()) : r())) },
    {
      name: 'redis check',
      run: async () => {
        redisOk = await waitForRedis(redis, 2_000).then(() => true, () => false);
        if (!redisOk) logger.warn('Redis is not answering: its connections are dropped, not closed; jobs in flight run again once it is back');
      },
    },
    { name: 'sweeper', run: () => sweeper.stop(redisOk) },
    // Worker.close waits for the jobs in flight to finish, then releases its connection.
    { name: 'workers', run: () => (redisOk ? running.close() : running.abandon()) },
    // The last drains' publish marks, recorded in the background (bid-drain.ts).
    { name: 'drain marks', run: () => settleDrains(ctx) },
    { name: 'queues', run: () => (redisOk ? producer.close() : undefined) },
    { name: 'redis', run: () => (redisOk ? within(1_000, () => redis.quit()).catch(() => closeForGood(redis)) : closeForGood(redis)) },
    { name: 'postgres', run: () => db.destroy() },
  ], () => !redisOk);
  logger.info({ queues: queues.length, port }, 'workers started');
} catch (err) {
  logger.fatal({ err }, 'worker failed to start');
  process.exit(1);
}
