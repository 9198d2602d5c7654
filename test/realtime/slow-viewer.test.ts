/**
 * A viewer that stops reading: uWS closes it once its send buffer passes 1 MiB
 * (memory stays bounded), it never gets a silent gap, and the broadcaster's
 * metrics say why it went (blytz_ws_closed_total, blytz_ws_dropped_total).
 */
import test from 'ava';
import { WebSocket } from 'ws';
import { registerUser, useSystem } from '../helpers/system.js';
import { insertLiveAuctions, waitFor } from '../helpers/auctions.js';
import { auctionStream } from '../../queues/streams.js';
import { closeReason } from '../../edge/ws/server.js';

const system = useSystem(test, { broadcaster: true });

async function metrics(url: string): Promise<string> {
  return (await fetch(url.replace('ws://', 'http://').replace('/ws', '/metrics'))).text();
}
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
};

test('closeReason: close codes and the last sampled backlog', (t) => {
  t.is(closeReason(1000, 0), 'normal');
  t.is(closeReason(1001, 0), 'normal');
  t.is(closeReason(1005, 0), 'normal');
  t.is(closeReason(4401, 0), 'session_ended');
  t.is(closeReason(1006, 0), 'lost');
  t.is(closeReason(1006, 64 * 1024 - 1), 'lost');
  t.is(closeReason(1006, 64 * 1024), 'slow_viewer');
  t.is(closeReason(1009, 0), 'other');
});

test('a viewer that stops reading is closed, with no gap in what it got, and counted as a slow viewer', async (t) => {
  const sys = system();
  const url = sys.broadcaster!.url;
  const seller = await registerUser(sys, 'seller');
  const [id] = await insertLiveAuctions(sys.db, seller.id, 1);
  const before = await metrics(url);

  // A viewer that reads normally, and leaves normally.
  const polite = new WebSocket(url);
  await new Promise((r) => polite.once('open', r));
  polite.close(1000);

  const ws = new WebSocket(url, { perMessageDeflate: false });
  const got: number[] = [];
  let closed = false;
  ws.on('message', (d) => {
    const f = JSON.parse(String(d)) as { type: string; seq?: number };
    if (f.type === 'subscribed') return;
    if (typeof f.seq === 'number') got.push(f.seq);
  });
  ws.on('close', () => (closed = true));
  await new Promise((r) => ws.once('open', r));
  ws.send(JSON.stringify({ type: 'subscribe', auctionId: id }));
  await waitFor(async () => (value(await metrics(url), 'blytz_ws_subscriptions') === 1 ? true : undefined), 5_000, 'subscribed');
  // It stops reading; events keep coming at ~1.6 MB/s (kernel buffers fill first, then uWS's).
  (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
  const stream = auctionStream(sys.config.redis.prefix, id!);
  const pad = 'x'.repeat(8_000);
  let seq = 0;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && value(await metrics(url), 'blytz_ws_connections') > 0) {
    const p = sys.redis.pipeline();
    for (let k = 0; k < 10; k++) {
      seq++;
      p.xadd(stream, 'MAXLEN', '~', '100000', `${seq}-0`, 'event', JSON.stringify({ type: 'auction.extended', auctionId: id, seq, at: Date.now(), endsAt: Date.now(), pad }));
    }
    await p.exec();
    await new Promise((r) => setTimeout(r, 50));
  }
  const after = await metrics(url);
  t.is(value(after, 'blytz_ws_connections'), 0, 'the slow viewer was closed');
  t.is(value(after, 'blytz_ws_closed_total{reason="slow_viewer"}') - value(before, 'blytz_ws_closed_total{reason="slow_viewer"}'), 1);
  t.is(value(after, 'blytz_ws_dropped_total') - value(before, 'blytz_ws_dropped_total'), 1);
  t.is(value(after, 'blytz_ws_closed_total{reason="normal"}') - value(before, 'blytz_ws_closed_total{reason="normal"}'), 1);
  // What it did get has no gap, and it was closed rather than skipped past.
  (ws as unknown as { _socket: { resume(): void } })._socket.resume();
  await waitFor(async () => (closed ? true : undefined), 15_000, 'client sees the close');
  t.true(got.length > 0 && got.length < seq, `got ${got.length} of ${seq}`);
  t.deepEqual(got, got.map((_, i) => i + 1));
});
