/**
 * `npm start`: the whole system on one machine, like `heroku local`. It checks
 * that Postgres and Redis answer (and says exactly what to install or set when
 * they do not), runs the Procfile's `release`, then every other role, with each
 * line of output prefixed by its role. SIGINT/SIGTERM stop all roles gracefully.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { getConfigOrExit } from '../lib/env.js';
import { createRedis } from '../lib/redis.js';
import { ensureDatabase } from './db-admin.js';

// The parent as it was at start, before the checks and the release phase (npm
// could go during those too; see the watch below).
const parent = process.ppid;
const underNpm = process.env.npm_lifecycle_event === 'start';

// Like `heroku local`: a .env file in the project root, if any, fills the environment.
if (fs.existsSync('.env')) process.loadEnvFile('.env');
const config = getConfigOrExit('start');

function describeDb(): string {
  const c = config.db.connection;
  return typeof c === 'string' ? 'DATABASE_URL' : `${c.host}:${c.port} (user ${c.user})`;
}

async function checkPostgres(): Promise<string | null> {
  try {
    await ensureDatabase(config);
    return null;
  } catch (err) {
    return [
      `Postgres is not reachable at ${describeDb()}: ${(err as Error).message}`,
      '  Install and start it, for example:',
      '    Debian/Ubuntu: sudo apt-get install -y postgresql && sudo service postgresql start',
      '    macOS:         brew install postgresql@16 && brew services start postgresql@16',
      '  or point DATABASE_URL (or DB_HOST/DB_PORT/DB_USER/DB_PASSWORD) at a server you have.',
    ].join('\n');
  }
}

async function checkRedis(): Promise<string | null> {
  const redis = createRedis(config, 'command', { retryStrategy: () => null, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return null;
  } catch (err) {
    const where = config.redis.url ? 'REDIS_URL' : `${config.redis.host}:${config.redis.port}`;
    return [
      `Redis is not reachable at ${where}: ${(err as Error).message}`,
      '  Install and start it, for example:',
      '    Debian/Ubuntu: sudo apt-get install -y redis-server && sudo service redis-server start',
      '    macOS:         brew install redis && brew services start redis',
      '  or point REDIS_URL (or REDIS_HOST/REDIS_PORT/REDIS_PASSWORD) at a server you have.',
    ].join('\n');
  } finally {
    redis.disconnect();
  }
}

function readProcfile(): Map<string, string> {
  const roles = new Map<string, string>();
  for (const line of fs.readFileSync('Procfile', 'utf8').split('\n')) {
    const m = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line.trim());
    if (m) roles.set(m[1]!, m[2]!);
  }
  return roles;
}

const COLORS = [36, 33, 35, 32, 34];
function run(role: string, command: string, index: number): ChildProcess {
  // Procfile commands here are plain argv (no shell), so signals reach the role itself.
  const [bin, ...args] = command.split(/\s+/);
  const child = spawn(bin!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  const label = process.stdout.isTTY ? `\x1b[${COLORS[index % COLORS.length]}m${role.padEnd(11)}|\x1b[0m ` : `${role.padEnd(11)}| `;
  for (const stream of [child.stdout, child.stderr]) {
    let buffered = '';
    stream?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) process.stdout.write(label + line + '\n');
    });
  }
  return child;
}

const problems = (await Promise.all([checkPostgres(), checkRedis()])).filter((p): p is string => p !== null);
if (problems.length) {
  console.error(problems.join('\n\n'));
  process.exit(1);
}

const procfile = readProcfile();
const release = procfile.get('release');
if (release) {
  const code = await new Promise<number | null>((resolve) => run('release', release, 0).on('exit', resolve));
  if (code !== 0) {
    console.error(`start: release failed (exit ${code})`);
    process.exit(1);
  }
}

const children = new Map<string, ChildProcess>();
let stopping = false;
const stop = (code: number) => {
  if (stopping) return;
  stopping = true;
  process.exitCode = code;
  for (const child of children.values()) child.kill('SIGTERM');
  setTimeout(() => {
    for (const child of children.values()) child.kill('SIGKILL');
  }, config.shutdownGraceMs + 2_000).unref();
};
[...procfile.entries()]
  .filter(([role]) => role !== 'release')
  .forEach(([role, command], i) => {
    const child = run(role, command, i + 1);
    children.set(role, child);
    child.on('exit', (code, signal) => {
      children.delete(role);
      if (!stopping) {
        console.error(`start: ${role} exited (${signal ?? code}); stopping the others`);
        stop(1);
      }
    });
  });
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
// Run by `npm start`: npm exits on SIGTERM without passing it on, and the roles
// went on running on their own (reparented), holding their ports. npm gone is
// taken as that signal. (Only under npm: `nohup node … scripts/start.ts &` is
// meant to outlive its shell.)
if (underNpm) {
  setInterval(() => {
    if (process.ppid !== parent) stop(0);
  }, 250).unref();
}
console.log(`start: web on http://127.0.0.1:${config.port}, broadcaster on ws://127.0.0.1:${config.wsPort}/ws (Ctrl-C stops all)`);
