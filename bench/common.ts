/** Shared pieces of the benchmarks: a fresh database, spawned roles, waiting. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { Redis } from 'ioredis';
import { loadConfig } from '../lib/env.js';
import { createDb, type Knex } from '../db/client.js';

export const ROOT = new URL('..', import.meta.url).pathname;

export function benchEnv(overrides: Record<string, string>): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    ENV: 'development',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_GENERAL_PER_MIN: '100000000',
    RATE_LIMIT_AUTH_PER_MIN: '100000000',
    RATE_LIMIT_USER_PER_MIN: '100000000',
    ...overrides,
  };
}

/** Drops and recreates `name`, then migrates it. */
export async function freshDatabase(name: string): Promise<void> {
  const config = loadConfig(benchEnv({ DB_NAME: name }));
  const admin = createDb(config, { database: 'postgres', poolMax: 1 });
  await admin.raw('drop database if exists ?? with (force)', [name]);
  await admin.raw('create database ??', [name]);
  await admin.destroy();
  const db = createDb(config, { poolMax: 1 });
  await db.migrate.latest();
  await db.destroy();
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function run(entry: string, env: Record<string, string>, nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', entry], { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'inherit'] });
  return child;
}

export async function runToEnd(entry: string, env: Record<string, string>): Promise<void> {
  const child = run(entry, env);
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`${entry} exited ${code}`);
}

export async function waitReady(url: string, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready`);
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/**
 * A seller, `bidders` buyers and `auctions` live auctions (2 hours, no soft
 * close), inserted directly: benchmarks measure bidding, not set-up.
 */
export async function seedLiveAuctions(db: Knex, auctions: number, bidders: number) {
  const [seller] = await db('users').insert({ email: `seller@bench`, name: 'Bench Seller', role: 'seller', password_hash: 'x' }).returning('id');
  const users = await db('users')
    .insert(Array.from({ length: bidders }, (_, i) => ({ email: `bidder${i}@bench`, name: `Bidder ${i}`, role: 'buyer', password_hash: 'x' })))
    .returning(['id', 'name', 'role']);
  const [cat] = await db('categories').insert({ name: 'Bench', slug: 'bench' }).returning('id');
  const ids: string[] = [];
  for (let i = 0; i < auctions; i += 500) {
    const n = Math.min(500, auctions - i);
    const products = await db('products')
      .insert(Array.from({ length: n }, (_, k) => ({ seller_id: seller.id, category_id: cat.id, title: `Lot ${i + k}`, price: 100 })))
      .returning('id');
    const rows = await db('auctions')
      .insert(
        products.map((p: { id: string }) => ({
          seller_id: seller.id,
          product_id: p.id,
          title: 'Bench lot',
          status: 'live',
          starting_price: 100,
          current_price: 100,
          duration_seconds: 7200,
          starts_at: db.fn.now(),
          ends_at: db.raw("now() + interval '2 hours'"),
          soft_close_seconds: 0,
        })),
      )
      .returning('id');
    await db('auction_counters').insert(rows.map((r: { id: string }) => ({ auction_id: r.id })));
    ids.push(...rows.map((r: { id: string }) => r.id));
  }
  return { bidders: users as { id: string; name: string; role: 'buyer' }[], auctions: ids };
}


/** Deletes every Redis key of a benchmark's prefix (queues, streams, limits), so runs leave nothing behind. */
export async function dropRedisPrefix(prefix: string): Promise<void> {
  const config = loadConfig(benchEnv({}));
  const redis = new Redis({ host: config.redis.host, port: config.redis.port });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/**
 * CPU time used so far (ms, user + system) by the given processes and by every
 * process whose name is in `names` (Postgres backends, Redis), from /proc;
 * empty on a system without it. Clock ticks are 10 ms (CLK_TCK 100).
 */
export function cpuTimes(pids: Record<string, number | undefined>, names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  if (!fs.existsSync('/proc/self/stat')) return out; // not Linux: no figures
  const ticks = (pid: number | string): number => {
    try {
      // Fields after the command's closing paren: utime is the 12th, stime the 13th.
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      return 0; // gone
    }
  };
  for (const [label, pid] of Object.entries(pids)) if (pid) out[label] = ticks(pid);
  for (const name of names) out[name] = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let comm: string;
    try {
      comm = fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (names.includes(comm)) out[comm] = (out[comm] ?? 0) + ticks(entry);
  }
  return out;
}
