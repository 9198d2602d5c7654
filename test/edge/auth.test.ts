import test from 'ava';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { insertRefreshToken, lockRefreshToken, lockUserSessions, markRefreshTokenUsed } from '../../db/operations/refresh-tokens.js';
import jwt from 'jsonwebtoken';
import { registerUser, useSystem } from '../helpers/system.js';

const system = useSystem(test);
const A = '/api/v1/auth';

test('register creates a buyer by default and returns a session', async (t) => {
  const { api } = system();
  const email = `Reg.${Date.now()}@Example.com`;
  const res = await api.post(`${A}/register`, { email, password: 'password123', name: 'Rita' });
  t.is(res.status, 201);
  t.deepEqual(Object.keys(res.body.user).sort(), ['createdAt', 'email', 'id', 'name', 'role']);
  t.is(res.body.user.email, email.toLowerCase());
  t.is(res.body.user.role, 'buyer');
  t.is(res.body.expiresIn, 900);
  t.is(typeof res.body.accessToken, 'string');
  t.is(typeof res.body.refreshToken, 'string');
  t.false('passwordHash' in res.body.user || 'password_hash' in res.body.user);
});

test('register as seller; admin is refused; duplicate email is 409', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  t.is(seller.role, 'seller');
  const admin = await sys.api.post(`${A}/register`, { email: `adm.${Date.now()}@example.com`, password: 'password123', name: 'X', role: 'admin' });
  t.is(admin.status, 400);
  t.is(admin.body.error.code, 'validation_failed');
  const dup = await sys.api.post(`${A}/register`, { email: seller.email.toUpperCase(), password: 'password123', name: 'Again' });
  t.is(dup.status, 409);
  t.is(dup.body.error.code, 'conflict');
});

test('register validates email, password length, name and unknown fields', async (t) => {
  const { api, db } = system();
  const cases: unknown[] = [
    { email: 'not-an-email', password: 'password123', name: 'X' },
    { email: 'short@example.com', password: 'short', name: 'X' },
    { email: 'long@example.com', password: 'x'.repeat(129), name: 'X' },
    { email: 'noname@example.com', password: 'password123' },
    { email: 'empty@example.com', password: 'password123', name: '' },
    { email: 'blank@example.com', password: 'password123', name: '   ' },
    { email: 'extra@example.com', password: 'password123', name: 'X', isAdmin: true },
    { email: 'role@example.com', password: 'password123', name: 'X', role: 'superuser' },
    { email: 42, password: 'password123', name: 'X' },
    [],
  ];
  for (const body of cases) {
    const res = await api.post(`${A}/register`, body);
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.error.code, 'validation_failed');
  }
  const emails = cases.flatMap((c) => (c && typeof c === 'object' && 'email' in c && typeof c.email === 'string' ? [c.email] : []));
  t.deepEqual(await db('users').whereIn('email', emails), [], 'bad input changed nothing');
});

test('login: success, and the same 401 for a wrong password and an unknown email', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const ok = await sys.api.post(`${A}/login`, { email: u.email.toUpperCase(), password: u.password });
  t.is(ok.status, 200);
  t.is(ok.body.user.id, u.id);
  const wrong = await sys.api.post(`${A}/login`, { email: u.email, password: 'wrong password' });
  const unknown = await sys.api.post(`${A}/login`, { email: `nobody.${Date.now()}@example.com`, password: 'wrong password' });
  t.is(wrong.status, 401);
  t.is(unknown.status, 401);
  t.deepEqual(wrong.body, unknown.body);
  t.is(wrong.body.error.code, 'unauthorized');
});

test('profile needs a token and returns the user', async (t) => {
  const sys = system();
  const u = await registerUser(sys, 'seller');
  const res = await sys.api.get(`${A}/profile`, { token: u.accessToken });
  t.is(res.status, 200);
  t.is(res.body.user.id, u.id);
  t.is(res.body.user.role, 'seller');
  const anon = await sys.api.get(`${A}/profile`);
  t.is(anon.status, 401);
  t.is(anon.body.error.code, 'unauthorized');
});

