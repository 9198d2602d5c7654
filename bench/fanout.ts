/**
 * `npm run bench -- fanout`: the broadcaster's fan-out, against a plain `ws`
 * baseline (bench/ws-baseline.ts), on this machine, in one run.
 *
 *  1. throughput: 10,000 and 1,000 viewers subscribed to one auction while this
 *     process appends events to the auction's Redis stream (XADD, ids `<seq>-0`,
 *     field `event`, as lib/publisher.ts does; no edge or worker in the way) at a
 *     fixed rate; delivered event frames/s as counted by the viewers, for ours and
 *     for the baseline at the same offered rate, and for ours once more at
 *     RATE_PUSH (it delivers all of RATE_BIG: this shows where it stops);
 *  2. memory: the server's RSS (from its /metrics) before and after opening
 *     10,000 idle connections, per connection;
 *  3. latency: 1,000 viewers and 20 bids/s over HTTP through the whole pipeline
 *     (edge, worker, broadcaster): bid→viewer p50/p99, measured in the viewers as
 *     receive time − the frame's `at` (the bid's receipt on the database clock).
 *
 * The viewers are real `ws` clients in two separate processes (bench/viewers.ts).
 * Every process (server, viewers, Redis, this one) shares the machine's cores, so
 * each run reports the CPU of each, and names what limited it (see `limitOf`).
 *
 * Open files: Node raises its soft RLIMIT_NOFILE to the hard limit at start-up, so
 * every spawned process gets the hard limit (`ulimit -Hn`, 20,000 here); with less
 * than 10,000 + 200 the benchmark opens fewer connections and says so.
 *
 * Env: BENCH_SECONDS (measured seconds per throughput run, 8), BENCH_FANOUT_VIEWERS
 * (10000), BENCH_FANOUT_RATE_BIG / BENCH_FANOUT_RATE_SMALL (events/s appended with
 * 10,000 / 1,000 viewers: 100 / 1000), BENCH_FANOUT_RATE_PUSH (300),
 * BENCH_FANOUT_SERVERS (ours,baseline), BENCH_FANOUT_SKIP_LATENCY=1.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from '../lib/env.js';
import { createDb, type Knex } from '../db/client.js';
import { loadKeys, signAccessToken } from '../lib/jwt.js';
import { auctionStream } from '../queues/streams.js';
// As the publisher trims by default (AUCTION_STREAM_MAXLEN).
const AUCTION_STREAM_MAXLEN = 2_000;
import { ROOT, benchEnv, dropRedisPrefix, fmt, freePort, freshDatabase, run, seedLiveAuctions, stop, waitReady } from './common.js';

const DB = 'blytz_bench_fanout';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARM_SECONDS = 2;
const BIG = Number(process.env.BENCH_FANOUT_VIEWERS ?? 10_000);
const SMALL = 1_000;
const RATE_BIG = Number(process.env.BENCH_FANOUT_RATE_BIG ?? 100);
const RATE_SMALL = Number(process.env.BENCH_FANOUT_RATE_SMALL ?? 1_000);
const RATE_PUSH = Number(process.env.BENCH_FANOUT_RATE_PUSH ?? 300);
const VIEWER_PROCESSES = 2;
const SERVERS = (process.env.BENCH_FANOUT_SERVERS ?? 'ours,baseline').split(',');
const LATENCY_VIEWERS = 1_000;
const BID_RATE = 20;
const LATENCY_SECONDS = 10;
const LATENCY_WARM_SECONDS = 2;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every child this benchmark starts, killed on the way out whatever happens. */
const children = new Set<ChildProcess>();
function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
const killAll = () => {
  for (const c of children) c.kill('SIGKILL');
};

// ---------------------------------------------------------------- viewers

interface StopResult {
  events: number;
  seconds: number;
  stoppedAt: number;
  cpu: number;
  closes: number;
  open: number;
  seqs: number[];
  latencies: [ms: number, frames: number][];
  firsts: [seq: number, ms: number][];
  lasts: [seq: number, ms: number][];
}

function percentileOf(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN;
}

