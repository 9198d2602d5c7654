/**
 * Graceful shutdown of every Procfile role, as real processes: SIGTERM stops
 * intake, lets work in flight finish, and exits 0 without error logs.
 */
import test from 'ava';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import net from 'node:net';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { Queue } from 'bullmq';
import { createDb } from '../../db/client.js';
import { createRedis, waitForRedis } from '../../lib/redis.js';
import { Producer } from '../../queues/producer.js';
import { queuePrefix } from '../../queues/names.js';
import { testConfig, testEnv, uniqueId } from '../helpers/config.js';
import { createTestDatabase } from '../helpers/db.js';
import { deleteKeys, freePort } from '../helpers/redis.js';
import { ROOT, childPids, isAlive, spawnNode, waitForStatus, type Spawned } from '../helpers/process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let database: { name: string; drop: () => Promise<void> };
const prefixes: string[] = [];

test.before(async () => {
  database = await createTestDatabase();
});
test.after.always(async () => {
  for (const prefix of prefixes) await deleteKeys(testConfig({ REDIS_PREFIX: prefix }), prefix);
  await database?.drop();
});

/**
 * Environment for one role: this file's database, a key prefix of its own (so no
 * other test's worker takes its jobs), info logs, free ports.
 */
async function roleEnv(extra: Record<string, string> = {}) {
  const prefix = uniqueId('t');
  prefixes.push(prefix);
  return testEnv({
    DB_NAME: database.name,
    REDIS_PREFIX: prefix,
    LOG_LEVEL: 'info',
    PORT: String(await freePort()),
    WS_PORT: String(await freePort()),
    ...extra,
  });
}

const levels = (p: Spawned) => p.logs().map((l) => Number(l.level));
const messages = (p: Spawned) => p.logs().map((l) => String(l.msg));

/** Tries a TCP connection; resolves with the error code, or 'connected'. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/**
 * A raw keep-alive connection that asks `urlPath` once and then stays open and idle,
 * as a load balancer's would. `closed` resolves when the server closes it.
 */
async function idleKeepAlive(port: number, urlPath: string) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  socket.on('data', (c) => (received += c.toString()));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  socket.write(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n`);
  for (let i = 0; !/\r\n\r\n/.test(received) && i < 100; i++) await sleep(20);
  const status = Number(/^HTTP\/1\.1 (\d+)/.exec(received)?.[1]);
  return { socket, status, closed };
}

test('web: SIGTERM lets the request in flight finish, refuses new connections, exits 0', async (t) => {
  const env = await roleEnv();
  const port = Number(env.PORT);
  const web = spawnNode('edge/http/main.ts', env);
  t.teardown(() => web.kill());
  await web.whileRunning(waitForStatus(`http://127.0.0.1:${port}/readyz`));
  // Its own line, printed once it handles signals: /readyz alone could have been
  // answered by another test's process on a reused port.
  await web.waitForLine(/"msg":"edge listening"/);

  // A login whose body arrives in two parts: the second one after SIGTERM.
  const body = JSON.stringify({ email: `nobody.${randomUUID()}@example.com`, password: 'not the password' });
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const req = http.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/api/v1/auth/login',
    agent,
    // 100-continue: the edge's answer proves it has parsed the request and is handling it.
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), expect: '100-continue' },
  });
  const handling = new Promise<void>((resolve) => req.once('continue', () => resolve()));
  const answer = new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  await handling;
  req.write(body.slice(0, 10)); // the edge now waits for the rest of the body

  const signalledAt = Date.now();
  web.child.kill('SIGTERM');
  await web.waitForLine(/"msg":"shutting down"/, 5_000);
  // The same signal again (systemd and \`docker stop\` signal the whole group while
  // \`npm start\` forwards its own): it must not cut the shutdown short.
  web.child.kill('SIGTERM');
  await web.waitForLine(/"msg":"already shutting down"/, 5_000);
  // The log line comes just before the listener closes: allow a moment, no more.
  let refused = await tryConnect(port);
  for (let i = 0; refused !== 'ECONNREFUSED' && i < 10; i++) {
    await sleep(20);
    refused = await tryConnect(port);
  }
  t.is(refused, 'ECONNREFUSED', 'no new connections once shutdown started');
  t.is(web.child.exitCode, null, 'still running while a request is in flight');
  await sleep(Math.max(0, 300 - (Date.now() - signalledAt)));
  req.end(body.slice(10));

  const res = await answer;
  t.is(res.status, 401, res.body);
  t.is(JSON.parse(res.body).error.code, 'unauthorized');

  const { code } = await web.waitForExit(4_000);
  t.is(code, 0, web.stdout() + web.stderr());
  t.true(Date.now() - signalledAt < 4_000, 'exits within a few seconds');
  const msgs = messages(web);
  t.true(msgs.includes('shutting down'));
  t.true(msgs.includes('shutdown complete'));
  t.true(msgs.indexOf('shutting down') < msgs.indexOf('shutdown complete'));
  t.deepEqual(
    web.logs().filter((l) => Number(l.level) >= 50),
    [],
    'nothing logged at error level',
  );
  t.true(levels(web).length > 0);
  t.is(web.stderr(), '');
});

