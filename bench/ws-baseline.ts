/**
 * The fan-out baseline: a plain `ws` server, written the straightforward way.
 * It accepts the same subscribe frame as the broadcaster (`{"type":"subscribe",
 * "auctionId":…}` → `{"type":"subscribed",…}`), reads each subscribed auction's
 * Redis stream with XREAD BLOCK, and sends every event to every subscriber of
 * the auction by looping `client.send(event)`. No auth, replay or backpressure
 * handling: only what fan-out needs.
 *
 * Env: WS_PORT, REDIS_HOST, REDIS_PORT, REDIS_PREFIX. Serves /readyz and /metrics
 * (`process_resident_memory_bytes`, as prom-client names it) on the same port.
 */
import http from 'node:http';
import { Redis } from 'ioredis';
import { WebSocketServer, WebSocket } from 'ws';
import { auctionStream } from '../queues/streams.js';

const port = Number(process.env.WS_PORT ?? 0);
const prefix = process.env.REDIS_PREFIX ?? 'blytz';
const redisOptions = { host: process.env.REDIS_HOST ?? '127.0.0.1', port: Number(process.env.REDIS_PORT ?? 6379) };

const subscribers = new Map<string, Set<WebSocket>>();
const readers = new Map<string, Redis>();
let stopping = false;

/** One blocking reader per auction with subscribers, from the stream's end. */
async function read(auctionId: string): Promise<void> {
  const redis = new Redis(redisOptions);
  readers.set(auctionId, redis);
  const key = auctionStream(prefix, auctionId);
  let lastId = '$';
  while (!stopping) {
    let res: [string, [string, string[]][]][] | null;
    try {
      res = (await redis.xread('COUNT', 100, 'BLOCK', 1000, 'STREAMS', key, lastId)) as typeof res;
    } catch {
      if (stopping) break;
      await new Promise((r) => setTimeout(r, 250));
      continue;
    }
    for (const [, entries] of res ?? []) {
      for (const [id, fields] of entries) {
        lastId = id;
        const event = fields[fields.indexOf('event') + 1]!;
        for (const client of subscribers.get(auctionId) ?? []) {
          if (client.readyState === WebSocket.OPEN) client.send(event);
        }
      }
    }
  }
}

const server = http.createServer((req, res) => {
  if (req.url === '/readyz') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ready"}');
  } else if (req.url === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`process_resident_memory_bytes ${process.memoryUsage.rss()}\n`);
  } else {
    res.writeHead(404).end();
  }
});
const wss = new WebSocketServer({ server, path: '/ws' });

wss.on('connection', (ws) => {
  const mine = new Set<string>();
  ws.on('message', (data) => {
    let frame: { type?: unknown; auctionId?: unknown };
    try {
      frame = JSON.parse(data.toString());
    } catch {
      return void ws.send(JSON.stringify({ type: 'error', code: 'bad_frame', message: 'frame is not valid JSON' }));
    }
    if (frame.type !== 'subscribe' || typeof frame.auctionId !== 'string') {
      return void ws.send(JSON.stringify({ type: 'error', code: 'unknown_type', message: 'only subscribe here' }));
    }
    const auctionId = frame.auctionId;
    let set = subscribers.get(auctionId);
    if (!set) {
      subscribers.set(auctionId, (set = new Set()));
      void read(auctionId);
    }
    set.add(ws);
    mine.add(auctionId);
    ws.send(JSON.stringify({ type: 'subscribed', auctionId }));
  });
  ws.on('close', () => {
    for (const auctionId of mine) subscribers.get(auctionId)?.delete(ws);
  });
  ws.on('error', () => undefined);
});

server.listen(port, '127.0.0.1');

process.on('SIGTERM', () => {
  stopping = true;
  for (const r of readers.values()) r.disconnect();
  for (const c of wss.clients) c.terminate();
  wss.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