/** Percentiles of merged latency histograms. */
function percentiles(histograms: [number, number][][], ps: number[]): number[] {
  const merged = new Map<number, number>();
  for (const h of histograms) for (const [ms, n] of h) merged.set(ms, (merged.get(ms) ?? 0) + n);
  const sorted = [...merged].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((a, [, n]) => a + n, 0);
  return ps.map((p) => {
    const rank = Math.max(1, Math.ceil((p / 100) * total));
    let seen = 0;
    for (const [ms, n] of sorted) if ((seen += n) >= rank) return ms;
    return NaN;
  });
}

class ViewerProcess {
  readonly child: ChildProcess;
  private readonly waiting: ((m: Record<string, unknown>) => void)[] = [];

  constructor() {
    this.child = track(spawn(process.execPath, ['--import', 'tsx', 'bench/viewers.ts'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    this.child.on('message', (m: Record<string, unknown>) => this.waiting.shift()?.(m));
    this.child.on('exit', (code) => {
      for (const w of this.waiting.splice(0)) w({ error: `viewers process exited ${code}` });
    });
  }

  async ask<T = Record<string, unknown>>(cmd: Record<string, unknown>): Promise<T> {
    const reply = new Promise<Record<string, unknown>>((resolve) => this.waiting.push(resolve));
    this.child.send(cmd);
    const m = await reply;
    if (m.error) throw new Error(`viewers ${String(cmd.cmd)}: ${String(m.error)}`);
    return m as T;
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send({ cmd: 'exit' });
    await Promise.race([exited, sleep(3000)]);
    this.child.kill('SIGKILL');
  }
}

class Viewers {
  readonly procs = Array.from({ length: VIEWER_PROCESSES }, () => new ViewerProcess());

  /** Opens `count` idle connections, split over the processes. */
  async open(url: string, count: number): Promise<{ opened: number; failed: number }> {
    const per = this.procs.map((_, i) => Math.floor(count / this.procs.length) + (i < count % this.procs.length ? 1 : 0));
    const r = await Promise.all(this.procs.map((p, i) => p.ask<{ opened: number; failed: number }>({ cmd: 'open', url, count: per[i] })));
    return { opened: r.reduce((a, b) => a + b.opened, 0), failed: r.reduce((a, b) => a + b.failed, 0) };
  }

  async subscribe(auctionId: string): Promise<number> {
    const r = await Promise.all(this.procs.map((p) => p.ask<{ subscribed: number; timedOut: boolean }>({ cmd: 'subscribe', auctionId })));
    return r.reduce((a, b) => a + b.subscribed, 0);
  }

  start(latency = false) {
    return Promise.all(this.procs.map((p) => p.ask({ cmd: 'start', latency })));
  }

  stop(): Promise<StopResult[]> {
    return Promise.all(this.procs.map((p) => p.ask<StopResult>({ cmd: 'stop' })));
  }

  closeAll() {
    return Promise.all(this.procs.map((p) => p.ask({ cmd: 'closeAll' })));
  }

  exit() {
    return Promise.all(this.procs.map((p) => p.exit()));
  }
}

// ---------------------------------------------------------------- measuring

const CORES = os.cpus().length;
const TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * A process's main thread (the one that runs JS, and uWS's loop): seconds on a
 * CPU and seconds runnable but waiting for one (/proc/<pid>/task/<pid>/schedstat).
 * On CPU + waiting close to the wall time means the thread was saturated, even
 * when it got only part of a core on a busy machine.
 */
function mainThread(pid: number): { run: number; wait: number } {
  const [run, wait] = fs.readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').trim().split(' ').map(Number);
  return { run: (run ?? 0) / 1e9, wait: (wait ?? 0) / 1e9 };
}

/** CPU seconds used so far by a process (user + system). */
function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/**
 * Kernel counters of the whole machine: packets dropped because a CPU's input
 * backlog was full (/proc/net/softnet_stat; loopback traffic goes through it, at
 * most net.core.netdev_max_backlog packets) and TCP retransmission timeouts
 * (/proc/net/netstat TCPTimeouts): a dropped packet stalls its connection for a
 * retransmission timeout, 200 ms or more.
 */
function netCounters(): { drops: number; timeouts: number } {
  let drops = 0;
  for (const line of fs.readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n')) drops += parseInt(line.split(' ')[1] ?? '0', 16);
  const lines = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  const names = lines[0]?.split(' ') ?? [];
  const values = lines[1]?.split(' ') ?? [];
  return { drops, timeouts: Number(values[names.indexOf('TCPTimeouts')] ?? 0) };
}

/** Busy and total jiffies of the whole machine (all cores), from /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return { busy: total - idle, total };
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const get = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return get('used_cpu_sys') + get('used_cpu_user');
}

async function rss(metricsUrl: string, metric: string): Promise<number> {
  const headers: Record<string, string> = process.env.METRICS_TOKEN ? { authorization: `Bearer ${process.env.METRICS_TOKEN}` } : {};
  const text = await (await fetch(metricsUrl, { headers })).text();
  const m = new RegExp(`^${metric} (\\d+(?:\\.\\d+)?(?:e\\+\\d+)?)`, 'm').exec(text);
  if (!m) throw new Error(`${metric} not in ${metricsUrl}`);
  return Number(m[1]);
}

/**
 * Bytes the kernel holds on the connections to `port`: written by the server but
 * not yet read by the viewers (the server side's send queues and the viewer
 * side's receive queues), from `ss`.
 */
function kernelQueued(port: number): number {
  try {
    const out = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} or dport = :${port} )`], { maxBuffer: 64 * 2 ** 20 }).toString();
    let bytes = 0;
    for (const line of out.split('\n')) {
      const [recvQ, sendQ, local] = line.trim().split(/\s+/);
      if (!local) continue;
      bytes += local.endsWith(`:${port}`) ? Number(sendQ) : Number(recvQ);
    }
    return bytes;
  } catch {
    return NaN;
  }
}

function vmRss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

// ---------------------------------------------------------------- events

function eventFrame(auctionId: string, seq: number, bidderId: string) {
  const amount = 10_000 + seq * 100;
  return JSON.stringify({
    type: 'bid.placed',
    auctionId,
    seq,
    at: new Date().toISOString(),
    bidId: randomUUID(),
    bidderId,
    bidderName: 'Bench Bidder',
    amount,
    auto: false,
    currentPrice: amount,
    minNextBid: amount + 100,
    leaderId: bidderId,
    bidCount: seq,
    endsAt: '2030-01-01T00:00:00.000Z',
  });
}

/**
 * Appends events to the auction's stream at `rate`/s for `seconds` (open loop,
 * catching up in batches): seq `fromSeq + n` is due `n / rate` s after `startedAt`
 * (wall clock). Returns the last seq and how late the appends ever were.
 */
async function appendEvents(
  redis: Redis,
  prefix: string,
  auctionId: string,
  bidderId: string,
  rate: number,
  seconds: number,
  fromSeq: number,
  schedule: { startedAt: number },
) {
  const key = auctionStream(prefix, auctionId);
  const started = performance.now();
  schedule.startedAt = Date.now();
  let seq = fromSeq;
  let maxLag = 0;
  for (;;) {
    const elapsed = (performance.now() - started) / 1000;
    if (elapsed >= seconds) break;
    const due = fromSeq + Math.floor(rate * elapsed);
    if (due <= seq) {
      await sleep(2);
      continue;
    }
    maxLag = Math.max(maxLag, (due - seq - 1) / rate);
    const pipe = redis.pipeline();
    while (seq < due) {
      seq++;
      pipe.xadd(key, 'MAXLEN', '~', String(AUCTION_STREAM_MAXLEN), `${seq}-0`, 'event', eventFrame(auctionId, seq, bidderId));
    }
    await pipe.exec();
  }
  return { last: seq, maxLag };
}

// ---------------------------------------------------------------- servers

interface Server {
  name: string;
  port: number;
  child: ChildProcess;
  url: string;
  http: string;
  metric: string;
}

async function startOurs(env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const child = track(run('edge/ws/main.ts', { ...env, WS_PORT: String(port) }));
  const http = `http://127.0.0.1:${port}`;
  await waitReady(http);
  return { name: 'ours (uWebSockets.js)', port, child, url: `ws://127.0.0.1:${port}/ws`, http, metric: 'blytz_ws_process_resident_memory_bytes' };
}

async function startBaseline(env: Record<string, string>): Promise<Server> {
  const port = await freePort();
  const child = track(run('bench/ws-baseline.ts', { ...env, WS_PORT: String(port) }));
  const http = `http://127.0.0.1:${port}`;
  await waitReady(http);
  return { name: 'baseline (ws, send loop)', port, child, url: `ws://127.0.0.1:${port}/ws`, http, metric: 'process_resident_memory_bytes' };
}

interface ThroughputRow {
  server: string;
  kind?: 'big' | 'push' | 'small';
  viewers: number;
  subscribed: number;
  rate: number;
  offered: number;
  delivered: number;
  serverCpu: number;
  clientCpu: number[];
  /** Main threads' share of the wall time on a CPU or waiting for one (1 = saturated). */
  serverBusy: number;
  clientBusy: number[];
  /** How far behind the stream the viewers were when the run ended, in seconds of events: the median connection, and the most behind. */
  backlog: number;
  backlogMax: number;
  /** Of that, per viewer on average: sent by the server but in the kernel, or queued in the server (RSS growth); seconds of events. */
  queuedKernel: number;
  queuedServer: number;
  /** During the run: packets dropped by the kernel, TCP retransmission timeouts (machine-wide). */
  drops: number;
  rtos: number;
  redisCpu: number;
  /** Share of the whole machine (all cores) busy during the run. */
  machineBusy: number;
  /** Cores busy with anything but the server, the viewers and Redis (this process, Postgres, the kernel, other work). */
  otherCpu: number;
  closes: number;
  rssBefore: number;
  rssAfter: number;
  /** The last seq appended to the auction's stream. */
  last: number;
}

async function throughput(
  server: Server,
  viewers: Viewers,
  redis: Redis,
  prefix: string,
  auctionId: string,
  bidderId: string,
  n: number,
  rate: number,
  fromSeq = 0,
): Promise<ThroughputRow> {
  // The viewers subscribe once per auction; a later run on it continues its seq.
  const subscribed = fromSeq === 0 ? await viewers.subscribe(auctionId) : n;
  await sleep(1000);
  const rssBefore = vmRss(server.child.pid!);
  const schedule = { startedAt: Date.now() };
  const appending = appendEvents(redis, prefix, auctionId, bidderId, rate, WARM_SECONDS + SECONDS + 0.5, fromSeq, schedule);
  await sleep(WARM_SECONDS * 1000);
  // A saturated viewer process may take a second or more to see a command: each
  // measures its own window, and its delivered frames/s are events / its window.
  await viewers.start();
  const cpu0 = cpuSeconds(server.child.pid!);
  const pids = [server.child.pid!, ...viewers.procs.map((p) => p.child.pid!)];
  const threads0 = pids.map(mainThread);
  const redis0 = await redisCpuSeconds(redis);
  const m0 = machineTicks();
  const n0 = netCounters();
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const stopped = await viewers.stop();
  const n1 = netCounters();
  const kernel = kernelQueued(server.port);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(server.child.pid!);
  const busy = pids.map(mainThread).map((t, i) => (t.run + t.wait - threads0[i]!.run - threads0[i]!.wait) / seconds);
  const redis1 = await redisCpuSeconds(redis);
  const m1 = machineTicks();
  const appended = await appending;
  if (appended.maxLag > 0.2) console.log(`  note: the appends ran up to ${fmt(appended.maxLag, 2)} s late (this process was short of CPU)`);
  const frameBytes = Buffer.byteLength(eventFrame(auctionId, appended.last, bidderId)) + 4;
  const perViewerSeconds = (bytes: number) => bytes / frameBytes / subscribed / rate;
  const rssAfter = vmRss(server.child.pid!);
  const dueAt = (t: number) => fromSeq + Math.floor((rate * (t - schedule.startedAt)) / 1000);
  const lags = stopped.flatMap((s) => s.seqs.map((seq) => Math.max(0, (dueAt(s.stoppedAt) - seq) / rate))).sort((a, b) => a - b);
  return {
    server: server.name,
    viewers: n,
    subscribed,
    rate,
    offered: rate * subscribed,
    delivered: stopped.reduce((a, s) => a + s.events / s.seconds, 0),
    serverCpu: (cpu1 - cpu0) / seconds,
    clientCpu: stopped.map((s) => s.cpu),
    serverBusy: busy[0]!,
    clientBusy: busy.slice(1),
    backlog: percentileOf(lags, 50),
    backlogMax: percentileOf(lags, 100),
    redisCpu: (redis1 - redis0) / seconds,
    machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total),
    otherCpu: (CORES * (m1.busy - m0.busy)) / (m1.total - m0.total) - (cpu1 - cpu0) / seconds - stopped.reduce((a, s) => a + s.cpu, 0) - (redis1 - redis0) / seconds,
    closes: stopped.reduce((a, s) => a + s.closes, 0),
    rssBefore,
    rssAfter,
    queuedKernel: perViewerSeconds(kernel),
    drops: n1.drops - n0.drops,
    rtos: n1.timeouts - n0.timeouts,
    queuedServer: perViewerSeconds(Math.max(0, rssAfter - rssBefore)),
    last: appended.last,
  };
}

/** Waits (up to 20 s) until the server uses under a tenth of a core: the last run's backlog is gone. */
async function quiesce(pid: number): Promise<void> {
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    const c0 = cpuSeconds(pid);
    await sleep(500);
    if (cpuSeconds(pid) - c0 < 0.05) return;
  }
}