test('web: an idle keep-alive connection does not hold up SIGTERM', async (t) => {
  const env = await roleEnv();
  const port = Number(env.PORT);
  const web = spawnNode('edge/http/main.ts', env);
  t.teardown(() => web.kill());
  await web.whileRunning(waitForStatus(`http://127.0.0.1:${port}/readyz`));
  // Its own line, printed once it handles signals: /readyz alone could have been
  // answered by another test's process on a reused port.
  await web.waitForLine(/"msg":"edge listening"/);
  // A keep-alive connection left open and idle after a finished request.
  const idle = await idleKeepAlive(port, '/healthz');
  t.teardown(() => idle.socket.destroy());
  t.is(idle.status, 200);
  const start = Date.now();
  web.child.kill('SIGTERM');
  const exit = await web.waitForExit(4_000);
  t.is(exit.code, 0, `${JSON.stringify(exit)}\n${web.stdout()}${web.stderr()}`);
  t.true(Date.now() - start < 3_000, `took ${Date.now() - start} ms`);
  t.true(messages(web).includes('shutdown complete'));
  t.false(levels(web).some((l) => l >= 50), web.stdout());
  await idle.closed;
});

for (const role of [
  { name: 'web', entry: 'edge/http/main.ts', portVar: 'PORT', started: /"msg":"edge listening"/ },
  { name: 'broadcaster', entry: 'edge/ws/main.ts', portVar: 'WS_PORT', started: /"msg":"broadcaster listening"/ },
]) {
  test(`${role.name}: with SHUTDOWN_DELAY_MS, SIGTERM turns /readyz to 503 while new connections are still served, then stops accepting`, async (t) => {
    const env = await roleEnv({ SHUTDOWN_DELAY_MS: '3000' });
    const port = Number(env[role.portVar]);
    const proc = spawnNode(role.entry, env);
    t.teardown(() => proc.kill());
    await proc.whileRunning(waitForStatus(`http://127.0.0.1:${port}/readyz`));
    await proc.waitForLine(role.started);
    const signalledAt = Date.now();
    proc.child.kill('SIGTERM');
    await proc.waitForLine(/"msg":"not ready; still serving until the shutdown delay ends"/, 5_000);
    // Each on a new connection: the listener is still open.
    const readyz = await fetch(`http://127.0.0.1:${port}/readyz`, { headers: { connection: 'close' } });
    const healthz = await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { connection: 'close' } });
    const answeredWithin = Date.now() - signalledAt;
    t.true(answeredWithin < 3_000, `answered ${answeredWithin} ms after SIGTERM: inside the delay`);
    t.is(readyz.status, 503, 'out of rotation');
    t.is(healthz.status, 200, 'still serving');
    const { code } = await proc.waitForExit(8_000);
    t.is(code, 0, proc.stdout() + proc.stderr());
    t.true(Date.now() - signalledAt >= 3_000, 'stopped accepting only after the delay');
    t.is(await tryConnect(port), 'ECONNREFUSED');
    t.false(levels(proc).some((l) => l >= 50), proc.stdout());
  });
}

