import test from 'ava';
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { createAdmin, registerUser, useSystem, type System, type TestUser } from '../helpers/system.js';

const system = useSystem(test);
const roleUrl = (id: string) => `/api/v1/admin/users/${id}/role`;
const N = '/api/v1/notifications';

const roleIn = (token: string) => (jwt.decode(token) as jwt.JwtPayload).role as string;

async function refreshed(sys: System, u: TestUser): Promise<{ accessToken: string; refreshToken: string }> {
  const res = await sys.api.post('/api/v1/auth/refresh', { refreshToken: u.refreshToken });
  if (res.status !== 200) throw new Error(`refresh failed: ${res.status} ${res.text}`);
  return res.body;
}

/**
 * Inserts notifications for `userId`, one second apart, newest last; returns their
 * ids oldest first. They become the user's only ones (the welcome notification
 * registering stored is removed).
 */
async function addNotifications(sys: System, userId: string, n: number): Promise<string[]> {
  await sys.db('notifications').where({ user_id: userId }).delete();
  const base = Date.now() - 3_600_000;
  const rows = Array.from({ length: n }, (_, i) => ({
    id: randomUUID(),
    user_id: userId,
    kind: 'test',
    payload: JSON.stringify({ i }),
    created_at: new Date(base + i * 1000),
  }));
  await sys.db('notifications').insert(rows);
  return rows.map((r) => r.id);
}

// ---------------------------------------------------------------------------
// PUT /admin/users/:id/role

test('an admin demoted while their token still says admin can change no role, their own included', async (t) => {
  const sys = system();
  const [a, b] = [await createAdmin(sys), await createAdmin(sys)];
  t.is((await sys.api.put(roleUrl(b.id), { role: 'buyer' }, { token: a.accessToken })).status, 200);
  t.is(roleIn(b.accessToken), 'admin', 'b still holds a token that says admin');
  for (const [what, id, role] of [['promote themself again', b.id, 'admin'], ['demote the admin who demoted them', a.id, 'buyer']] as const) {
    const res = await sys.api.put(roleUrl(id), { role }, { token: b.accessToken });
    t.is(res.status, 403, what);
    t.is(res.body.error.code, 'forbidden', what);
  }
  t.is((await sys.db('users').where({ id: b.id }).first()).role, 'buyer');
  t.is((await sys.db('users').where({ id: a.id }).first()).role, 'admin');
});

test('only admins may change roles: buyer and seller 403, anonymous 401', async (t) => {
  const sys = system();
  const [buyer, seller, target] = await Promise.all([registerUser(sys, 'buyer'), registerUser(sys, 'seller'), registerUser(sys, 'buyer')]);
  for (const [who, token] of [['buyer', buyer.accessToken], ['seller', seller.accessToken]] as const) {
    const res = await sys.api.put(roleUrl(target.id), { role: 'seller' }, { token });
    t.is(res.status, 403, who);
    t.is(res.body.error.code, 'forbidden', who);
    const self = await sys.api.put(roleUrl(who === 'buyer' ? buyer.id : seller.id), { role: 'admin' }, { token });
    t.is(self.status, 403, `${who} promoting themself`);
    t.is(self.body.error.code, 'forbidden');
  }
  const anon = await sys.api.put(roleUrl(target.id), { role: 'seller' });
  t.is(anon.status, 401);
  t.is(anon.body.error.code, 'unauthorized');
  const rows = await sys.db('users').whereIn('id', [buyer.id, seller.id, target.id]).select('id', 'role');
  t.deepEqual(Object.fromEntries(rows.map((r: { id: string; role: string }) => [r.id, r.role])), {
    [buyer.id]: 'buyer',
    [seller.id]: 'seller',
    [target.id]: 'buyer',
  });
});

test("an admin changes a role; it reaches the user's token at their next refresh", async (t) => {
  const sys = system();
  const admin = await createAdmin(sys);
  const u = await registerUser(sys, 'buyer');
  const res = await sys.api.put(roleUrl(u.id), { role: 'seller' }, { token: admin.accessToken });
  t.is(res.status, 200);
  t.is(res.body.user.id, u.id);
  t.is(res.body.user.role, 'seller');
  t.is(res.body.user.email, u.email);
  t.is((await sys.db('users').where({ id: u.id }).first()).role, 'seller');

  t.is(roleIn(u.accessToken), 'buyer', 'the access token in hand is unchanged');
  const next = await refreshed(sys, u);
  t.is(roleIn(next.accessToken), 'seller', 'the refreshed access token carries the new role');
  const profile = await sys.api.get('/api/v1/auth/profile', { token: next.accessToken });
  t.is(profile.body.user.role, 'seller');
});