interface MemoryRow {
  server: string;
  before: number;
  after: number;
  opened: number;
}

/** One server's whole throughput + memory session (it runs alone on the machine). */
async function session(
  server: Server,
  viewers: Viewers,
  redis: Redis,
  prefix: string,
  auctions: { big: string; small: string },
  bidderId: string,
  push: boolean,
): Promise<{ rows: ThroughputRow[]; memory: MemoryRow }> {
  // Warm up the accept path, so its one-time allocations are not counted per connection.
  await viewers.open(server.url, 200);
  await viewers.closeAll();
  await sleep(1000);
  const before = await rss(`${server.http}/metrics`, server.metric);
  const { opened, failed } = await viewers.open(server.url, BIG);
  if (failed) console.log(`  ${server.name}: ${failed} of ${BIG} connections failed to open`);
  await sleep(2000);
  const after = await rss(`${server.http}/metrics`, server.metric);
  const memory = { server: server.name, before, after, opened };

  const rows: ThroughputRow[] = [];
  const bigRun = await throughput(server, viewers, redis, prefix, auctions.big, bidderId, opened, RATE_BIG);
  rows.push({ ...bigRun, kind: 'big' });
  // Ours delivers all of RATE_BIG: a second run at RATE_PUSH shows where it stops.
  if (push && RATE_PUSH > RATE_BIG) rows.push({ ...(await throughput(server, viewers, redis, prefix, auctions.big, bidderId, opened, RATE_PUSH, bigRun.last)), kind: 'push' });
  await viewers.closeAll();
  await quiesce(server.child.pid!);
  const small = await viewers.open(server.url, SMALL);
  rows.push({ ...(await throughput(server, viewers, redis, prefix, auctions.small, bidderId, small.opened, RATE_SMALL)), kind: 'small' });
  await viewers.closeAll();
  return { rows, memory };
}