test('SHUTDOWN_DELAY_MS must be less than SHUTDOWN_GRACE_MS', async (t) => {
  const proc = spawnNode('edge/http/main.ts', await roleEnv({ SHUTDOWN_DELAY_MS: '5000', SHUTDOWN_GRACE_MS: '5000' }));
  t.teardown(() => proc.kill());
  const { code } = await proc.waitForExit(45_000);
  t.is(code, 1);
  t.regex(proc.stderr(), /^web: SHUTDOWN_DELAY_MS \(5000\) must be less than SHUTDOWN_GRACE_MS \(5000\)/);
});

test('a role whose steps finish but which leaves a handle open still exits, at the grace period, with a warning', async (t) => {
  const role = spawnNode('test/fixtures/leaky-role.ts', testEnv({ SHUTDOWN_GRACE_MS: '1500' }));
  t.teardown(() => role.kill());
  await role.waitForLine(/"msg":"ready"/);
  role.child.kill('SIGTERM');
  await role.waitForLine(/"msg":"shutdown complete"/, 5_000);
  const exit = await role.waitForExit(15_000);
  t.deepEqual(exit, { code: 0, signal: null }, role.stdout() + role.stderr());
  t.true(messages(role).includes('shut down, but a handle still holds the process open: exiting'));
  t.false(levels(role).some((l) => l >= 50), role.stdout());
});

test('worker: SIGTERM finishes the job in flight, then exits 0', async (t) => {
  const env = await roleEnv();
  const prefix = env.REDIS_PREFIX!;
  const config = testConfig({ DB_NAME: database.name, REDIS_PREFIX: prefix });
  const db = createDb(config, { poolMax: 3 });
  const redis = createRedis(config);
  redis.on('error', () => undefined);
  await waitForRedis(redis);
  const producer = new Producer(redis, prefix);
  const queue = new Queue('notifications', { connection: redis, prefix: queuePrefix(prefix, 'notifications') });
  t.teardown(async () => {
    await queue.close();
    await producer.close();
    redis.disconnect();
    await db.destroy();
  });

  const [user] = await db('users')
    .insert({ email: `worker.${randomUUID()}@example.com`, name: 'W', role: 'buyer', password_hash: 'not-a-real-hash' })
    .returning('id');
  const worker = spawnNode('workers/main.ts', env);
  t.teardown(() => worker.kill());
  await worker.waitForLine(/"msg":"workers started"/);

  // Hold the notifications table so the job blocks inside its insert: it is in flight.
  const trx = await db.transaction();
  let committed = false;
  t.teardown(async () => {
    if (!committed) await trx.rollback().catch(() => undefined);
  });
  await trx.raw('lock table notifications in share mode');
  const notificationId = randomUUID();
  const jobId = await producer.enqueue('notification.send', { notificationId, userId: user.id, kind: 'welcome' });
  for (let i = 0; (await queue.getJobState(jobId)) !== 'active'; i++) {
    if (i > 100) t.fail('the worker never picked up the job');
    await sleep(50);
  }

  worker.child.kill('SIGTERM');
  await worker.waitForLine(/"msg":"shutting down"/, 5_000);
  await sleep(300);
  t.is(worker.child.exitCode, null, 'waits for the job in flight');
  t.is(await queue.getJobState(jobId), 'active');
  await trx.commit();
  committed = true;

  const { code } = await worker.waitForExit(4_000);
  t.is(code, 0, worker.stdout() + worker.stderr());
  t.is(await queue.getJobState(jobId), 'completed');
  const row = await db('notifications').where({ id: notificationId }).first();
  t.truthy(row, 'the job in flight was finished before exit');
  t.is(row.user_id, user.id);
  t.true(messages(worker).includes('shutdown complete'));
  t.false(levels(worker).some((l) => l >= 50), worker.stdout());
});

