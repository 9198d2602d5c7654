/**
 * Rate limits with low limits. Every request of this file comes from 127.0.0.1, so
 * the per-address budgets are shared: the tests are serial and each starts from
 * empty counters (its own keys under the file's Redis prefix are deleted).
 */
import test from 'ava';
import { createLogger } from '../../lib/logger.js';
import { startEdge } from '../../edge/http/server.js';
import { deleteKeys } from '../helpers/redis.js';
import { client, type ApiResponse } from '../helpers/http.js';
import { createAdmin, registerUser, useSystem, type System } from '../helpers/system.js';

const AUTH = 5;
const GENERAL = 30;
const USER = 10;
const FAILED = 3;

const system = useSystem(test, {
  env: {
    RATE_LIMIT_AUTH_PER_MIN: String(AUTH),
    RATE_LIMIT_GENERAL_PER_MIN: String(GENERAL),
    RATE_LIMIT_USER_PER_MIN: String(USER),
    FAILED_LOGINS_PER_HOUR: String(FAILED),
  },
});

const A = '/api/v1/auth';

/** Forgets every request counted so far (rate-limit windows and failed-login counters). */
async function resetCounters(sys: System, what: 'all' | 'windows' = 'all') {
  await deleteKeys(sys.config, `${sys.config.redis.prefix}:rl:`);
  if (what === 'all') await deleteKeys(sys.config, `${sys.config.redis.prefix}:auth:failed:`);
}

test.beforeEach(async () => {
  await resetCounters(system());
});

function assertLimited(t: import('ava').ExecutionContext, res: ApiResponse, label: string, maxRetry = 60) {
  t.is(res.status, 429, label);
  t.is(res.body?.error?.code, 'rate_limited', label);
  const retryAfter = res.headers.get('retry-after');
  t.regex(retryAfter ?? '', /^\d+$/, `${label}: numeric Retry-After`);
  const seconds = Number(retryAfter);
  t.true(seconds >= 1 && seconds <= maxRetry, `${label}: Retry-After ${seconds} in 1..${maxRetry}`);
}

/** Sends `n` requests one after the other; returns their statuses. */
async function times(n: number, send: () => Promise<ApiResponse>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await send()).status);
  return out;
}

test.serial('auth routes: the per-address limit gives 429 rate_limited with Retry-After', async (t) => {
  const { api } = system();
  // Invalid bodies: counted by the limiter, never reaching the login itself.
  const statuses = await times(AUTH, () => api.post(`${A}/login`, {}));
  t.deepEqual(statuses, Array(AUTH).fill(400));
  assertLimited(t, await api.post(`${A}/login`, {}), 'login');
  assertLimited(t, await api.post(`${A}/register`, { email: 'a@b.c', password: 'password123', name: 'X' }), 'register shares it');
  assertLimited(t, await api.get(`${A}/profile`), 'profile shares it');
  // The rest of the API has its own (general) budget.
  t.is((await api.get('/.well-known/jwks.json')).status, 200);
  t.is((await api.get('/api/v1/notifications')).status, 401, 'non-auth routes are not limited by the auth budget');
});

test.serial('general limit: 429 after the budget, on every route, for anonymous clients', async (t) => {
  const { api } = system();
  const statuses = await times(GENERAL, () => api.get('/.well-known/jwks.json'));
  t.deepEqual(statuses, Array(GENERAL).fill(200));
  assertLimited(t, await api.get('/.well-known/jwks.json'), 'jwks');
  assertLimited(t, await api.get('/api/v1/does-not-exist'), 'unknown route');
  // "/auth/* 20 requests a minute, everything else 100" (API.md): auth routes have their own budget only.
  t.is((await api.post(`${A}/login`, {})).status, 400, 'auth routes are outside the general budget');
  t.is((await api.post('/API/V1/AUTH/login', {})).status, 400, 'however the path is cased');
});