// ---------------------------------------------------------------- latency

async function latency(env: Record<string, string>, db: Knex, viewers: Viewers, auctionId: string, tokens: string[]) {
  const edgePort = await freePort();
  const wsPort = await freePort();
  const edge = track(run('edge/http/main.ts', { ...env, PORT: String(edgePort) }));
  const worker = track(run('workers/main.ts', env));
  const broadcaster = track(run('edge/ws/main.ts', { ...env, WS_PORT: String(wsPort) }));
  try {
    const url = `http://127.0.0.1:${edgePort}`;
    await Promise.all([waitReady(url), waitReady(`http://127.0.0.1:${wsPort}`)]);
    const { opened } = await viewers.open(`ws://127.0.0.1:${wsPort}/ws`, LATENCY_VIEWERS);
    const subscribed = await viewers.subscribe(auctionId);
    await sleep(1000);

    let amount = 10_000;
    let n = 0;
    const statuses = new Map<number, number>();
    const bid = () => {
      amount += 20_000;
      const token = tokens[n++ % tokens.length]!;
      return fetch(`${url}/api/v1/auctions/${auctionId}/bid`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ amount }),
      }).then(
        async (res) => {
          await res.arrayBuffer();
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        },
        () => {
          statuses.set(0, (statuses.get(0) ?? 0) + 1);
        },
      );
    };
    /** Open loop: one bid every 1/BID_RATE s on schedule, whether or not the last has answered. */
    const bids = async (seconds: number) => {
      const inFlight: Promise<void>[] = [];
      const started = performance.now();
      for (let i = 0; i < seconds * BID_RATE; i++) {
        const wait = started + (i * 1000) / BID_RATE - performance.now();
        if (wait > 0) await sleep(wait);
        inFlight.push(bid());
      }
      await Promise.all(inFlight);
    };
    await bids(LATENCY_WARM_SECONDS); // JIT and pools warm up; not measured
    await sleep(1000);
    statuses.clear();
    const since = await db.raw('select clock_timestamp() as now');
    await viewers.start(true);
    await bids(LATENCY_SECONDS);
    await sleep(1500); // the last frames arrive
    const stopped = await viewers.stop();
    const accepted = statuses.get(202) ?? 0;
    const [p50, p99, max] = percentiles(stopped.map((s) => s.latencies), [50, 99, 100]);
    // Per frame, the first viewer of all to get it: the pipeline's own latency, without
    // the time the viewer processes take to get through 1,000 copies of each frame.
    const first = new Map<number, number>();
    for (const s of stopped) for (const [seq, ms] of s.firsts) first.set(seq, Math.min(ms, first.get(seq) ?? Infinity));
    const firstSorted = [...first.values()].sort((a, b) => a - b);
    // Per frame, from the first viewer of all to the last: how long the 1,000
    // copies took to be sent and read.
    const last = new Map<number, number>();
    for (const s of stopped) for (const [seq, ms] of s.lasts) last.set(seq, Math.max(ms, last.get(seq) ?? 0));
    const spreads = [...first].filter(([seq]) => last.has(seq)).map(([seq, ms]) => last.get(seq)! - ms).sort((a, b) => a - b);
    await viewers.closeAll();
    return {
      opened,
      subscribed,
      posted: [...statuses.values()].reduce((a, b) => a + b, 0),
      accepted,
      statuses: Object.fromEntries(statuses),
      frames: stopped.reduce((a, s) => a + s.events, 0),
      p50: p50!,
      p99: p99!,
      max: max!,
      firstP50: percentileOf(firstSorted, 50),
      firstP99: percentileOf(firstSorted, 99),
      spread: { p50: percentileOf(spreads, 50), p90: percentileOf(spreads, 90), max: percentileOf(spreads, 100) },
      clientCpu: stopped.map((s) => s.cpu),
      commit: await bidToCommit(db, auctionId, since.rows[0].now as Date),
    };
  } finally {
    await Promise.all([stop(edge), stop(worker), stop(broadcaster)]);
  }
}

