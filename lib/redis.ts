import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from './env.js';
import type { Logger } from './logger.js';
import { SOCKET_ERROR_CODES } from './errors.js';

export type { Redis };

/**
 * A Redis connection. `kind` picks the options BullMQ and the edge need:
 * - `command`: request-path commands; fails fast when Redis is down
 *   (no offline queue) so the edge answers 503 instead of hanging.
 * - `blocking`: BullMQ workers (maxRetriesPerRequest null, as BullMQ requires).
 *
 * A `command` connection is watched for going silent (see watchLiveness). A
 * `blocking` one is not, as a probe would wait behind a blocked read: its owner
 * calls watchLiveness when it issues none (BullMQ's main connection), and the
 * blocking reads carry their own watchdog (BullMQ's, and withWatchdog's).
 */
export function createRedis(config: Config, kind: 'command' | 'blocking' = 'command', extra: RedisOptions = {}): Redis {
  const options: RedisOptions = {
    connectionName: `blytz-${kind}`,
    lazyConnect: false,
    maxRetriesPerRequest: kind === 'blocking' ? null : 1,
    enableOfflineQueue: kind === 'blocking',
    connectTimeout: 3_000,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...extra,
  };
  const redis = config.redis.url
    ? new Redis(config.redis.url, options)
    : new Redis({ host: config.redis.host, port: config.redis.port, password: config.redis.password ?? undefined, ...options });
  if (kind === 'command') watchLiveness(redis);
  return redis;
}

/**
 * Drops and remakes a connection that has gone silent. A lost host, a network
 * partition, or a failover behind a load balancer can leave a connection that
 * neither answers nor closes; the kernel's keepalive would find it after hours,
 * and meanwhile every command sent on it waits (on the edge: every bid request).
 * So every `everyMs` a PING is sent; with no answer within `timeoutMs` the
 * connection is dropped and made again. A new connection whose ready check has
 * no answer within `timeoutMs` (accepted, then silent) is dropped the same way.
 *
 * The commands that were waiting fail ("no answer"), and are not sent again on
 * the new connection as ioredis would: Redis may have been stalled rather than
 * gone, and have run them, and a rate-limit count, an XADD or a BullMQ move must
 * not run twice. Requests that waited on the silent connection thus fail after
 * at most `everyMs + timeoutMs`; while it reconnects, a `command` connection
 * refuses new commands at once (no offline queue): the edge answers 503.
 *
 * The timeout is far above any command this code sends on such a connection
 * (none blocks), so a slow Redis is rarely taken for a dead one. The timers do
 * not keep a process alive, and stop when the connection is closed for good.
 */
export function watchLiveness(redis: Redis, everyMs = 3_000, timeoutMs = 7_000): void {
  const drop = () => {
    flushQueue(redis, new Error(`no answer from Redis in ${timeoutMs} ms: connection dropped`));
    redis.disconnect(true);
  };
  let probing = false;
  let connectedAt: number | null = null;
  const timer = setInterval(() => {
    // Connected, and its ready check unanswered: ioredis gives that no deadline.
    if (redis.status === 'connect') {
      connectedAt ??= Date.now();
      if (Date.now() - connectedAt > timeoutMs) {
        connectedAt = null;
        drop();
      }
      return;
    }
    connectedAt = null;
    if (probing || redis.status !== 'ready') return;
    probing = true;
    const socket = redis.stream;
    const deadline = setTimeout(() => {
      if (redis.stream === socket && redis.status === 'ready') drop();
    }, timeoutMs);
    deadline.unref();
    redis
      .ping()
      .catch(() => undefined)
      .finally(() => {
        probing = false;
        clearTimeout(deadline);
      });
  }, everyMs);
  timer.unref();
  redis.once('end', () => clearInterval(timer));
}

/** Resolves when the connection is ready, or rejects after `ms`. */
export async function waitForRedis(redis: Redis, ms = 5_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`redis not ready after ${ms} ms`));
    }, ms);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/** Fails every command the connection holds (sent or queued); ioredis has no public call for it. */
function flushQueue(redis: Redis, err: Error): void {
  (redis as unknown as { flushQueue: (err: Error) => void }).flushQueue(err);
}

/**
 * Closes a connection for good, failing the commands it still holds. While
 * ioredis waits to reconnect (Redis gone), disconnect() only cancels the next
 * attempt: there is no socket whose close would fail the queued commands, so a
 * blocking read resent after the loss never settles, and neither does a loop
 * awaiting it (a stopping broadcaster waited out its grace period for one). Here
 * they fail, those kept to be sent again after the loss too, and the connection
 * ends ('end'), as a close would have done. In any other state a socket's close
 * does it (within the connector's 2 s at most).
 */
export function closeForGood(redis: Redis): void {
  const waiting = redis.status === 'reconnecting';
  redis.disconnect();
  if (!waiting) return;
  const err = new Error('Connection is closed.');
  const internals = redis as unknown as {
    prevCommandQueue: { command: { reject: (e: Error) => void } }[] | null;
    setStatus: (status: string) => void;
  };
  flushQueue(redis, err);
  for (const item of internals.prevCommandQueue?.splice(0) ?? []) item.command.reject(err);
  internals.prevCommandQueue = null;
  internals.setStatus('end');
}

/** Errors of a connection to Redis that cannot be made or was lost (as opposed to a command's). */
export function isConnectionError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return (
    (typeof code === 'string' && SOCKET_ERROR_CODES.has(code)) ||
    /^Connection is closed|^connect ETIMEDOUT|^no answer from Redis/.test(err.message)
  );
}

/**
 * One process's log of Redis connection errors. While Redis is away every
 * connection reports each failed reconnect (every 2 s; a worker has ~20 of
 * them, BullMQ's included), which buried everything else in the log: the first
 * is logged at once, then one line per `everyMs` at most, with how many it
 * stands for.
 */
export function connectionErrorLog(logger: Logger, everyMs = 10_000): (err: Error, fields?: Record<string, unknown>) => void {
  let last = 0;
  let unlogged = 0;
  return (err, fields = {}) => {
    const now = Date.now();
    if (now - last < everyMs) {
      unlogged++;
      return;
    }
    logger.warn({ ...fields, err: err.message, ...(unlogged ? { alsoSince: unlogged } : {}) }, 'redis connection error');
    last = now;
    unlogged = 0;
  };
}
