/**
 * Every role with its Redis gone (a private redis-server,
 * never the shared one): /readyz answers 503 promptly instead of waiting for a
 * Redis that is not coming back, and SIGTERM ends the process within seconds
 * rather than at the shutdown deadline.
 */
import test from 'ava';
import { testEnv, uniqueId } from '../helpers/config.js';
import { createTestDatabase } from '../helpers/db.js';
import { freePort, startPrivateRedis } from '../helpers/redis.js';
import { spawnNode, waitForStatus, type Spawned } from '../helpers/process.js';

/** GET `url`: its status, or 'no answer' when none comes within `ms`. */
async function statusWithin(url: string, ms: number): Promise<number | 'no answer'> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(ms) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 'no answer';
  }
}

const messages = (p: Spawned) => p.logs().map((l) => String(l.msg));

for (const role of [
  { name: 'web', entry: 'edge/http/main.ts', portVar: 'PORT', started: /"msg":"edge listening"/ },
  { name: 'worker', entry: 'workers/main.ts', portVar: 'WORKER_PORT', started: /"msg":"workers started"/ },
  { name: 'broadcaster', entry: 'edge/ws/main.ts', portVar: 'WS_PORT', started: /"msg":"broadcaster listening"/ },
]) {
  test(`${role.name}: with Redis gone, /readyz answers 503 within 4 s and SIGTERM exits within 8 s, well before the deadline`, async (t) => {
    // Every wait below has its own limit; together they stay under this one, so
    // the teardown (which kills the role and the private Redis) always runs.
    t.timeout(120_000);
    const database = await createTestDatabase();
    t.teardown(() => database.drop());
    const redis = await startPrivateRedis();
    t.teardown(() => redis.stop());
    const port = await freePort();
    // A grace period far above what the shutdown should take, so waiting it out shows.
    const env = testEnv({
      DB_NAME: database.name,
      REDIS_PORT: String(redis.port),
      REDIS_PREFIX: uniqueId('t'),
      LOG_LEVEL: 'info',
      SHUTDOWN_GRACE_MS: '20000',
      [role.portVar]: String(port),
    });
    const proc = spawnNode(role.entry, env);
    // Teardowns run last-registered first: the role goes before its Redis and database.
    t.teardown(() => proc.kill('SIGKILL'));
    await proc.waitForLine(role.started, 40_000);
    await proc.whileRunning(waitForStatus(`http://127.0.0.1:${port}/readyz`));

    await redis.stop();
    // Twice: the first may still find the connection up; the second meets it gone.
    let status = await statusWithin(`http://127.0.0.1:${port}/readyz`, 4_000);
    if (status === 200) status = await statusWithin(`http://127.0.0.1:${port}/readyz`, 4_000);
    t.is(status, 503, '/readyz with Redis gone');

    const signalledAt = Date.now();
    proc.child.kill('SIGTERM');
    const exit = await proc.waitForExit(15_000).catch(() => undefined);
    const took = Date.now() - signalledAt;
    t.truthy(exit, `still running 15 s after SIGTERM\n${proc.stdout()}`);
    t.true(took < 8_000, `exited ${took} ms after SIGTERM\n${proc.stdout()}`);
    t.deepEqual(exit, { code: 0, signal: null }, proc.stdout() + proc.stderr());
    t.true(messages(proc).includes('shutdown complete'), proc.stdout());
    t.false(messages(proc).includes('shutdown deadline passed, exiting'));
    // Ended, not left behind: a step cut short by its time limit leaves a pending
    // read that an exit hides (the broadcaster bounds its Redis steps to 1 s).
    t.false(messages(proc).includes('shutdown step cut short'), proc.stdout());
    // Redis away is one warning (and one more per 10 s), not a line per
    // connection per reconnect attempt at error level (a worker has ~20 connections).
    t.true(messages(proc).filter((m) => m === 'redis connection error').length <= 2, proc.stdout());
    t.deepEqual(proc.logs().filter((l) => Number(l.level) >= 50), [], 'nothing at error level');
  });
}