/**
 * What held a run back. Everything delivered, little backlog: the offered rate.
 * Otherwise, where the backlog was when the run ended: mostly sent already (in
 * the kernel's socket queues) or queued in the server for the viewers (its RSS
 * grew): the viewers read slower than the server sent; else the server had not
 * sent it yet: the server (Node runs JS and uWS's loop on one thread; on two
 * shared cores it may get much less than a whole one).
 */
function limitOf(r: ThroughputRow): string {
  if (r.delivered >= 0.95 * r.offered && r.backlog < 1) return 'offered rate (all delivered)';
  if (r.queuedKernel + r.queuedServer >= 0.5 * r.backlog) return 'viewers (the backlog was sent or queued for them)';
  const share = r.serverCpu >= 0.9 ? 'a full core' : `${fmt(r.serverCpu * 100)}% of a core`;
  return `server, on ${share}${r.machineBusy >= 0.9 ? ' (all cores busy)' : ''}`;
}

/** The pipeline's share of the latency: applied_at − received_at of the bids, from the database. */
async function bidToCommit(db: Knex, auctionId: string, since: Date): Promise<{ p50: number; p99: number }> {
  const { rows } = await db.raw(
    `select percentile_cont(0.5) within group (order by extract(epoch from applied_at - received_at)) * 1000 as p50,
            percentile_cont(0.99) within group (order by extract(epoch from applied_at - received_at)) * 1000 as p99
     from bids where auction_id = ? and received_at >= ? and applied_at is not null`,
    [auctionId, since],
  );
  return { p50: Number(rows[0]?.p50), p99: Number(rows[0]?.p99) };
}

