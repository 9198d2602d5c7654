import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Redis } from 'ioredis';
import type { Config } from '../../lib/env.js';
import { createRedis } from '../../lib/redis.js';

/** Deletes every key under `prefix` (a test file's own keys only). */
export async function deleteKeys(config: Config, prefix: string): Promise<void> {
  const redis = createRedis(config, 'blocking');
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** Ports this process has handed out: never twice. */
const issued = new Set<number>();

/**
 * A port that is free now, for a server a test starts. Picked at random below the
 * kernel's ephemeral range (32768 and up), not with bind(0): that range is where
 * every outgoing connection of the suite takes its local port, and where bind(0)
 * hands a just-released port to the next caller, possibly in another test process.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (issued.has(port)) continue;
    issued.add(port);
    if (await canListen(port)) return port;
  }
  throw new Error('no free port found between 20000 and 32000');
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A private redis-server on a free port, for tests that kill Redis. Never the shared one.
 * Pass the `port` of one that was stopped to bring Redis back where clients expect it.
 */
export async function startPrivateRedis(port?: number): Promise<{ port: number; stop: () => Promise<void>; pause: () => void; resume: () => void }> {
  port ??= await freePort();
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on('error', () => undefined);
  for (let i = 0; i < 100; i++) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  probe.disconnect();
  return {
    port,
    /** Stalls the server (SIGSTOP): connections stay open, nothing is answered. */
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