test('a promotion to admin grants admin routes from the next refresh on; a demotion removes them', async (t) => {
  const sys = system();
  const admin = await createAdmin(sys);
  const u = await registerUser(sys, 'buyer');
  const victim = await registerUser(sys, 'buyer');
  t.is((await sys.api.put(roleUrl(u.id), { role: 'admin' }, { token: admin.accessToken })).status, 200);
  const before = await sys.api.put(roleUrl(victim.id), { role: 'seller' }, { token: u.accessToken });
  t.is(before.status, 403, 'the old token still says buyer');
  const promoted = await refreshed(sys, u);
  t.is(roleIn(promoted.accessToken), 'admin');
  const after = await sys.api.put(roleUrl(victim.id), { role: 'seller' }, { token: promoted.accessToken });
  t.is(after.status, 200);
  t.is(after.body.user.role, 'seller');

  t.is((await sys.api.put(roleUrl(u.id), { role: 'buyer' }, { token: admin.accessToken })).status, 200);
  const demoted = await sys.api.post('/api/v1/auth/refresh', { refreshToken: promoted.refreshToken });
  t.is(demoted.status, 200);
  t.is(roleIn(demoted.body.accessToken), 'buyer');
  const refused = await sys.api.put(roleUrl(victim.id), { role: 'buyer' }, { token: demoted.body.accessToken });
  t.is(refused.status, 403);
  t.is(refused.body.error.code, 'forbidden');
});

test('role change: unknown user 404, malformed id and bad bodies 400', async (t) => {
  const sys = system();
  const admin = await createAdmin(sys);
  const u = await registerUser(sys);
  const token = admin.accessToken;
  const missing = await sys.api.put(roleUrl(randomUUID()), { role: 'seller' }, { token });
  t.is(missing.status, 404);
  t.is(missing.body.error.code, 'not_found');
  for (const id of ['not-a-uuid', '123', `${u.id}x`, encodeURIComponent("' OR 1=1 --")]) {
    const res = await sys.api.put(roleUrl(id), { role: 'seller' }, { token });
    t.is(res.status, 400, id);
    t.is(res.body.error.code, 'validation_failed', id);
  }
  for (const body of [{ role: 'superuser' }, { role: 'ADMIN' }, { role: 1 }, {}, { role: 'seller', email: 'x@example.com' }, { role: ['seller'] }]) {
    const res = await sys.api.put(roleUrl(u.id), body, { token });
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.error.code, 'validation_failed', JSON.stringify(body));
  }
  const row = await sys.db('users').where({ id: u.id }).first();
  t.is(row.role, 'buyer');
  t.is(row.email, u.email);
});

// ---------------------------------------------------------------------------
// Notifications: ownership

test("marking someone else's notification read is 404, and leaves it unread", async (t) => {
  const sys = system();
  const [alice, bob] = await Promise.all([registerUser(sys), registerUser(sys)]);
  const [aliceNote] = await addNotifications(sys, alice.id, 1);
  const foreign = await sys.api.post(`${N}/${aliceNote}/read`, undefined, { token: bob.accessToken });
  t.is(foreign.status, 404);
  t.is(foreign.body.error.code, 'not_found');
  t.is((await sys.db('notifications').where({ id: aliceNote }).first()).read_at, null);

  const nowhere = await sys.api.post(`${N}/${randomUUID()}/read`, undefined, { token: bob.accessToken });
  t.is(nowhere.status, 404);
  t.deepEqual(nowhere.body, foreign.body, "someone else's and a missing one look the same");

  const anon = await sys.api.post(`${N}/${aliceNote}/read`);
  t.is(anon.status, 401);
  t.is(anon.body.error.code, 'unauthorized');

  const own = await sys.api.post(`${N}/${aliceNote}/read`, undefined, { token: alice.accessToken });
  t.is(own.status, 204);
  t.truthy((await sys.db('notifications').where({ id: aliceNote }).first()).read_at);
});