// ---------------------------------------------------------------- seeding

/** The open-file limit a spawned Node process gets: Node raises its soft limit to the hard one at start-up. */
function fileLimit(): number {
  try {
    const out = execFileSync(process.execPath, ['-e', "process.stdout.write(require('fs').readFileSync('/proc/self/limits','utf8'))"]).toString();
    const m = /Max open files\s+(\d+|unlimited)/.exec(out);
    return m?.[1] === 'unlimited' ? Infinity : Number(m?.[1] ?? 1024);
  } catch {
    return 1024;
  }
}

// ---------------------------------------------------------------- the benchmark

export async function benchFanout(): Promise<void> {
  const limit = fileLimit();
  // The server holds every connection (plus ~100 descriptors of its own); each viewer process half.
  const big = Math.min(BIG, limit - 200);
  if (big < BIG) console.log(`open-file limit ${limit}: ${big} viewers instead of ${BIG} (raise the hard limit, \`ulimit -Hn\`, for more)`);
  console.log(
    `fanout benchmark: ${fmt(big)} and ${fmt(SMALL)} viewers in ${VIEWER_PROCESSES} processes, ${RATE_BIG} (ours also ${RATE_PUSH}) and ${RATE_SMALL} events/s, ${SECONDS} s measured after ${WARM_SECONDS} s; ` +
      `latency: ${LATENCY_VIEWERS} viewers, ${BID_RATE} bids/s for ${LATENCY_SECONDS} s; open-file limit per process ${limit}; ` +
      `load average ${os.loadavg().map((l) => fmt(l, 2)).join(' ')}`,
  );
  const onSignal = () => {
    killAll();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', killAll);

  await freshDatabase(DB);
  const prefix = `benchfanout${Date.now()}`;
  const env = benchEnv({ DB_NAME: DB, REDIS_PREFIX: prefix, RATE_LIMIT_BIDS_PER_MIN: '100000000', HOST: '127.0.0.1' });
  const config = loadConfig(env);
  const db = createDb(config, { poolMax: 2 });
  const redis = new Redis({ host: config.redis.host, port: config.redis.port });
  const { bidders, auctions } = await seedLiveAuctions(db, 5, 50);
  const keys = loadKeys(config);
  const tokens = bidders.map((b) => signAccessToken(keys, config, { id: b.id, role: b.role, name: b.name, sid: randomUUID() }));
  const [oursBig, oursSmall, baseBig, baseSmall, live] = auctions as [string, string, string, string, string];
  const bidderId = bidders[0]!.id;

  const viewers = new Viewers();
  const rows: ThroughputRow[] = [];
  const memory: MemoryRow[] = [];
  let lat: Awaited<ReturnType<typeof latency>> | undefined;
  try {
    for (const [name, start, set] of [
      ['ours', startOurs, { big: oursBig, small: oursSmall }],
      ['baseline', startBaseline, { big: baseBig, small: baseSmall }],
    ] as const) {
      if (!SERVERS.includes(name)) continue;
      const server = await start(env);
      try {
        const r = await session(server, viewers, redis, prefix, set, bidderId, name === 'ours');
        rows.push(...r.rows);
        memory.push(r.memory);
      } finally {
        await viewers.closeAll().catch(() => undefined);
        await stop(server.child);
      }
    }
    if (!process.env.BENCH_FANOUT_SKIP_LATENCY) lat = await latency(env, db, viewers, live, tokens);
  } finally {
    await viewers.exit();
    killAll();
    redis.disconnect();
    await db.destroy();
    await dropRedisPrefix(prefix);
  }

  if (rows.length) printThroughput(rows, big);
  if (memory.length) printMemory(memory);
  if (lat) printLatency(lat);
}

const pct = (x: number) => `${fmt(x * 100)}%`;

function printThroughput(rows: ThroughputRow[], big: number): void {
  console.log('\n**Throughput** (delivered: event frames counted by the viewers per second)\n');
  console.log('| server | viewers | events/s | offered frames/s | delivered frames/s | delivered | frames per server CPU-second | limit |\n|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.server} | ${fmt(r.subscribed)} | ${fmt(r.rate)} | ${fmt(r.offered)} | ${fmt(r.delivered)} | ${pct(r.delivered / r.offered)} | ${fmt(r.delivered / r.serverCpu)} | ${limitOf(r)} |`,
    );
  }
  console.log(
    '\nWhere the time went (backlog: how far behind the stream the viewers were when the run ended, in seconds of events, median / most behind connection, ' +
      'and of it, per viewer, sent and in the kernel / queued in the server; CPU: cores used, all threads; busy: share of the time the main thread was on a CPU or waiting for one; ' +
      'packets dropped by the kernel and TCP retransmission timeouts, machine-wide)\n',
  );
  console.log(
    '| server | viewers | events/s | backlog (in kernel / in server) | server CPU (busy) | viewer processes CPU (busy) | Redis CPU | other CPU | machine busy | packets dropped / TCP timeouts | closed by server | server RSS before → after |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(
      `| ${r.server} | ${fmt(r.subscribed)} | ${fmt(r.rate)} | ${fmt(r.backlog, 1)} / ${fmt(r.backlogMax, 1)} s (${fmt(r.queuedKernel, 1)} / ${fmt(r.queuedServer, 1)} s) | ${pct(r.serverCpu)} (${pct(r.serverBusy)}) | ${r.clientCpu.map((c, i) => `${pct(c)} (${pct(r.clientBusy[i]!)})`).join(' + ')} | ${pct(r.redisCpu)} | ${pct(Math.max(0, r.otherCpu))} | ${pct(r.machineBusy)} | ${fmt(r.drops)} / ${fmt(r.rtos)} | ${fmt(r.closes)} | ${fmt(r.rssBefore / 2 ** 20)} → ${fmt(r.rssAfter / 2 ** 20)} MiB |`,
    );
  }
  for (const [kind, n] of [['big', big], ['small', SMALL]] as const) {
    // Same viewers, same offered rate.
    const ours = rows.find((r) => r.kind === kind && r.server.startsWith('ours'));
    const base = rows.find((r) => r.kind === kind && r.server.startsWith('baseline'));
    if (ours && base) {
      console.log(
        `\n${fmt(n)} viewers, ours / baseline: **${fmt(ours.delivered / base.delivered, 2)}x** delivered frames/s` +
          `${ours.delivered >= 0.95 * ours.offered ? ' (ours delivered all it was offered: a lower bound)' : ''}; ` +
          `${fmt(ours.delivered / ours.serverCpu / (base.delivered / base.serverCpu), 2)}x frames per server CPU-second`,
      );
    }
  }
}

