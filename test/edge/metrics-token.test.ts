/**
 * METRICS_TOKEN protects /metrics on every process that serves it: the web
 * edge, the broadcaster and the worker (WORKER_PORT).
 */
import test from 'ava';
import { useSystem } from '../helpers/system.js';
import { spawnNode, waitForStatus } from '../helpers/process.js';
import { testEnv } from '../helpers/config.js';
import { freePort } from '../helpers/redis.js';

const TOKEN = 'metrics-token-0123456789';
const system = useSystem(test, { broadcaster: true, env: { METRICS_TOKEN: TOKEN } });

async function check(t: import('ava').ExecutionContext, url: string) {
  t.is((await fetch(url)).status, 401, `${url} without the token`);
  t.is((await fetch(url, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401, `${url} with a wrong token`);
  const ok = await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(ok.status, 200, `${url} with the token`);
  t.regex(await ok.text(), /# HELP/);
}

test('web edge and broadcaster: /metrics needs the token', async (t) => {
  const sys = system();
  await check(t, `${sys.edge.url}/metrics`);
  await check(t, `http://127.0.0.1:${sys.broadcaster!.port}/metrics`);
});

test('worker: /metrics needs the token', async (t) => {
  const port = await freePort();
  const p = spawnNode('workers/main.ts', testEnv({ ...system().env, WORKER_PORT: String(port), HOST: '127.0.0.1' }));
  t.teardown(() => p.kill());
  await waitForStatus(`http://127.0.0.1:${port}/readyz`);
  await check(t, `http://127.0.0.1:${port}/metrics`);
});