test('worker: idle, SIGTERM exits 0 promptly', async (t) => {
  const worker = spawnNode('workers/main.ts', await roleEnv());
  t.teardown(() => worker.kill());
  await worker.waitForLine(/"msg":"workers started"/);
  await sleep(200); // let the workers block on Redis
  const start = Date.now();
  worker.child.kill('SIGTERM');
  // Promptly: before BullMQ's blocking read (drainDelay, 5 s) would have returned
  // by itself. Alone it takes about 1 s; under the whole suite's load it has taken 3.4 s.
  const { code } = await worker.waitForExit(4_500);
  t.is(code, 0, worker.stdout() + worker.stderr());
  t.true(Date.now() - start < 4_500, `took ${Date.now() - start} ms`);
  t.true(messages(worker).includes('shutdown complete'));
  t.false(levels(worker).some((l) => l >= 50), worker.stdout());
});

test('worker: SIGTERM right after start exits 0', async (t) => {
  // Right after start BullMQ may still be connecting; closing then must not crash or hang.
  for (let i = 0; i < 3; i++) {
    const worker = spawnNode('workers/main.ts', await roleEnv());
    t.teardown(() => worker.kill());
    await worker.waitForLine(/"msg":"workers started"/);
    worker.child.kill('SIGTERM');
    const { code } = await worker.waitForExit(4_000);
    t.is(code, 0, worker.stdout() + worker.stderr());
    t.true(messages(worker).includes('shutdown complete'));
    t.is(worker.stderr(), '');
  }
});

