/**
 * The load generator, run as its own process: fires POST …/bid at a fixed
 * overall rate and prints the result as one JSON line.
 *
 * Open loop: request i is due at start + i/rate whether or not earlier ones
 * have answered. It goes out on an idle keep-alive connection (one request in
 * flight per connection, at most `connections`); when none is idle it waits
 * for one, and its latency still counts from when it was due, so a server
 * that falls behind shows it in the percentiles (no coordinated omission).
 *
 * Why not autocannon (still used by the catalog benchmark, which runs closed
 * loop in-process): it cost about 280 µs of CPU per request here, a quarter of
 * this 2-core machine at 2,000 bids/s, taken from the system under test. This
 * one builds every request's bytes before the clock starts and reads only the
 * status line and Content-Length of each answer.
 *
 * Input (argv[2], a JSON file): { url, pathPrefix, rate, seconds, connections,
 *   auctions: string[], skew: 'uniform' | '80/20', tokens: string[], amountFrom? }
 */
import fs from 'node:fs';
import net from 'node:net';
import { increment } from '../auction/increments.js';

interface Plan {
  url: string;
  pathPrefix: string;
  rate: number;
  seconds: number;
  connections: number;
  auctions: string[];
  skew: 'uniform' | '80/20';
  tokens: string[];
  /** Each auction's first bid (a run on auctions an earlier run bid on starts above them). */
  amountFrom?: number;
}

const plan = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as Plan;
const target = new URL(plan.url);
const total = Math.round(plan.rate * plan.seconds);
const DRAIN_MS = 10_000; // answers still missing this long after the last request are timeouts

// ---- every request, built up front ----
let seed = 42;
const rand = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const hot = Math.max(1, Math.floor(plan.auctions.length * 0.2));
function pickAuction(): string {
  if (plan.skew === '80/20' && plan.auctions.length > 1) {
    return rand() < 0.8 ? plan.auctions[Math.floor(rand() * hot)]! : plan.auctions[hot + Math.floor(rand() * (plan.auctions.length - hot))]!;
  }
  return plan.auctions[Math.floor(rand() * plan.auctions.length)]!;
}
const next = new Map<string, number>();
const requests: Buffer[] = new Array(total);
for (let i = 0; i < total; i++) {
  const auction = pickAuction();
  // Each auction's bids step up by its increment (the least that can win), so a
  // bid is accepted unless it overtakes one sent just before it.
  const prev = next.get(auction);
  const amount = prev === undefined ? (plan.amountFrom ?? 10_000) : prev + increment(prev);
  next.set(auction, amount);
  const body = JSON.stringify({ amount });
  requests[i] = Buffer.from(
    `POST ${plan.pathPrefix}/${auction}/bid HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\n` +
      `Authorization: Bearer ${plan.tokens[i % plan.tokens.length]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

// ---- connections ----
interface Conn {
  socket: net.Socket;
  busy: boolean;
  due: number; // when its request in flight was due (ms, performance.now())
  buf: Buffer;
}
const idle: Conn[] = [];
const latencies = new Float64Array(total);
let answered = 0;
let sent = 0;
let ok = 0;
let non2xx = 0;
let errors = 0;
let lastOk = 0;

function connect(): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.hostname, port: Number(target.port), noDelay: true });
    const conn: Conn = { socket, busy: false, due: 0, buf: Buffer.alloc(0) };
    socket.once('connect', () => resolve(conn));
    socket.once('error', reject);
    socket.on('data', (chunk: Buffer) => onData(conn, chunk));
    socket.on('close', () => {
      if (conn.busy) {
        errors++;
        conn.busy = false;
      }
      const at = idle.indexOf(conn);
      if (at >= 0) idle.splice(at, 1);
      if (!finished) void connect().then(release, () => {});
    });
  });
}

/** One whole answer in `conn.buf`: its status, and how many bytes it took; null while incomplete. */
function parse(buf: Buffer): { status: number; length: number } | null {
  const head = buf.indexOf('\r\n\r\n');
  if (head < 0) return null;
  const status = Number(buf.toString('latin1', 9, 12));
  const headers = buf.toString('latin1', 0, head).toLowerCase();
  const cl = headers.match(/\r\ncontent-length: *(\d+)/);
  if (cl) {
    const length = head + 4 + Number(cl[1]);
    return buf.length >= length ? { status, length } : null;
  }
  if (headers.includes('transfer-encoding: chunked')) {
    const end = buf.indexOf('\r\n0\r\n\r\n', head);
    return end < 0 ? null : { status, length: end + 7 };
  }
  return { status, length: head + 4 };
}

function onData(conn: Conn, chunk: Buffer): void {
  conn.buf = conn.buf.length ? Buffer.concat([conn.buf, chunk]) : chunk;
  for (;;) {
    const r = parse(conn.buf);
    if (!r) return;
    conn.buf = conn.buf.subarray(r.length);
    if (!conn.busy) continue;
    latencies[answered++] = performance.now() - conn.due;
    if (r.status >= 200 && r.status < 300) {
      ok++;
      lastOk = performance.now();
    } else non2xx++;
    conn.busy = false;
    release(conn);
  }
}

// Requests go out in order: those from `sent` up to `due` are due and waiting for a connection.
let due = 0;
let finished = false;
let start = 0;
let interval = 0;

/** Sends the next due request on `conn`, or keeps `conn` idle when none is waiting. */
function release(conn: Conn): void {
  if (sent >= due) {
    idle.push(conn);
    return;
  }
  conn.busy = true;
  conn.due = start + sent * interval;
  conn.socket.write(requests[sent++]!);
}

const conns = await Promise.all(Array.from({ length: plan.connections }, connect));
idle.push(...conns);

const cpuBefore = process.cpuUsage();
start = performance.now();
interval = 1000 / plan.rate;
await new Promise<void>((resolve) => {
  const tick = () => {
    due = Math.min(total, Math.floor((performance.now() - start) / interval) + 1);
    while (sent < due && idle.length > 0) release(idle.pop()!);
    if (due < total) setTimeout(tick, 1);
    else resolve();
  };
  tick();
});

const until = performance.now() + DRAIN_MS;
while ((answered + errors < total) && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
const durationS = (performance.now() - start) / 1000;
finished = true;
for (const c of conns) c.socket.destroy();

const done = latencies.subarray(0, answered).sort();
const pct = (p: number) => (done.length ? Math.round(done[Math.min(done.length - 1, Math.floor((p / 100) * done.length))]!) : 0);
process.stdout.write(
  JSON.stringify({
    sent,
    ok,
    non2xx,
    errors,
    timeouts: total - answered - errors,
    rps: Math.round(answered / durationS),
    // 2xx answers per second while answering: a saturated server's throughput.
    okPerSecond: ok ? Math.round(ok / ((lastOk - start) / 1000)) : 0,
    p50: pct(50),
    p99: pct(99),
    durationS,
    // This process's CPU from the first request on, so the benchmark can show what the load itself cost.
    cpuMs: (() => {
      const c = process.cpuUsage(cpuBefore);
      return (c.user + c.system) / 1000;
    })(),
  }) + '\n',
);
process.exit(0);
