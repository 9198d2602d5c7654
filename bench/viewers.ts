/**
 * The viewers of the fan-out benchmark, run as their own process (forked with an
 * IPC channel by bench/fanout.ts): real WebSocket clients (the `ws` package) that
 * open connections, subscribe to an auction, and count the event frames they
 * receive. Driven by messages from the parent:
 *
 *   { cmd: 'open', url, count }          open `count` more connections (idle)
 *   { cmd: 'subscribe', auctionId }      subscribe every open connection, wait for `subscribed`
 *   { cmd: 'start', latency }            reset the counters (latency: also parse `at`)
 *   { cmd: 'stop' }                      answer the counters since `start`, and the
 *                                        last seq each open connection has seen
 *   { cmd: 'closeAll' }                  close every connection
 *   { cmd: 'exit' }
 *
 * Every command is answered with one message `{ cmd, ...result }`. Counting is
 * kept cheap (a prefix compare on the raw Buffer, no JSON parse) unless latency
 * is asked for, so the client side spends as little CPU per frame as it can.
 * Latency is receive time − the frame's `at`, in whole milliseconds (`at` has
 * millisecond precision), answered as a histogram `[ms, frames][]`, and per frame
 * the latency of the first and of the last viewer (of this process) that got it,
 * `[seq, ms][]` each.
 */
import WebSocket from 'ws';

interface Viewer {
  ws: WebSocket;
  subscribed: boolean;
  /** The seq of the last event frame received. */
  seq: number;
}

type Command =
  | { cmd: 'open'; url: string; count: number }
  | { cmd: 'subscribe'; auctionId: string }
  | { cmd: 'start'; latency: boolean }
  | { cmd: 'stop' }
  | { cmd: 'closeAll' }
  | { cmd: 'exit' };

const EVENT = Buffer.from('{"type":"bid.placed"');
// Frames as stored by the publisher start `{"type":"bid.placed","auctionId":"<uuid>","seq":`.
const SEQ_AT = '{"type":"bid.placed","auctionId":"'.length + 36;
const SEQ_KEY = Buffer.from('","seq":');
const SUBSCRIBED = Buffer.from('{"type":"subscribed"');
const OPENING_AT_ONCE = 256;

const viewers: Viewer[] = [];
let events = 0;
let unexpectedCloses = 0;
let latency = false;
/** Latency histogram: whole milliseconds → frames (exact, and cheap to merge across processes). */
const latencies = new Map<number, number>();
/** Per frame (seq), the latency of the first of this process's viewers to get it. */
const firsts = new Map<number, number>();
/** Per frame (seq), the latency of the last of this process's viewers to get it. */
const lasts = new Map<number, number>();
/** Per frame (seq), its `at` (ms). */
const atBySeq = new Map<number, number>();
let startedAt = 0;
let cpuAt = process.cpuUsage();
let closing = false;
let onSubscribed: (() => void) | null = null;
let pendingSubscribed = 0;

const startsWith = (buf: Buffer, prefix: Buffer) => buf.length >= prefix.length && buf.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;

function onMessage(this: Viewer, data: Buffer) {
  if (startsWith(data, EVENT)) {
    events++;
    this.seq = seqOf(data);
    if (latency) {
      // Every viewer gets the same frame: parse its `at` once per frame, not once per
      // viewer (1,000 parses per frame added milliseconds to the later viewers' latency).
      let at = atBySeq.get(this.seq);
      if (at === undefined) atBySeq.set(this.seq, (at = Date.parse((JSON.parse(data.toString()) as { at: string }).at)));
      const ms = Date.now() - at;
      latencies.set(ms, (latencies.get(ms) ?? 0) + 1);
      if (!firsts.has(this.seq)) firsts.set(this.seq, ms);
      if ((lasts.get(this.seq) ?? -1) < ms) lasts.set(this.seq, ms);
    }
  } else if (!this.subscribed && startsWith(data, SUBSCRIBED)) {
    this.subscribed = true;
    if (--pendingSubscribed === 0) onSubscribed?.();
  }
}