function printMemory(memory: MemoryRow[]): void {
  console.log('\n**Memory per idle connection** (server RSS from its /metrics)\n');
  console.log('| server | RSS before | RSS with idle connections | connections | per connection |\n|---|---|---|---|---|');
  for (const m of memory) {
    console.log(`| ${m.server} | ${fmt(m.before / 2 ** 20, 1)} MiB | ${fmt(m.after / 2 ** 20, 1)} MiB | ${fmt(m.opened)} | ${fmt((m.after - m.before) / m.opened / 1024, 1)} KiB |`);
  }
}

function printLatency(lat: Awaited<ReturnType<typeof latency>>): void {
  console.log('\n**Latency** (full pipeline: HTTP bid → edge → queue → worker → stream → broadcaster → viewer)\n');
  console.log(
    '| viewers | bids/s | bids accepted | frames received | expected | bid→viewer p50 / p99 / max | bid→first viewer p50 / p99 | of it, bid→commit p50 / p99 (database) | viewer processes CPU |\n|---|---|---|---|---|---|---|---|---|',
  );
  console.log(
    `| ${fmt(lat.subscribed)} | ${BID_RATE} | ${fmt(lat.accepted)} of ${fmt(lat.posted)} | ${fmt(lat.frames)} | ${fmt(lat.accepted * lat.subscribed)} | ${fmt(lat.p50)} / ${fmt(lat.p99)} / ${fmt(lat.max)} ms | ${fmt(lat.firstP50)} / ${fmt(lat.firstP99)} ms | ${fmt(lat.commit.p50, 1)} / ${fmt(lat.commit.p99, 1)} ms | ${lat.clientCpu.map(pct).join(' + ')} |`,
  );
  console.log(`Per frame, first viewer → last viewer: p50 ${fmt(lat.spread.p50)} / p90 ${fmt(lat.spread.p90)} / max ${fmt(lat.spread.max)} ms (the broadcaster's sends and the viewer processes' reads of the ${fmt(lat.subscribed)} copies).`);
  const other = Object.entries(lat.statuses).filter(([s]) => s !== '202');
  if (other.length) console.log(`HTTP statuses other than 202: ${JSON.stringify(Object.fromEntries(other))}`);
}
