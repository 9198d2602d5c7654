/** The edge's memo of verified access tokens (lib/jwt.ts tokenVerifier). */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { loadKeys, signAccessToken, tokenVerifier } from '../../lib/jwt.js';
import { testConfig } from '../helpers/config.js';

const config = testConfig();
const claims = { id: randomUUID(), role: 'buyer' as const, name: 'Ann', sid: randomUUID() };

test('a remembered token is trusted only until its own exp', async (t) => {
  const keys = loadKeys(config);
  const { verify } = tokenVerifier(keys, config);
  const token = jwt.sign({ role: 'buyer', name: 'Ann', sid: claims.sid }, keys.privateKey!, {
    algorithm: 'RS256',
    keyid: keys.kid,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    subject: claims.id,
    // exp is in whole seconds (iat rounded down + 2): at least a second away now.
    // With 1, a token signed late in a second expired at once, memo or not (seen in CI).
    expiresIn: 2,
  });
  const exp = (jwt.decode(token) as { exp: number }).exp * 1000;
  t.true(exp - Date.now() > 1_000);
  t.deepEqual(verify(token), claims);
  t.deepEqual(verify(token), claims, 'from the memo');
  await new Promise((r) => setTimeout(r, exp - Date.now() + 50));
  t.is(verify(token), null, 'expired, though remembered');
});

test('a remembered token is checked again after ttlMs (a withdrawn key stops working)', async (t) => {
  const keys = loadKeys(config);
  const { verify, remembered } = tokenVerifier(keys, config, { ttlMs: 50 });
  const token = signAccessToken(keys, config, claims);
  t.false(remembered(token));
  t.deepEqual(verify(token), claims);
  t.true(remembered(token));
  keys.publicKeys.delete(keys.kid);
  t.deepEqual(verify(token), claims, 'still within ttlMs');
  await new Promise((r) => setTimeout(r, 60));
  t.is(verify(token), null);
});

test('bad tokens are never remembered, and the memo keeps the newest max tokens', (t) => {
  const keys = loadKeys(config);
  const { verify } = tokenVerifier(keys, config, { max: 2 });
  const good = signAccessToken(keys, config, claims);
  const tampered = good.slice(0, -4) + (good.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  t.is(verify(tampered), null);
  t.is(verify(tampered), null);
  const [t1, t2, t3] = [0, 1, 2].map(() => signAccessToken(keys, config, claims)) as [string, string, string];
  for (const tk of [t1, t2, t3]) t.deepEqual(verify(tk), claims);
  // With the key withdrawn, only remembered tokens still pass: t1 was pushed out by t3.
  keys.publicKeys.delete(keys.kid);
  t.is(verify(t1), null);
  t.deepEqual(verify(t3), claims);
});

test('a signed token whose user or session id is not a UUID is refused', (t) => {
  const keys = loadKeys(config);
  const { verify } = tokenVerifier(keys, config);
  const sign = (sub: string, sid: string) => signAccessToken(keys, config, { id: sub, role: 'buyer', name: 'Ann', sid });
  t.truthy(verify(sign(claims.id, claims.sid)));
  t.is(verify(sign(claims.id, 'not-a-session')), null);
  t.is(verify(sign('x', claims.sid)), null);
});
