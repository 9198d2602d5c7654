/** Procfile `worker`: BullMQ workers for every queue (WORKER_QUEUES narrows them). */
import { getConfigOrExit } from '../lib/env.js';
import { createLogger } from '../lib/logger.js';
import { createRedis, waitForRedis } from '../lib/redis.js';
import { installShutdown } from '../lib/shutdown.js';
import { createDb } from '../db/client.js';
import { QUEUE_NAMES, type QueueName } from '../queues/names.js';
import { startWorkers } from './runner.js';

const config = getConfigOrExit('worker');
const logger = createLogger('worker', config.logLevel);

const selected = (process.env.WORKER_QUEUES ?? '').split(',').map((s) => s.trim()).filter(Boolean);
const unknown = selected.filter((q) => !(QUEUE_NAMES as readonly string[]).includes(q));
if (unknown.length) {
  process.stderr.write(`worker: unknown queue(s) in WORKER_QUEUES: ${unknown.join(', ')}\n`);
  process.exit(1);
}
const queues = (selected.length ? selected : QUEUE_NAMES) as QueueName[];

try {
  const redis = createRedis(config, 'blocking');
  await waitForRedis(redis, 10_000);
  const db = createDb(config);
  await db.raw('select 1');
  const running = startWorkers({ config, logger, db, redis }, queues);
  logger.info({ queues }, 'workers started');
  installShutdown(logger, config.shutdownGraceMs, [
    // Worker.close waits for the jobs in flight to finish, then releases its connection.
    { name: 'workers', run: running.close },
    { name: 'redis', run: () => redis.quit() },
    { name: 'postgres', run: () => db.destroy() },
  ]);
} catch (err) {
  logger.fatal({ err }, 'worker failed to start');
  process.exit(1);
}