test.serial('auth requests do not spend the general budget', async (t) => {
  const { api } = system();
  t.deepEqual(await times(AUTH, () => api.post(`${A}/login`, {})), Array(AUTH).fill(400));
  t.deepEqual(await times(GENERAL, () => api.get('/.well-known/jwks.json')), Array(GENERAL).fill(200));
  assertLimited(t, await api.get('/.well-known/jwks.json'), 'general, after its own budget');
});

test.serial('/healthz and /readyz are never rate limited', async (t) => {
  const { api } = system();
  await times(GENERAL, () => api.get('/.well-known/jwks.json'));
  assertLimited(t, await api.get('/.well-known/jwks.json'), 'budget spent');
  const health = await times(GENERAL + 10, () => api.get('/healthz'));
  const ready = await times(GENERAL + 10, () => api.get('/readyz'));
  t.deepEqual(health, Array(GENERAL + 10).fill(200));
  t.deepEqual(ready, Array(GENERAL + 10).fill(200));
  t.is((await api.get('/healthz')).headers.get('retry-after'), null);
});

test.serial('signed-in users are limited per user, not per address', async (t) => {
  const sys = system();
  const alice = await registerUser(sys);
  const bob = await registerUser(sys);
  const aliceAgain = await sys.api.post(`${A}/login`, { email: alice.email, password: alice.password });
  t.is(aliceAgain.status, 200);
  await resetCounters(sys);

  const list = (token: string) => sys.api.get('/api/v1/notifications', { token });
  t.deepEqual(await times(USER, () => list(alice.accessToken)), Array(USER).fill(200));
  assertLimited(t, await list(alice.accessToken), 'alice over her budget');
  assertLimited(t, await list(aliceAgain.body.accessToken), "alice's other session shares her budget");
  // Same address, another user: counted separately.
  const bobs = await times(USER, () => list(bob.accessToken));
  t.deepEqual(bobs, Array(USER).fill(200), 'bob has his own budget');
  assertLimited(t, await list(bob.accessToken), 'bob over his budget');
  // The address itself is still under the general budget: anonymous requests pass.
  t.is((await sys.api.get('/.well-known/jwks.json')).status, 200);
});

test.serial('failed logins: after N failures even the right password gets 429 for that account only', async (t) => {
  const sys = system();
  const victim = await registerUser(sys);
  const other = await registerUser(sys);
  await resetCounters(sys);

  for (let i = 0; i < FAILED; i++) {
    const res = await sys.api.post(`${A}/login`, { email: victim.email, password: `wrong password ${i}` });
    t.is(res.status, 401);
    t.is(res.body.error.code, 'unauthorized');
  }
  const right = await sys.api.post(`${A}/login`, { email: victim.email, password: victim.password });
  assertLimited(t, right, 'the right password, account capped', 3600);
  t.is(right.body.accessToken, undefined);
  const ok = await sys.api.post(`${A}/login`, { email: other.email, password: other.password });
  t.is(ok.status, 200, 'another account still signs in');

  await resetCounters(sys, 'windows'); // fresh per-address budget; the account cap stays
  const upper = await sys.api.post(`${A}/login`, { email: victim.email.toUpperCase(), password: victim.password });
  assertLimited(t, upper, 'the cap ignores email case', 3600);
  t.is((await sys.api.post(`${A}/refresh`, { refreshToken: victim.refreshToken })).status, 200, 'existing sessions keep working');
});