/** The frame's seq, read in place (no JSON parse) when the frame has the publisher's layout. */
function seqOf(data: Buffer): number {
  if (data.compare(SEQ_KEY, 0, SEQ_KEY.length, SEQ_AT, SEQ_AT + SEQ_KEY.length) !== 0) return (JSON.parse(data.toString()) as { seq: number }).seq;
  let seq = 0;
  for (let i = SEQ_AT + SEQ_KEY.length; i < data.length; i++) {
    const d = data[i]! - 48;
    if (d < 0 || d > 9) break;
    seq = seq * 10 + d;
  }
  return seq;
}

function openOne(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    const v: Viewer = { ws, subscribed: false, seq: 0 };
    ws.on('message', onMessage.bind(v) as (data: WebSocket.RawData) => void);
    ws.once('open', () => {
      viewers.push(v);
      resolve(true);
    });
    ws.once('error', () => resolve(false));
    ws.once('close', () => {
      if (!closing) unexpectedCloses++;
    });
  });
}

async function open(url: string, count: number) {
  let failed = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(OPENING_AT_ONCE, count) }, async () => {
      while (next < count) {
        next++;
        if (!(await openOne(url))) failed++;
      }
    }),
  );
  return { opened: viewers.length, failed };
}

async function subscribe(auctionId: string) {
  const frame = JSON.stringify({ type: 'subscribe', auctionId });
  const todo = viewers.filter((v) => !v.subscribed && v.ws.readyState === WebSocket.OPEN);
  pendingSubscribed = todo.length;
  const done = new Promise<void>((resolve) => {
    onSubscribed = resolve;
    if (pendingSubscribed === 0) resolve();
  });
  // The broadcaster allows bursts of 40 frames per connection: one each is fine.
  for (let i = 0; i < todo.length; i++) {
    todo[i]!.ws.send(frame);
    if (i % 500 === 499) await new Promise((r) => setImmediate(r));
  }
  const timedOut = await Promise.race([done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 30_000))]);
  onSubscribed = null;
  return { subscribed: viewers.filter((v) => v.subscribed).length, timedOut };
}

async function handle(m: Command): Promise<Record<string, unknown>> {
  switch (m.cmd) {
    case 'open':
      return open(m.url, m.count);
    case 'subscribe':
      return subscribe(m.auctionId);
    case 'start':
      latency = m.latency;
      events = 0;
      unexpectedCloses = 0;
      latencies.clear();
      firsts.clear();
      lasts.clear();
      atBySeq.clear();
      startedAt = performance.now();
      cpuAt = process.cpuUsage();
      return {};
    case 'stop': {
      const seconds = (performance.now() - startedAt) / 1000;
      const cpu = process.cpuUsage(cpuAt);
      const open = viewers.filter((v) => v.ws.readyState === WebSocket.OPEN);
      return {
        events,
        seconds,
        /** Wall clock (shared by the processes) at the end of the window. */
        stoppedAt: Date.now(),
        cpu: (cpu.user + cpu.system) / 1e6 / seconds,
        closes: unexpectedCloses,
        open: open.length,
        // The last seq each open connection has seen.
        seqs: open.map((v) => v.seq),
        latencies: [...latencies],
        firsts: [...firsts],
        lasts: [...lasts],
      };
    }
    case 'closeAll': {
      closing = true;
      const all = viewers.splice(0);
      await Promise.all(
        all.map(
          (v) =>
            new Promise<void>((resolve) => {
              if (v.ws.readyState === WebSocket.CLOSED) return resolve();
              v.ws.once('close', () => resolve());
              v.ws.terminate();
            }),
        ),
      );
      closing = false;
      return { closed: all.length };
    }
    case 'exit':
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (m: Command) => {
  void handle(m).then(
    (result) => process.send!({ cmd: m.cmd, ...result }),
    (err: unknown) => process.send!({ cmd: m.cmd, error: (err as Error).message }),
  );
});
// The parent is gone: nothing to report to.
process.on('disconnect', () => process.exit(0));