test("the notification list shows only the caller's own, across pages", async (t) => {
  const sys = system();
  const [alice, bob] = await Promise.all([registerUser(sys), registerUser(sys)]);
  const aliceIds = await addNotifications(sys, alice.id, 5);
  const bobIds = await addNotifications(sys, bob.id, 3);

  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const q: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
    const res = await sys.api.get(`${N}${q}`, { token: alice.accessToken });
    t.is(res.status, 200);
    t.true(res.body.data.length <= 2);
    seen.push(...res.body.data.map((n: { id: string }) => n.id));
    cursor = res.body.nextCursor;
    pages++;
  } while (cursor && pages < 10);
  t.deepEqual(seen, [...aliceIds].reverse(), 'all of hers, newest first, no duplicates');
  t.is(pages, 3);

  const bobList = await sys.api.get(N, { token: bob.accessToken });
  t.deepEqual(bobList.body.data.map((n: { id: string }) => n.id), [...bobIds].reverse());
  t.is(bobList.body.nextCursor, null);

  // Alice's cursor in Bob's hands pages through Bob's notifications only.
  const first = await sys.api.get(`${N}?limit=1`, { token: alice.accessToken });
  const crossed = await sys.api.get(`${N}?cursor=${first.body.nextCursor}`, { token: bob.accessToken });
  t.is(crossed.status, 200);
  t.true(crossed.body.data.every((n: { id: string }) => bobIds.includes(n.id)));

  t.is((await sys.api.get(N)).status, 401);
});

// ---------------------------------------------------------------------------
// Parameters

test('a malformed uuid in the path is 400 validation_failed', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  for (const id of ['not-a-uuid', '1', '00000000-0000-0000-0000-00000000000g', `${randomUUID()}0`, encodeURIComponent("1' OR '1'='1")]) {
    const res = await sys.api.post(`${N}/${id}/read`, undefined, { token: u.accessToken });
    t.is(res.status, 400, id);
    t.is(res.body.error.code, 'validation_failed', id);
  }
});

test('a malformed pagination cursor is 400 validation_failed', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  await addNotifications(sys, u.id, 3);
  const enc = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const cursors = [
    'not a cursor!',
    '%%%',
    'x'.repeat(600),
    enc('not json'),
    enc({ createdAt: new Date().toISOString(), id: randomUUID() }),
    enc([new Date().toISOString()]),
    enc([new Date().toISOString(), randomUUID(), 'extra']),
    enc(['yesterday', randomUUID()]),
    enc([new Date().toISOString(), 'not-a-uuid']),
    enc([42, randomUUID()]),
    enc(null),
    enc(["2020-01-01T00:00:00Z' OR 1=1 --", randomUUID()]),
  ];
  for (const cursor of cursors) {
    const res = await sys.api.get(`${N}?cursor=${encodeURIComponent(cursor)}`, { token: u.accessToken });
    t.is(res.status, 400, cursor.slice(0, 60));
    t.is(res.body.error.code, 'validation_failed', cursor.slice(0, 60));
  }
  // A cursor the API issued works.
  const page = await sys.api.get(`${N}?limit=1`, { token: u.accessToken });
  t.is((await sys.api.get(`${N}?cursor=${page.body.nextCursor}`, { token: u.accessToken })).status, 200);
});

test('limit outside 1..100 is 400; the bounds themselves are accepted', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  await addNotifications(sys, u.id, 3);
  for (const limit of ['0', '101', '-1', '1.5', 'abc', '1000000', '']) {
    const res = await sys.api.get(`${N}?limit=${limit}`, { token: u.accessToken });
    t.is(res.status, 400, `limit=${limit}`);
    t.is(res.body.error.code, 'validation_failed', `limit=${limit}`);
  }
  const one = await sys.api.get(`${N}?limit=1`, { token: u.accessToken });
  t.is(one.status, 200);
  t.is(one.body.data.length, 1);
  t.is(typeof one.body.nextCursor, 'string');
  const hundred = await sys.api.get(`${N}?limit=100`, { token: u.accessToken });
  t.is(hundred.status, 200);
  t.is(hundred.body.data.length, 3);
  t.is(hundred.body.nextCursor, null);
  const unknown = await sys.api.get(`${N}?limit=10&offset=5`, { token: u.accessToken });
  t.is(unknown.status, 400, 'unknown query parameter');
  t.is(unknown.body.error.code, 'validation_failed');
});
