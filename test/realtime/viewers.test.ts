import test from 'ava';
import { randomUUID } from 'node:crypto';
import { registerUser, useSystem } from '../helpers/system.js';
import { liveAuction, waitFor } from '../helpers/auctions.js';
import { connectWs } from '../helpers/ws.js';
import { spawnNode } from '../helpers/process.js';
import { testEnv } from '../helpers/config.js';
import { freePort } from '../helpers/redis.js';

const system = useSystem(test, { broadcaster: true });

test('viewer counts across two instances; a killed instance\'s viewers expire; viewers frames and GET /viewers', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const user = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const port = await freePort();
  const other = spawnNode('edge/ws/main.ts', testEnv({ ...sys.env, WS_PORT: String(port), LOG_LEVEL: 'info' }));
  t.teardown(() => other.kill('SIGKILL'));
  await other.waitForLine(/broadcaster listening/);
  const here = [await connectWs(sys.broadcaster!.url), await connectWs(sys.broadcaster!.url, user.accessToken)];
  const there = [await connectWs(`ws://127.0.0.1:${port}/ws`), await connectWs(`ws://127.0.0.1:${port}/ws`), await connectWs(`ws://127.0.0.1:${port}/ws`)];
  for (const c of [...here, ...there]) c.send({ type: 'subscribe', auctionId: a.id });
  const stats = () => sys.api.get(`/api/v1/auctions/${a.id}/viewers`).then((r) => r.body);
  await waitFor(async () => ((await stats()).current === 5 ? true : undefined), 10_000, '5 viewers');
  const s = await stats();
  t.is(s.peak, 5);
  t.is(s.unique, 5);
  // Every subscriber is told the count (at most once a second, when it changes).
  await here[0]!.next((f) => f.type === 'viewers' && f.count === 5, 5_000);
  // The other instance dies without saying goodbye: its 3 viewers expire.
  other.kill('SIGKILL');
  await waitFor(async () => ((await stats()).current === 2 ? true : undefined), 25_000, 'ghosts gone');
  await here[0]!.next((f) => f.type === 'viewers' && f.count === 2, 5_000);
  t.is((await stats()).peak, 5);
  here[1]!.close();
  await waitFor(async () => ((await stats()).current === 1 ? true : undefined), 10_000, 'one left');
  here[0]!.close();
  const metrics = await fetch(`${sys.broadcaster!.url.replace('ws://', 'http://').replace('/ws', '')}/metrics`).then((r) => r.text());
  t.regex(metrics, /blytz_ws_connections \d+/);
  t.regex(metrics, /blytz_ws_messages_out_total [1-9]/);
});

test('GET /auctions/:id/viewers is 404 for an unknown auction and zero for a quiet one', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await liveAuction(sys, seller);
  t.deepEqual((await sys.api.get(`/api/v1/auctions/${a.id}/viewers`)).body, { current: 0, peak: 0, unique: 0 });
  t.is((await sys.api.get('/api/v1/auctions/00000000-0000-4000-8000-000000000000/viewers')).status, 404);
});

test('subscribing to auctions that do not exist leaves no viewer keys in Redis; a real one\'s unique count expires in time', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const a = await liveAuction(sys, seller);
  const c = await connectWs(sys.broadcaster!.url);
  const ghosts = Array.from({ length: 5 }, () => randomUUID());
  for (const id of ghosts) c.send({ type: 'subscribe', auctionId: id });
  await waitFor(async () => c.frames.filter((f) => f.type === 'error' && f.code === 'not_found').length === ghosts.length || undefined);
  c.send({ type: 'subscribe', auctionId: a.id });
  await c.next((f) => f.type === 'subscribed' && f.auctionId === a.id);
  const unique = `${sys.config.redis.prefix}:viewers:{${a.id}}:unique`;
  await waitFor(async () => (await sys.redis.exists(unique)) === 1);
  for (const id of ghosts) t.deepEqual(await sys.redis.keys(`${sys.config.redis.prefix}:viewers:{${id}}:*`), [], id);
  const ttl = await sys.redis.pttl(unique);
  t.true(ttl > 0 && ttl <= 7 * 24 * 3_600_000, `unique count's ttl ${ttl}`);
  c.close();
});