test('refresh rotates: the new token works once, the old one stops working', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const r1 = await sys.api.post(`${A}/refresh`, { refreshToken: u.refreshToken });
  t.is(r1.status, 200);
  t.not(r1.body.refreshToken, u.refreshToken);
  t.is((await sys.api.get(`${A}/profile`, { token: r1.body.accessToken })).status, 200);
  const r2 = await sys.api.post(`${A}/refresh`, { refreshToken: r1.body.refreshToken });
  t.is(r2.status, 200);
  const garbage = await sys.api.post(`${A}/refresh`, { refreshToken: 'not-a-token' });
  t.is(garbage.status, 401);
});

test('reusing a rotated refresh token revokes the whole family', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const r1 = await sys.api.post(`${A}/refresh`, { refreshToken: u.refreshToken });
  t.is(r1.status, 200);
  const reuse = await sys.api.post(`${A}/refresh`, { refreshToken: u.refreshToken });
  t.is(reuse.status, 401);
  t.is(reuse.body.error.code, 'unauthorized');
  // The thief's replay killed the legitimate newest token too.
  const after = await sys.api.post(`${A}/refresh`, { refreshToken: r1.body.refreshToken });
  t.is(after.status, 401);
  // Another login (another family) is unaffected.
  const other = await sys.api.post(`${A}/login`, { email: u.email, password: u.password });
  t.is((await sys.api.post(`${A}/refresh`, { refreshToken: other.body.refreshToken })).status, 200);
});

test('concurrent refreshes with one token: exactly one succeeds', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const results = await Promise.all(Array.from({ length: 5 }, () => sys.api.post(`${A}/refresh`, { refreshToken: u.refreshToken })));
  t.is(results.filter((r) => r.status === 200).length, 1);
  t.is(results.filter((r) => r.status === 401).length, 4);
});

test('an expired refresh token is refused', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  await sys.db('refresh_tokens').where({ user_id: u.id }).update({ expires_at: sys.db.raw("now() - interval '1 second'") });
  const res = await sys.api.post(`${A}/refresh`, { refreshToken: u.refreshToken });
  t.is(res.status, 401);
});

test('logout ends that session only; another user cannot log you out', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const second = await sys.api.post(`${A}/login`, { email: u.email, password: u.password });
  const mallory = await registerUser(sys);
  const foreign = await sys.api.post(`${A}/logout`, { refreshToken: u.refreshToken }, { token: mallory.accessToken });
  t.is(foreign.status, 204, 'does not reveal whether the token exists');
  t.is((await sys.api.post(`${A}/refresh`, { refreshToken: u.refreshToken })).status, 200, "mallory did not revoke u's session");

  const own = await sys.api.post(`${A}/logout`, { refreshToken: second.body.refreshToken }, { token: u.accessToken });
  t.is(own.status, 204);
  t.is((await sys.api.post(`${A}/refresh`, { refreshToken: second.body.refreshToken })).status, 401);
  t.is((await sys.api.post(`${A}/logout`, { refreshToken: 'x' })).status, 401, 'logout needs a token');
});

test('change-password: new password works, other sessions revoked, this one kept', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const other = await sys.api.post(`${A}/login`, { email: u.email, password: u.password });
  const wrong = await sys.api.post(`${A}/change-password`, { currentPassword: 'nope nope', newPassword: 'brand new password' }, { token: u.accessToken });
  t.is(wrong.status, 400);
  t.is(wrong.body.error.code, 'validation_failed');
  const short = await sys.api.post(`${A}/change-password`, { currentPassword: u.password, newPassword: 'short' }, { token: u.accessToken });
  t.is(short.status, 400);

  const res = await sys.api.post(`${A}/change-password`, { currentPassword: u.password, newPassword: 'brand new password' }, { token: u.accessToken });
  t.is(res.status, 204);
  t.is((await sys.api.post(`${A}/login`, { email: u.email, password: u.password })).status, 401);
  t.is((await sys.api.post(`${A}/login`, { email: u.email, password: 'brand new password' })).status, 200);
  t.is((await sys.api.post(`${A}/refresh`, { refreshToken: other.body.refreshToken })).status, 401, 'other session revoked');
  t.is((await sys.api.post(`${A}/refresh`, { refreshToken: u.refreshToken })).status, 200, 'this session kept');
});

