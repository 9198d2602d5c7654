/**
 * Real processes for process-level tests: a Procfile role (or script) spawned as
 * `node --import tsx <entry>` from the project root, with its output captured
 * line by line and its exit awaited.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  stdout: () => string;
  stderr: () => string;
  /** stdout lines that parse as JSON objects (pino logs). */
  logs: () => Array<Record<string, unknown>>;
  exited: Promise<Exit>;
  /** Resolves with the first stdout line matching `test`; rejects on timeout or exit. */
  waitForLine: (test: RegExp | ((line: string) => boolean), ms?: number) => Promise<string>;
  /** Resolves with the exit, or rejects after `ms`. */
  waitForExit: (ms: number) => Promise<Exit>;
  kill: (signal?: NodeJS.Signals) => void;
  /** `promise`, but rejected (with the output) if the process exits first. */
  whileRunning: <T>(promise: Promise<T>) => Promise<T>;
}

export function spawnNode(entry: string, env: Record<string, string>, args: string[] = []): Spawned {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
    for (const w of waiters) w();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = new Promise<Exit>((resolve) => {
    // 'close' waits for the pipes, so all output is in by then.
    child.once('close', (code, signal) => {
      resolve({ code, signal });
      for (const w of waiters) w();
    });
  });
  let done = false;
  void exited.then(() => (done = true));
  const lines = () => out.split('\n').filter(Boolean);
  const waitForLine = (test: RegExp | ((line: string) => boolean), ms = 40_000) =>
    new Promise<string>((resolve, reject) => {
      const match = typeof test === 'function' ? test : (l: string) => test.test(l);
      const check = () => {
        const found = lines().find(match);
        if (found !== undefined) {
          finish();
          resolve(found);
        } else if (done || child.exitCode !== null || child.signalCode !== null) {
          finish();
          reject(new Error(`${entry} exited before printing ${String(test)}\nstdout: ${out}\nstderr: ${err}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${entry} did not print ${String(test)} within ${ms} ms\nstdout: ${out}\nstderr: ${err}`));
      }, ms);
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  const waitForExit = (ms: number) =>
    new Promise<Exit>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${entry} still running after ${ms} ms\nstdout: ${out}\nstderr: ${err}`)), ms);
      void exited.then((e) => {
        clearTimeout(timer);
        resolve(e);
      });
    });
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    logs: () =>
      lines().flatMap((l) => {
        try {
          const v: unknown = JSON.parse(l);
          return v && typeof v === 'object' ? [v as Record<string, unknown>] : [];
        } catch {
          return [];
        }
      }),
    exited,
    waitForLine,
    waitForExit,
    kill: (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    whileRunning: <T>(promise: Promise<T>) =>
      Promise.race([
        promise,
        exited.then((e): never => {
          throw new Error(`${entry} exited (${e.signal ?? e.code}) while waited on\nstdout: ${out}\nstderr: ${err}`);
        }),
      ]),
  };
}

/** Polls `url` until it answers `status` (200 by default); throws after `ms`. */
export async function waitForStatus(url: string, ms = 40_000, status = 200): Promise<void> {
  const deadline = Date.now() + ms;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === status) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer ${status} within ${ms} ms (last: ${last})`);
}

/** True while a process with this pid exists (and is not a zombie we could see). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    // A zombie still answers kill(0); /proc says whether it is one.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return true;
  }
}

/** The direct children of `pid` (Linux /proc). */
export function childPids(pid: number): number[] {
  try {
    return fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Which of `pids` holds the TCP socket whose local port is `port` (Linux /proc), if any. */
export function ownerOfLocalPort(port: number, pids: number[]): number | undefined {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      const local = cols[1]!;
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(cols[9]!);
    }
  }
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) return pid;
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}
