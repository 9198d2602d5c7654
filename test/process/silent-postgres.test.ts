/**
 * Postgres connections that go silent (no answer, no close): an edge and a
 * worker process reach Postgres through a TCP proxy that silences every
 * connection open at one moment. Queries on them would wait for the kernel to
 * give up (about 15 minutes); the watchdog drops them once the statement
 * timeout and its margin have passed, and bids are answered and applied again.
 */
import test from 'ava';
import { createLogger } from '../../lib/logger.js';
import { startEdge } from '../../edge/http/server.js';
import { registerUser, useSystem } from '../helpers/system.js';
import { liveAuction, verdict, waitFor } from '../helpers/auctions.js';
import { client } from '../helpers/http.js';
import { startTcpProxy } from '../helpers/proxy.js';
import { spawnNode } from '../helpers/process.js';
import { testConfig, testEnv } from '../helpers/config.js';

const system = useSystem(test);

test('an edge and a worker recover from Postgres connections gone silent', async (t) => {
  t.timeout(90_000);
  const sys = system();
  const proxy = await startTcpProxy(Number(process.env.DB_PORT ?? 5432), process.env.DB_HOST ?? '127.0.0.1');
  // A short statement timeout: the watchdog's limit is it plus 5 s.
  const env = { ...sys.env, DB_PORT: String(proxy.port), DB_STATEMENT_TIMEOUT_MS: '1000' };
  const edge = await startEdge(testConfig(env), createLogger('test', 'silent'));
  const worker = spawnNode('workers/main.ts', testEnv({ ...env, LOG_LEVEL: 'info' }));
  const api = client(edge.url);
  try {
    await worker.waitForLine(/workers started/, 30_000);
    const seller = await registerUser(sys, 'seller');
    const [b1, b2] = [await registerUser(sys), await registerUser(sys)];
    const a = await liveAuction(sys, seller, { softCloseSeconds: 0 });
    const bidOf = (who: typeof b1, amount: number) =>
      api.post(`/api/v1/auctions/${a.id}/bid`, { amount }, { token: who.accessToken, headers: { 'idempotency-key': `k${amount}` } });
    const first = await bidOf(b1, 1_000);
    t.is(first.status, 202);
    t.is((await verdict(sys, b1, (first.body as { bidId: string }).bidId)).status, 'accepted');

    proxy.blackhole();
    const silencedAt = Date.now();
    // Retried as a client would (same Idempotency-Key): each attempt must end,
    // and one gets 202 once the edge's pool has fresh connections.
    const answered = await waitFor(async () => {
      const r = await Promise.race([bidOf(b2, 5_000), new Promise<undefined>((r) => setTimeout(r, 20_000))]);
      if (!r) throw new Error('a bid request hung for 20 s');
      return r.status === 202 ? r : undefined;
    }, 60_000, 'a bid answered 202');
    t.log(`answered ${Date.now() - silencedAt} ms after the connections went silent`);
    // Applied by the worker. (Its rounds would also get fresh connections without
    // the watchdog, the silenced ones being held by queries that hang; the
    // watchdog itself is tested in test/db/query-watchdog.test.ts. Without it the
    // edge never answers: its intake writes hang.)
    t.is((await verdict(sys, b2, (answered.body as { bidId: string }).bidId, 40_000)).status, 'accepted');
    t.log(`applied ${Date.now() - silencedAt} ms after`);
  } finally {
    worker.kill('SIGTERM');
    await worker.waitForExit(15_000).catch(() => worker.kill('SIGKILL'));
    await edge.close();
    await proxy.close();
  }
});