test.serial("failed logins: the admin console's sign-in counts against the same per-account budget", async (t) => {
  const sys = system();
  const admin = await createAdmin(sys);
  await resetCounters(sys);
  const post = (password: string) =>
    sys.api.request('POST', '/admin/login', {
      raw: new URLSearchParams({ email: admin.email, password }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  for (let i = 0; i < FAILED; i++) t.is((await post(`wrong password ${i}`)).status, 401);
  const right = await post(admin.password);
  t.is(right.status, 429, 'the right password, account capped');
  t.is(right.headers.get('set-cookie'), null);
  assertLimited(t, await sys.api.post(`${A}/login`, { email: admin.email, password: admin.password }), 'and the API login too', 3600);
});

test.serial("failed logins: change-password's current-password guesses count against the account's budget", async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  await resetCounters(sys);
  const change = (currentPassword: string) => sys.api.post(`${A}/change-password`, { currentPassword, newPassword: 'a brand new password' }, { token: u.accessToken });
  for (let i = 0; i < FAILED; i++) t.is((await change(`wrong password ${i}`)).status, 400);
  assertLimited(t, await change(u.password), 'the right password, account capped', 3600);
  assertLimited(t, await sys.api.post(`${A}/login`, { email: u.email, password: u.password }), 'and the login too', 3600);
});

test.serial('failed logins: parallel wrong guesses get no more password checks than the budget', async (t) => {
  const sys = system();
  const victim = await registerUser(sys);
  await resetCounters(sys);
  const res = await Promise.all(Array.from({ length: 4 * FAILED }, (_, i) => sys.api.post(`${A}/login`, { email: victim.email, password: `wrong password ${i}` })));
  t.is(res.filter((r) => r.status === 401).length, FAILED, 'checked: at most the budget');
  t.is(res.filter((r) => r.status === 429).length, 3 * FAILED, 'the rest refused before any check');
  assertLimited(t, await sys.api.post(`${A}/login`, { email: victim.email, password: victim.password }), 'then even the right password', 3600);
});

test.serial('a successful login clears the failed-login count', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  await resetCounters(sys);
  for (let i = 0; i < FAILED - 1; i++) t.is((await sys.api.post(`${A}/login`, { email: u.email, password: 'wrong password' })).status, 401);
  t.is((await sys.api.post(`${A}/login`, { email: u.email, password: u.password })).status, 200);
  await resetCounters(sys, 'windows');
  for (let i = 0; i < FAILED - 1; i++) t.is((await sys.api.post(`${A}/login`, { email: u.email, password: 'wrong password' })).status, 401);
  t.is((await sys.api.post(`${A}/login`, { email: u.email, password: u.password })).status, 200, 'the earlier failures were forgotten');
});

test.serial('X-Forwarded-For cannot buy a fresh budget when no proxy is trusted', async (t) => {
  const { api } = system();
  let i = 0;
  const statuses = await times(GENERAL, () => api.get('/.well-known/jwks.json', { headers: { 'x-forwarded-for': `203.0.113.${++i}` } }));
  t.deepEqual(statuses, Array(GENERAL).fill(200));
  assertLimited(t, await api.get('/.well-known/jwks.json', { headers: { 'x-forwarded-for': '198.51.100.7' } }), 'spoofed address');
});

test.serial('two edge instances on one Redis prefix share one budget', async (t) => {
  const sys = system();
  const second = await startEdge(sys.config, createLogger('test', sys.config.logLevel));
  try {
    const other = client(second.url);
    t.not(second.url, sys.edge.url);
    let n = 0;
    const statuses = await times(GENERAL, () => (n++ % 2 === 0 ? sys.api : other).get('/.well-known/jwks.json'));
    t.deepEqual(statuses, Array(GENERAL).fill(200), 'half on each instance');
    assertLimited(t, await other.get('/.well-known/jwks.json'), 'second instance');
    assertLimited(t, await sys.api.get('/.well-known/jwks.json'), 'first instance');

    // The auth budget too.
    await resetCounters(sys, 'windows');
    const auth = await times(AUTH, () => (n++ % 2 === 0 ? sys.api : other).post(`${A}/login`, {}));
    t.deepEqual(auth, Array(AUTH).fill(400));
    assertLimited(t, await other.post(`${A}/login`, {}), 'auth on the second instance');
    assertLimited(t, await sys.api.post(`${A}/login`, {}), 'auth on the first instance');
  } finally {
    await second.close();
  }
});
