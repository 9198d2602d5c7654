import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { JOB_QUEUE, JOB_SCHEMAS, type JobName } from '../queues/jobs.js';
import { QUEUE_NAMES, isQueueName, queuePrefix, type QueueName } from '../queues/names.js';
import { closeForGood, connectionErrorLog, createRedis, isConnectionError, watchLiveness, type Redis } from '../lib/redis.js';
import type { WorkerContext } from './context.js';
import { HANDLERS, type Handler } from './registry.js';

/**
 * Jobs at once per queue in each process. A bid partition runs one drain at a
 * time (and, by its global concurrency of 1, one across all processes): drains
 * of one auction would only queue on its row lock, and batching is the lever.
 */
function concurrency(queue: QueueName): number {
  if (queue.startsWith('bids-')) return 1;
  return queue === 'auctions' ? 4 : 8;
}

function isJobName(name: string): name is JobName {
  return Object.hasOwn(HANDLERS, name);
}

/** Refuses to start when the job contract and the handler registry disagree. */
export function checkRegistry(): void {
  for (const name of Object.keys(JOB_QUEUE)) {
    if (!isJobName(name)) throw new Error(`job ${name} has no handler`);
  }
  if (!QUEUE_NAMES.every(isQueueName)) throw new Error('queue names disagree');
  for (const name of Object.keys(HANDLERS)) {
    if (!Object.hasOwn(JOB_QUEUE, name)) throw new Error(`handler ${name} has no queue`);
  }
}

async function runJob(ctx: WorkerContext, job: Job): Promise<unknown> {
  if (!isJobName(job.name)) throw new UnrecoverableError(`unknown job ${job.name}`);
  const name: JobName = job.name;
  const { error, value } = JOB_SCHEMAS[name].validate(job.data);
  if (error) throw new UnrecoverableError(`malformed ${name} payload: ${error.message}`);
  const handler = HANDLERS[name] as Handler<typeof name>;
  try {
    const result = await handler(ctx, value);
    ctx.metrics?.jobs.inc({ name, outcome: 'completed' });
    return result;
  } catch (err) {
    ctx.metrics?.jobs.inc({ name, outcome: 'failed' });
    throw err;
  }
}

export interface RunningWorkers {
  workers: Worker[];
  /** Waits for jobs in flight, then closes the workers' own connections. */
  close: () => Promise<void>;
  /**
   * With Redis gone: drops the workers' connections without waiting for anything
   * (a job in flight could not be marked done anyway; its lock lapses and another
   * worker runs it again, and every handler is idempotent).
   */
  abandon: () => Promise<void>;
}

/** Starts one BullMQ worker per queue in `queues`. */
export function startWorkers(ctx: WorkerContext, queues: readonly QueueName[] = QUEUE_NAMES): RunningWorkers {
  checkRegistry();
  const connections: Redis[] = [];
  // Redis away: the workers' connections report each failed reconnect; one log for all.
  const redisError = connectionErrorLog(ctx.logger);
  const workers = queues.map((queue) => {
    const connection = createRedis(ctx.config, 'blocking');
    connection.on('error', () => undefined); // reported through the worker's 'error' event
    // BullMQ blocks on a duplicate of it (with its own watchdog); this one carries
    // no blocking command, so it can be watched for going silent.
    watchLiveness(connection);
    connections.push(connection);
    const worker = new Worker(queue, (job) => runJob(ctx, job), {
      connection,
      prefix: queuePrefix(ctx.config.redis.prefix, queue),
      concurrency: concurrency(queue),
      // A bid partition admits one active job at a time, so a dead worker's job
      // blocks its partition until BullMQ sees it stalled: short locks (renewed
      // every 2.5 s by a live worker) bound that to about 10 s. A lock that lapses
      // under a busy event loop lets a second worker run the same drain, which is
      // harmless: drains are idempotent.
      ...(queue.startsWith('bids-') ? { lockDuration: 5_000, stalledInterval: 5_000, maxStalledCount: 100 } : {}),
    });
    worker.on('failed', (job, err) => ctx.logger.warn({ queue, jobId: job?.id, name: job?.name, err: err.message }, 'job failed'));
    worker.on('error', (err) => (isConnectionError(err) ? redisError(err, { queue }) : ctx.logger.error({ queue, err: err.message }, 'worker error')));
    return worker;
  });
  return {
    workers,
    close: async () => {
      // A worker closed while it is still connecting leaves BullMQ's start-up
      // running against closed connections (an unhandled 'error', or a hung exit).
      await Promise.all(workers.map((w) => w.waitUntilReady().catch(() => undefined)));
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
    },
    abandon: async () => {
      // BullMQ's own blocking duplicates cannot be closed while they wait to
      // reconnect (it waits for an 'end' that ioredis never emits then): the
      // caller exits the process instead (installShutdown's exitWhenDone).
      for (const c of connections) closeForGood(c);
    },
  };
}