test('JWKS publishes the key that verifies access tokens', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const res = await sys.api.get('/.well-known/jwks.json');
  t.is(res.status, 200);
  const header = jwt.decode(u.accessToken, { complete: true })!.header;
  t.is(header.alg, 'RS256');
  const jwk = res.body.keys.find((k: { kid: string }) => k.kid === header.kid);
  t.truthy(jwk);
  t.is(jwk.alg, 'RS256');
  t.false('d' in jwk, 'no private part');
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const payload = jwt.verify(u.accessToken, key, { algorithms: ['RS256'], issuer: sys.config.jwt.issuer, audience: sys.config.jwt.audience }) as jwt.JwtPayload;
  t.is(payload.sub, u.id);
  t.is(payload.role, 'buyer');
  t.is((payload.exp ?? 0) - (payload.iat ?? 0), 900);
});

test('passwords are stored as argon2id hashes', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const row = await sys.db('users').where({ id: u.id }).first();
  t.regex(row.password_hash, /^\$argon2id\$/);
  t.false(row.password_hash.includes(u.password));
});

/**
 * A refresh of `token` held open just before its commit, as the service runs it
 * (the user's session lock, the token's row lock, marked used, the next token
 * inserted); returns the next token and the commit.
 */
async function refreshInFlight(sys: ReturnType<typeof system>, userId: string, token: string) {
  const sha = (s: string) => createHash('sha256').update(s).digest('hex');
  const next = randomBytes(32).toString('base64url');
  const trx = await sys.db.transaction();
  await lockUserSessions(trx, userId);
  const row = (await lockRefreshToken(trx, sha(token)))!;
  await markRefreshTokenUsed(trx, row.id);
  await insertRefreshToken(trx, { userId, familyId: row.family_id, tokenHash: sha(next), ttlSeconds: 3600 });
  return { next, commit: () => trx.commit() };
}

const settledWithin = async (p: Promise<unknown>, ms: number) => Promise.race([p.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);

test('a revocation (password change, logout, reuse) that waits for a refresh in flight also revokes the token that refresh issues', async (t) => {
  const sys = system();
  const revocations: [string, (u: Awaited<ReturnType<typeof registerUser>>, thief: string) => Promise<{ status: number }>][] = [
    ['change-password', (u) => sys.api.post(`${A}/change-password`, { currentPassword: u.password, newPassword: 'brand new password' }, { token: u.accessToken })],
    ['logout', (u, thief) => sys.api.post(`${A}/logout`, { refreshToken: thief }, { token: u.accessToken })],
    ['reuse', (_, thief) => sys.api.post(`${A}/refresh`, { refreshToken: thief })],
  ];
  for (const [name, revoke] of revocations) {
    const u = await registerUser(sys);
    // The thief's session (another family), rotated once: its first token is now used.
    const stolen = (await sys.api.post(`${A}/login`, { email: u.email, password: u.password })).body.refreshToken as string;
    const current = (await sys.api.post(`${A}/refresh`, { refreshToken: stolen })).body.refreshToken as string;
    const flight = await refreshInFlight(sys, u.id, current);
    const answer = revoke(u, name === 'change-password' ? current : stolen);
    t.false(await settledWithin(answer, 300), `${name} waits for the refresh in flight`);
    await flight.commit();
    t.true([204, 401].includes((await answer).status), name);
    t.is((await sys.api.post(`${A}/refresh`, { refreshToken: flight.next })).status, 401, `${name}: the token the refresh issued is revoked too`);
  }
});

test("a refresh waits for the user's session lock (held by a revocation)", async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const trx = await sys.db.transaction();
  await lockUserSessions(trx, u.id);
  const answer = sys.api.post(`${A}/refresh`, { refreshToken: u.refreshToken });
  t.false(await settledWithin(answer, 300));
  await trx.commit();
  t.is((await answer).status, 200);
});

test('a login that checked the old password while a password change was committing opens no session', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  // A password change in flight: the user's session lock, the new hash, not yet committed.
  const trx = await sys.db.transaction();
  await lockUserSessions(trx, u.id);
  await trx('users').where({ id: u.id }).update({ password_hash: 'changed' });
  const answer = sys.api.post(`${A}/login`, { email: u.email, password: u.password });
  t.false(await settledWithin(answer, 500), 'the login checked the old password and waits to open its session');
  await trx.commit();
  t.is((await answer).status, 401);
});