test('broadcaster: SIGTERM closes sockets with 1001 and exits 0', async (t) => {
  const env = await roleEnv();
  const wsPort = Number(env.WS_PORT);
  const b = spawnNode('edge/ws/main.ts', env);
  t.teardown(() => b.kill());
  await b.whileRunning(waitForStatus(`http://127.0.0.1:${wsPort}/readyz`));
  await b.waitForLine(/"msg":"broadcaster listening"/);

  const ws = new WebSocket(`ws://127.0.0.1:${wsPort}/ws`);
  t.teardown(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const pong = new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
  ws.send(JSON.stringify({ type: 'ping' }));
  t.is(JSON.parse(await pong).type, 'pong');

  // An idle keep-alive HTTP connection (a load balancer's health check) must not hold it up.
  const idle = await idleKeepAlive(wsPort, '/healthz');
  t.teardown(() => idle.socket.destroy());
  t.is(idle.status, 200);

  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  const start = Date.now();
  b.child.kill('SIGTERM');
  const close = await closed;
  t.is(close.code, 1001);
  const { code } = await b.waitForExit(4_000);
  t.is(code, 0, b.stdout() + b.stderr());
  t.true(Date.now() - start < 3_000, `took ${Date.now() - start} ms`);
  t.true(messages(b).includes('shutdown complete'));
  t.false(levels(b).some((l) => l >= 50), b.stdout());
  t.is(await tryConnect(wsPort), 'ECONNREFUSED');
  await idle.closed;
});

test('start: creates and migrates a new database, runs every role, SIGTERM stops them all', async (t) => {
  const dbName = uniqueId('blytz_start');
  const env = await roleEnv({ DB_NAME: dbName });
  const config = testConfig({ DB_NAME: dbName, REDIS_PREFIX: env.REDIS_PREFIX! });
  const admin = createDb(config, { database: 'postgres', poolMax: 1 });
  t.teardown(async () => {
    await admin.raw('drop database if exists ?? with (force)', [dbName]);
    await admin.destroy();
  });
  t.is((await admin.raw('select 1 from pg_database where datname = ?', [dbName])).rows.length, 0);

  const start = spawnNode('scripts/start.ts', env);
  t.teardown(() => {
    for (const pid of childPids(start.pid)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    start.kill();
  });
  await start.whileRunning(waitForStatus(`http://127.0.0.1:${env.PORT}/readyz`, 45_000));
  await start.whileRunning(waitForStatus(`http://127.0.0.1:${env.WS_PORT}/readyz`, 20_000));
  await start.waitForLine(/^worker\s*\|.*"msg":"workers started"/, 20_000);
  await start.waitForLine(/^web\s*\|.*"msg":"edge listening"/, 20_000);
  await start.waitForLine(/^broadcaster\s*\|.*"msg":"broadcaster listening"/, 20_000);

  // Migrated: the tables are there.
  const db = createDb(config, { poolMax: 1 });
  try {
    t.true(await db.schema.hasTable('users'));
    t.true(await db.schema.hasTable('notifications'));
  } finally {
    await db.destroy();
  }

  const procfileRoles = fs
    .readFileSync(path.join(ROOT, 'Procfile'), 'utf8')
    .split('\n')
    .map((l) => /^([A-Za-z0-9_-]+):/.exec(l.trim())?.[1])
    .filter((r): r is string => r !== undefined && r !== 'release');
  t.true(['web', 'worker', 'broadcaster'].every((r) => procfileRoles.includes(r)));
  const roles = childPids(start.pid);
  t.is(roles.length, procfileRoles.length, 'one process per Procfile role');
  start.child.kill('SIGTERM');
  const { code } = await start.waitForExit(10_000);
  t.is(code, 0, start.stdout() + start.stderr());
  for (const pid of roles) t.false(isAlive(pid), `role ${pid} exited`);
  for (const role of procfileRoles) {
    t.regex(start.stdout(), new RegExp(`^${role}\\s*\\|.*"msg":"shutdown complete"`, 'm'), `${role} shut down gracefully`);
  }
  t.notRegex(start.stdout(), /"level":(50|60)/, 'no error logs');
});

test('npm start: SIGTERM to npm itself stops every role (none is left running on its own)', async (t) => {
  // Above the sum of the waits below, so the teardown always runs (it kills what is left).
  t.timeout(120_000);
  const env = await roleEnv();
  const npm = spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  npm.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  npm.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  /** Every process under npm, found by walking /proc from its pid. */
  const descendants = (pid: number): number[] => childPids(pid).flatMap((c) => [c, ...descendants(c)]);
  let seen: number[] = [];
  t.teardown(() => {
    for (const pid of [...seen, ...descendants(npm.pid!)]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    if (npm.exitCode === null) npm.kill('SIGKILL');
  });
  await waitForStatus(`http://127.0.0.1:${env.PORT}/readyz`, 45_000);
  await waitForStatus(`http://127.0.0.1:${env.WS_PORT}/readyz`, 20_000);
  for (let i = 0; !/"msg":"workers started"/.test(out) && i < 200; i++) await sleep(100);
  seen = descendants(npm.pid!);
  t.true(seen.length >= 4, `start and its three roles run under npm: ${seen.join(' ')}`);

  npm.kill('SIGTERM');
  const until = Date.now() + 15_000;
  while (seen.some(isAlive) && Date.now() < until) await sleep(100);
  t.deepEqual(seen.filter(isAlive), [], `processes left running after npm got SIGTERM\n${out}`);
  t.regex(out, /^web\s*\|.*"msg":"shutdown complete"/m, 'the roles shut down gracefully');
});

test('start: Postgres unreachable exits 1 with install instructions', async (t) => {
  const closedPort = await freePort();
  const start = spawnNode('scripts/start.ts', await roleEnv({ DB_PORT: String(closedPort) }));
  t.teardown(() => start.kill());
  const { code } = await start.waitForExit(15_000);
  t.is(code, 1);
  const err = start.stderr();
  t.true(err.includes(`Postgres is not reachable at 127.0.0.1:${closedPort}`), err);
  t.true(err.includes('apt-get install'), err);
  t.true(err.includes('DATABASE_URL'), err);
  t.false(err.includes('Redis is not reachable'), 'Redis is fine');
  t.notRegex(start.stdout(), /^(release|web|worker|broadcaster)\s*\|/m, 'no role was started');
});
