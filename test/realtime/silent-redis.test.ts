/**
 * Redis connections that go silent: no answer and no close, as when a host is
 * lost or a partition or failover leaves a load balancer holding the flow. The
 * edge, the broadcaster and a worker process reach a private redis-server
 * through a TCP proxy that silences every connection open at one moment; they
 * must notice, connect again, and go on: bids answered and applied, live events
 * delivered, subscriptions served.
 */
import test from 'ava';
import { Redis } from 'ioredis';
import { createLogger } from '../../lib/logger.js';
import { startEdge } from '../../edge/http/server.js';
import { startBroadcaster } from '../../edge/ws/server.js';
import { auctionStream } from '../../queues/streams.js';
import { registerUser, useSystem } from '../helpers/system.js';
import { liveAuction, verdict, waitFor } from '../helpers/auctions.js';
import { connectWs, seqs } from '../helpers/ws.js';
import { client } from '../helpers/http.js';
import { startTcpProxy } from '../helpers/proxy.js';
import { spawnNode } from '../helpers/process.js';
import { testEnv } from '../helpers/config.js';

const system = useSystem(test, { privateRedis: true });

test('the edge, the broadcaster and a worker recover from Redis connections gone silent', async (t) => {
  t.timeout(90_000);
  const sys = system();
  const proxy = await startTcpProxy(sys.privateRedis!.port);
  const config = { ...sys.config, redis: { ...sys.config.redis, port: proxy.port } };
  const logger = createLogger('test', 'silent');
  const edge = await startEdge(config, logger);
  const broadcaster = await startBroadcaster(config, logger);
  const worker = spawnNode('workers/main.ts', testEnv({ ...sys.env, REDIS_PORT: String(proxy.port), LOG_LEVEL: 'info' }));
  const direct = new Redis({ host: '127.0.0.1', port: sys.privateRedis!.port });
  direct.on('error', () => undefined);
  const api = client(edge.url);
  try {
    await worker.waitForLine(/workers started/, 30_000);
    const seller = await registerUser(sys, 'seller');
    const buyer = await registerUser(sys, 'buyer');
    const rival = await registerUser(sys, 'buyer');
    const publish = async (id: string, seq: number) => {
      const frame = { type: 'auction.extended', auctionId: id, seq, at: new Date().toISOString(), endsAt: new Date(Date.now() + 60_000).toISOString() };
      await sys.db('auction_events').insert({ auction_id: id, seq, type: frame.type, payload: JSON.stringify(frame) });
      await sys.db('auctions').where({ id }).update({ seq, published_seq: seq });
      await direct.xadd(auctionStream(sys.config.redis.prefix, id), `${seq}-0`, 'event', JSON.stringify(frame));
    };
    const a = await liveAuction(sys, seller, { softCloseSeconds: 0 });
    const b = await liveAuction(sys, seller, { softCloseSeconds: 0 });
    const bidden = await liveAuction(sys, seller, { softCloseSeconds: 0 }); // real bids: seqs of its own
    const c = await connectWs(broadcaster.url);
    c.send({ type: 'subscribe', auctionId: a.id });
    await c.next((f) => f.type === 'subscribed' && f.auctionId === a.id);
    await publish(a.id, 2);
    await c.next((f) => f.auctionId === a.id && f.seq === 2 && f.type !== 'subscribed');
    const bidOf = (amount: number, who = buyer) => api.post(`/api/v1/auctions/${bidden.id}/bid`, { amount }, { token: who.accessToken });
    const first = await bidOf(1_000);
    t.is(first.status, 202);
    t.is((await verdict(sys, buyer, (first.body as { bidId: string }).bidId)).status, 'accepted');

    proxy.blackhole();
    const silencedAt = Date.now();
    // Live events of an auction followed before.
    const step = (what: string) => t.log(`${Date.now() - silencedAt} ms: ${what}`);
    await publish(a.id, 3);
    await c.next((f) => f.auctionId === a.id && f.seq === 3 && f.type !== 'subscribed', 40_000);
    step('live event');
    // A subscription made now: the broadcaster's command connection answers again.
    c.send({ type: 'subscribe', auctionId: b.id });
    await c.next((f) => f.type === 'subscribed' && f.auctionId === b.id, 40_000);
    step('subscribed');
    await publish(b.id, 2);
    await c.next((f) => f.auctionId === b.id && f.seq === 2 && f.type !== 'subscribed', 40_000);
    step('new auction event');
    // A bid: answered (it is recorded in Postgres whatever Redis does), and the edge's connections recover.
    const answered = await waitFor(async () => {
      const r = await bidOf(5_000, rival).catch(() => undefined);
      return r?.status === 202 ? r : undefined;
    }, 40_000, 'a bid answered 202');
    // ... and applied by the worker, whose connections recover too.
    t.is((await verdict(sys, rival, (answered.body as { bidId: string }).bidId, 40_000)).status, 'accepted');
    t.deepEqual(seqs(c.frames, a.id), [2, 3]);
    t.log(`recovered ${Date.now() - silencedAt} ms after the connections went silent`);
    c.close();
  } finally {
    worker.kill('SIGTERM');
    await worker.waitForExit(15_000).catch(() => worker.kill('SIGKILL'));
    direct.disconnect();
    await broadcaster.close();
    await edge.close();
    await proxy.close();
  }
});
