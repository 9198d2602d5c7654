/**
 * One running system per test file: its own database (cloned from the migrated
 * template), its own Redis key prefix, the edge on a free port, and, when asked,
 * the workers and the broadcaster, all in this process over real connections.
 */
import type { TestFn } from 'ava';
import type { Knex } from 'knex';
import type { Config } from '../../lib/env.js';
import { createLogger } from '../../lib/logger.js';
import { createRedis, type Redis } from '../../lib/redis.js';
import { createDb } from '../../db/client.js';
import { startEdge, type RunningEdge } from '../../edge/http/server.js';
import { startBroadcaster, type RunningBroadcaster } from '../../edge/ws/server.js';
import { startWorkers, type RunningWorkers } from '../../workers/runner.js';
import { startSweeper } from '../../workers/sweeper.js';
import { createWorkerMetrics } from '../../workers/metrics.js';
import type { WorkerContext } from '../../workers/context.js';
import { Producer } from '../../queues/producer.js';
import { hashPassword } from '../../edge/http/services/auth.js';
import { insertUser } from '../../db/operations/users.js';
import type { Role } from '../../db/tables.js';
import { testConfig, testEnv, uniqueId } from './config.js';
import { spawnNode, type Spawned } from './process.js';
import { createTestDatabase } from './db.js';
import { deleteKeys, startPrivateRedis } from './redis.js';
import { client, type Client } from './http.js';

export interface System {
  config: Config;
  env: Record<string, string>;
  edge: RunningEdge;
  api: Client;
  db: Knex;
  redis: Redis;
  workers?: RunningWorkers;
  broadcaster?: RunningBroadcaster;
  /** What in-process handlers get (tests may call handlers directly). */
  workerCtx: WorkerContext;
  producer: Producer;
  sweeper?: { stop: () => Promise<void> };
  workerProcs: Spawned[];
  privateRedis?: { port: number; stop: () => Promise<void>; pause: () => void; resume: () => void };
}

export interface SystemOptions {
  env?: Record<string, string>;
  /** Workers (and the sweeper) in this process. */
  workers?: boolean;
  /** Worker processes to spawn (`node --import tsx workers/main.ts`). */
  workerProcesses?: number;
  /** A private redis-server for this file (tests that wipe or kill Redis). */
  privateRedis?: boolean;
  broadcaster?: boolean;
}

export interface TestUser {
  id: string;
  email: string;
  name: string;
  role: Role;
  password: string;
  accessToken: string;
  refreshToken: string;
}

let counter = 0;

/** Registers the before/after hooks on `test` and returns a getter for the system. */
export function useSystem(test: TestFn, options: SystemOptions = {}): () => System {
  let system: System | undefined;
  let dropDb: (() => Promise<void>) | undefined;
  test.before(async () => {
    const database = await createTestDatabase();
    dropDb = database.drop;
    const privateRedis = options.privateRedis ? await startPrivateRedis() : undefined;
    const env = {
      DB_NAME: database.name,
      REDIS_PREFIX: uniqueId('t'),
      ...(privateRedis ? { REDIS_PORT: String(privateRedis.port) } : {}),
      ...(options.env ?? {}),
    };
    const config = testConfig(env);
    const logger = createLogger('test', config.logLevel);
    const edge = await startEdge(config, logger);
    const db = createDb(config, { poolMax: 12 });
    const redis = createRedis(config, 'blocking');
    const producer = new Producer(redis, config.redis.prefix);
    const workerCtx = { config, logger, db, redis, producer, metrics: createWorkerMetrics() };
    let workers: RunningWorkers | undefined;
    let sweeper: { stop: () => Promise<void> } | undefined;
    if (options.workers) {
      await producer.limitBidPartitions();
      workers = startWorkers(workerCtx);
      sweeper = startSweeper(workerCtx);
    }
    const broadcaster = options.broadcaster ? await startBroadcaster(config, logger) : undefined;
    const workerProcs = Array.from({ length: options.workerProcesses ?? 0 }, () => spawnNode('workers/main.ts', testEnv({ ...env, LOG_LEVEL: 'info' })));
    system = { config, env, edge, api: client(edge.url), db, redis, workers, broadcaster, workerCtx, producer, sweeper, workerProcs, privateRedis };
    await Promise.all(workerProcs.map((w) => w.waitForLine(/workers started/, 30_000)));
  });
  test.after.always(async () => {
    if (system) {
      for (const w of system.workerProcs) w.kill('SIGTERM');
      await Promise.all(system.workerProcs.map((w) => w.waitForExit(15_000).catch(() => w.kill('SIGKILL'))));
      await system.broadcaster?.close();
      await system.sweeper?.stop();
      await system.workers?.close();
      await system.producer.close();
      await system.edge.close();
      await deleteKeys(system.config, system.config.redis.prefix);
      system.redis.disconnect();
      await system.db.destroy();
    }
    await system?.privateRedis?.stop();
    await dropDb?.();
  });
  return () => {
    if (!system) throw new Error('system not started');
    return system;
  };
}

/** Registers a user over HTTP (buyer or seller). */
export async function registerUser(sys: System, role: 'buyer' | 'seller' = 'buyer', password = 'correct horse battery'): Promise<TestUser> {
  const n = ++counter;
  const email = `user${n}.${process.pid}.${Date.now()}@example.com`;
  const name = `User ${n}`;
  const res = await sys.api.post('/api/v1/auth/register', { email, password, name, role });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${res.text}`);
  return { id: res.body.user.id, email, name, role, password, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
}

/** Creates an admin directly in the database (as scripts/create-admin does) and signs in. */
export async function createAdmin(sys: System, password = 'admin password 1'): Promise<TestUser> {
  const n = ++counter;
  const email = `admin${n}.${process.pid}.${Date.now()}@example.com`;
  const user = await insertUser(sys.db, { email, name: `Admin ${n}`, role: 'admin', passwordHash: await hashPassword(sys.config, password) });
  const res = await sys.api.post('/api/v1/auth/login', { email, password });
  if (res.status !== 200) throw new Error(`admin login failed: ${res.status} ${res.text}`);
  return { id: user.id, email, name: user.name, role: 'admin', password, accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
}
