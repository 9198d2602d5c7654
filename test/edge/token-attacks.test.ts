import test from 'ava';
import { createHmac, createPublicKey, generateKeyPairSync, randomUUID, sign as rsaSign, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';
import { loadKeys, type KeySet } from '../../lib/jwt.js';
import { registerUser, useSystem, type System, type TestUser } from '../helpers/system.js';

const system = useSystem(test, { broadcaster: true });
const PROFILE = '/api/v1/auth/profile';

// ---------------------------------------------------------------------------
// Token crafting

const b64url = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A hand-made JWT: header and payload as given, signature from `signer` over `h.p`. */
function handmade(header: object, payload: object, signer: (input: string) => string = () => ''): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${signer(input)}`;
}

const hs256 = (secret: string | Buffer) => (input: string) => createHmac('sha256', secret).update(input).digest('base64url');
const rs256 = (key: KeyObject) => (input: string) => rsaSign('sha256', Buffer.from(input), key).toString('base64url');

/** The claims a real access token of `u` carries. */
function claimsOf(sys: System, u: TestUser) {
  const { sid, role, name } = jwt.decode(u.accessToken) as jwt.JwtPayload;
  return { sub: u.id, sid, role, name, iss: sys.config.jwt.issuer, aud: sys.config.jwt.audience, iat: now(), exp: now() + 600, jti: randomUUID() };
}

const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });

interface Ctx {
  sys: System;
  keys: KeySet;
  victim: TestUser;
  other: TestUser;
}

let ctxPromise: Promise<Ctx> | undefined;
/** One victim (a buyer) and one other user, shared by every test of the file. */
function ctx(): Promise<Ctx> {
  ctxPromise ??= (async () => {
    const sys = system();
    const [victim, other] = await Promise.all([registerUser(sys, 'buyer'), registerUser(sys, 'seller')]);
    return { sys, keys: loadKeys(sys.config), victim, other };
  })();
  return ctxPromise;
}

/** Signs with jsonwebtoken and our real private key (defaults: a valid token of the victim). */
function realSigned(c: Ctx, payload: Record<string, unknown>, options: jwt.SignOptions = {}): string {
  return jwt.sign(payload, c.keys.privateKey!, { algorithm: 'RS256', keyid: c.keys.kid, noTimestamp: true, ...options });
}

const without = (o: Record<string, unknown>, k: string) => Object.fromEntries(Object.entries(o).filter(([key]) => key !== k));

/** Every forged, expired or otherwise invalid token: each must be refused with 401. */
const ATTACKS: Record<string, (c: Ctx) => string> = {
  'alg none, our kid, empty signature': (c) => handmade({ alg: 'none', typ: 'JWT', kid: c.keys.kid }, claimsOf(c.sys, c.victim)),
  'alg none, no kid, empty signature': (c) => handmade({ alg: 'none', typ: 'JWT' }, claimsOf(c.sys, c.victim)),
  'alg None (mixed case), our kid': (c) => handmade({ alg: 'None', typ: 'JWT', kid: c.keys.kid }, claimsOf(c.sys, c.victim)),
  'alg none with the original signature kept': (c) => {
    const [, , sig] = c.victim.accessToken.split('.');
    return `${b64url({ alg: 'none', typ: 'JWT', kid: c.keys.kid })}.${b64url(claimsOf(c.sys, c.victim))}.${sig}`;
  },
  'payload tampered: role changed to admin, signature kept': (c) => {
    const [h, p, s] = c.victim.accessToken.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    return `${h}.${b64url({ ...payload, role: 'admin' })}.${s}`;
  },
  'payload tampered: sub changed to another user, signature kept': (c) => {
    const [h, p, s] = c.victim.accessToken.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    return `${h}.${b64url({ ...payload, sub: c.other.id })}.${s}`;
  },
  'signature stripped from a real token': (c) => c.victim.accessToken.split('.').slice(0, 2).join('.') + '.',
  'expired token signed with the real key': (c) =>
    realSigned(c, { ...claimsOf(c.sys, c.victim), iat: now() - 3600, exp: now() - 120 }),
  'not yet valid (nbf in the future) signed with the real key': (c) =>
    realSigned(c, { ...claimsOf(c.sys, c.victim), nbf: now() + 3600 }),
  'signed with another RSA key, unknown kid': (c) =>
    jwt.sign(claimsOf(c.sys, c.victim), attacker.privateKey, { algorithm: 'RS256', keyid: 'attacker-key-1', noTimestamp: true }),
  'signed with another RSA key, no kid': (c) =>
    jwt.sign(claimsOf(c.sys, c.victim), attacker.privateKey, { algorithm: 'RS256', noTimestamp: true }),
  'signed with another RSA key claiming our kid': (c) =>
    jwt.sign(claimsOf(c.sys, c.victim), attacker.privateKey, { algorithm: 'RS256', keyid: c.keys.kid, noTimestamp: true }),
  'signed with another RSA key, its own jwk embedded in the header': (c) => {
    const jwk = createPublicKey(attacker.privateKey).export({ format: 'jwk' });
    return handmade({ alg: 'RS256', typ: 'JWT', kid: c.keys.kid, jwk }, claimsOf(c.sys, c.victim), rs256(attacker.privateKey));
  },
  'kid path traversal': (c) =>
    jwt.sign(claimsOf(c.sys, c.victim), attacker.privateKey, { algorithm: 'RS256', keyid: '../../../../dev/null', noTimestamp: true }),
  'HS256 with our public key (spki PEM) as the HMAC secret': (c) =>
    handmade({ alg: 'HS256', typ: 'JWT', kid: c.keys.kid }, claimsOf(c.sys, c.victim), hs256(pubKey(c).export({ type: 'spki', format: 'pem' }) as string)),
  'HS256 with our public key (pkcs1 PEM) as the HMAC secret': (c) =>
    handmade({ alg: 'HS256', typ: 'JWT', kid: c.keys.kid }, claimsOf(c.sys, c.victim), hs256(pubKey(c).export({ type: 'pkcs1', format: 'pem' }) as string)),
  'HS256 with our public key (spki DER) as the HMAC secret': (c) =>
    handmade({ alg: 'HS256', typ: 'JWT', kid: c.keys.kid }, claimsOf(c.sys, c.victim), hs256(pubKey(c).export({ type: 'spki', format: 'der' }))),
  'HS256 with our published JWK (JSON) as the HMAC secret': (c) =>
    handmade({ alg: 'HS256', typ: 'JWT', kid: c.keys.kid }, claimsOf(c.sys, c.victim), hs256(JSON.stringify(c.keys.jwks[0]))),
  'HS256 with our JWK modulus as the HMAC secret': (c) =>
    handmade({ alg: 'HS256', typ: 'JWT', kid: c.keys.kid }, claimsOf(c.sys, c.victim), hs256(c.keys.jwks[0]!.n)),
  'HS256 with the spki PEM, no kid': (c) =>
    handmade({ alg: 'HS256', typ: 'JWT' }, claimsOf(c.sys, c.victim), hs256(pubKey(c).export({ type: 'spki', format: 'pem' }) as string)),
  'RS512 signed with the real key (only RS256 is accepted)': (c) =>
    jwt.sign(claimsOf(c.sys, c.victim), c.keys.privateKey!, { algorithm: 'RS512', keyid: c.keys.kid, noTimestamp: true }),
  'wrong issuer, real key': (c) => realSigned(c, { ...claimsOf(c.sys, c.victim), iss: 'https://evil.example' }),
  'no issuer, real key': (c) => realSigned(c, without(claimsOf(c.sys, c.victim), 'iss')),
  'wrong audience, real key': (c) => realSigned(c, { ...claimsOf(c.sys, c.victim), aud: 'someone-else' }),
  'no audience, real key': (c) => realSigned(c, without(claimsOf(c.sys, c.victim), 'aud')),
  'missing sub, real key': (c) => realSigned(c, without(claimsOf(c.sys, c.victim), 'sub')),
  'missing sid, real key': (c) => realSigned(c, without(claimsOf(c.sys, c.victim), 'sid')),
  'unknown role, real key': (c) => realSigned(c, { ...claimsOf(c.sys, c.victim), role: 'superuser' }),
  'not a JWT at all': () => 'garbage',
  'two segments only': (c) => c.victim.accessToken.split('.').slice(0, 2).join('.'),
  'header is not JSON': (c) => `${b64url('not json')}.${c.victim.accessToken.split('.').slice(1).join('.')}`,
  // With typ "JWT" jsonwebtoken's decode parses the payload, and threw: a 500 on
  // every route, and an uncaught exception that stopped the broadcaster.
  'header typ JWT, payload is not JSON': (c) => `${b64url({ alg: 'RS256', typ: 'JWT', kid: c.keys.kid })}.${b64url('not json')}.x`,
};

function pubKey(c: Ctx): KeyObject {
  return createPublicKey(c.keys.privateKey!);
}

// ---------------------------------------------------------------------------
// WebSocket helpers

type Upgrade =
  | { kind: 'open'; ws: WebSocket; next: () => Promise<Record<string, unknown>> }
  | { kind: 'refused'; status: number; body: string };

/** Connects; resolves with the open socket (and a frame reader) or the refused upgrade's status. */
function connect(url: string): Promise<Upgrade> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const frames: Record<string, unknown>[] = [];
    const waiters: ((f: Record<string, unknown>) => void)[] = [];
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>;
      const w = waiters.shift();
      if (w) w(frame);
      else frames.push(frame);
    });
    const next = () =>
      new Promise<Record<string, unknown>>((res, rej) => {
        const f = frames.shift();
        if (f) return res(f);
        const timer = setTimeout(() => rej(new Error('no frame within 3 s')), 3_000);
        waiters.push((frame) => {
          clearTimeout(timer);
          res(frame);
        });
      });
    ws.once('open', () => resolve({ kind: 'open', ws, next }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => {
        resolve({ kind: 'refused', status: res.statusCode ?? 0, body });
        ws.terminate();
      });
    });
    ws.once('error', (err) => reject(err));
  });
}

const wsUrl = (sys: System, token?: string) => sys.broadcaster!.url + (token === undefined ? '' : `?token=${encodeURIComponent(token)}`);

async function pingPong(up: Extract<Upgrade, { kind: 'open' }>) {
  up.ws.send(JSON.stringify({ type: 'ping' }));
  return up.next();
}

// ---------------------------------------------------------------------------
// Controls: the crafting code above makes tokens the server accepts when nothing is wrong

test('control: tokens made by the same crafting code are accepted when valid (HTTP and WS)', async (t) => {
  const c = await ctx();
  const valid = {
    'the issued token': c.victim.accessToken,
    'jsonwebtoken, real key': realSigned(c, claimsOf(c.sys, c.victim)),
    'hand-made RS256, real key': handmade({ alg: 'RS256', typ: 'JWT', kid: c.keys.kid }, claimsOf(c.sys, c.victim), rs256(c.keys.privateKey!)),
  };
  for (const [name, token] of Object.entries(valid)) {
    const res = await c.sys.api.get(PROFILE, { token });
    t.is(res.status, 200, name);
    t.is(res.body.user.id, c.victim.id, name);
    t.is(res.body.user.role, 'buyer', name);
    const up = await connect(wsUrl(c.sys, token));
    t.is(up.kind, 'open', name);
    if (up.kind === 'open') {
      t.deepEqual(await pingPong(up), { type: 'pong' }, name);
      up.ws.close();
    }
  }
});

// ---------------------------------------------------------------------------
// Every attack, over HTTP and at the WebSocket upgrade

for (const [name, make] of Object.entries(ATTACKS)) {
  test(`HTTP 401: ${name}`, async (t) => {
    const c = await ctx();
    const res = await c.sys.api.get(PROFILE, { token: make(c) });
    t.is(res.status, 401);
    t.is(res.body?.error?.code, 'unauthorized');
    t.is(res.body?.user, undefined);
  });

  test(`WS upgrade 401: ${name}`, async (t) => {
    const c = await ctx();
    const up = await connect(wsUrl(c.sys, make(c)));
    t.is(up.kind, 'refused');
    if (up.kind === 'refused') {
      t.is(up.status, 401);
      t.is((JSON.parse(up.body) as { error: { code: string } }).error.code, 'unauthorized');
    } else {
      up.ws.close();
    }
  });
}

test('the bid fast path and the admin console refuse a token whose payload is not JSON (401, not 500)', async (t) => {
  const c = await ctx();
  const token = ATTACKS['header typ JWT, payload is not JSON']!(c);
  const res = await c.sys.api.post(`/api/v1/auctions/${randomUUID()}/bid`, { amount: 100 }, { token });
  t.is(res.status, 401);
  t.is(res.body?.error?.code, 'unauthorized');
  const admin = await c.sys.api.get('/admin/queues', { headers: { cookie: `blytz_admin=${token}` } });
  t.is(admin.status, 401, 'admin console');
  t.is(admin.body?.error?.code, 'unauthorized');
});

test('a forged admin token cannot reach an admin-only route', async (t) => {
  const c = await ctx();
  const forged = ATTACKS['payload tampered: role changed to admin, signature kept']!(c);
  const res = await c.sys.api.put(`/api/v1/admin/users/${c.victim.id}/role`, { role: 'admin' }, { token: forged });
  t.is(res.status, 401);
  t.is(res.body.error.code, 'unauthorized');
  const row = await c.sys.db('users').where({ id: c.victim.id }).first();
  t.is(row.role, 'buyer');
});

test('a validly signed token for an account that does not exist is refused on profile', async (t) => {
  const c = await ctx();
  const token = realSigned(c, { ...claimsOf(c.sys, c.victim), sub: randomUUID() });
  const res = await c.sys.api.get(PROFILE, { token });
  t.is(res.status, 401);
  t.is(res.body.error.code, 'unauthorized');
});

// ---------------------------------------------------------------------------
// Malformed Authorization headers

test('malformed Authorization headers are 401 unauthorized', async (t) => {
  const c = await ctx();
  const headers = [
    'Bearer',
    'Bearer ',
    'Basic xyz',
    `Basic ${Buffer.from(`${c.victim.email}:${c.victim.password}`).toString('base64')}`,
    'garbage',
    `Token ${c.victim.accessToken}`,
    `${c.victim.accessToken}`,
    `Bearer ${c.victim.accessToken} ${c.victim.accessToken}`,
    `Bearer ${c.victim.accessToken},${c.victim.accessToken}`,
    `Bearer "${c.victim.accessToken}"`,
    'Bearer !!!!',
  ];
  for (const authorization of headers) {
    const res = await c.sys.api.get(PROFILE, { headers: { authorization } });
    t.is(res.status, 401, authorization);
    t.is(res.body?.error?.code, 'unauthorized', authorization);
  }
  // The same header shape with the real token works.
  t.is((await c.sys.api.get(PROFILE, { headers: { authorization: `Bearer ${c.victim.accessToken}` } })).status, 200);
});

test('a bad token is refused even on a public API route (the client learns its credentials are bad)', async (t) => {
  const c = await ctx();
  const anon = await c.sys.api.get('/api/v1/categories');
  t.is(anon.status, 200);
  const bad = await c.sys.api.get('/api/v1/categories', { token: ATTACKS['alg none, our kid, empty signature']!(c) });
  t.is(bad.status, 401);
  t.is(bad.body.error.code, 'unauthorized');
});

test('health checks and key discovery ignore whatever Authorization a client sends', async (t) => {
  const c = await ctx();
  const token = ATTACKS['alg none, our kid, empty signature']!(c);
  for (const path of ['/healthz', '/readyz', '/.well-known/jwks.json', '/openapi.json']) {
    t.is((await c.sys.api.get(path, { token })).status, 200, path);
  }
});

test('the Bearer scheme name is case-insensitive (RFC 7235)', async (t) => {
  const c = await ctx();
  const res = await c.sys.api.get(PROFILE, { headers: { authorization: `bearer ${c.victim.accessToken}` } });
  t.is(res.status, 200);
});

// ---------------------------------------------------------------------------
// WebSocket: anonymous viewers, empty token, bad frames

test('WS: no token connects as an anonymous viewer and gets pong', async (t) => {
  const sys = system();
  const up = await connect(wsUrl(sys));
  t.is(up.kind, 'open');
  if (up.kind !== 'open') return;
  t.deepEqual(await pingPong(up), { type: 'pong' });
  up.ws.close();
});

test('WS: an empty token is refused with 401', async (t) => {
  const sys = system();
  const up = await connect(wsUrl(sys, ''));
  t.is(up.kind, 'refused');
  if (up.kind === 'refused') t.is(up.status, 401);
  else up.ws.close();
});

test('WS: bad frames get an error frame and the connection stays open', async (t) => {
  const c = await ctx();
  for (const token of [undefined, c.victim.accessToken]) {
    const up = await connect(wsUrl(c.sys, token));
    t.is(up.kind, 'open');
    if (up.kind !== 'open') return;
    const bad: [string | Buffer, string][] = [
      ['{not json', 'bad_frame'],
      ['', 'bad_frame'],
      ['[]', 'bad_frame'],
      ['"ping"', 'bad_frame'],
      ['null', 'bad_frame'],
      ['{"type":42}', 'bad_frame'],
      ['{"no":"type"}', 'bad_frame'],
      [Buffer.from([0x00, 0xff, 0x10]), 'bad_frame'],
      ['{"type":"definitely.not.a.type"}', 'unknown_type'],
      ['{"type":"subscribe","auctionId":"not-a-uuid"}', 'bad_frame'],
    ];
    for (const [frame, code] of bad) {
      up.ws.send(frame);
      const reply = await up.next();
      t.is(reply.type, 'error', String(frame));
      t.is(reply.code, code, String(frame));
      t.is(typeof reply.message, 'string');
    }
    t.is(up.ws.readyState, WebSocket.OPEN);
    t.deepEqual(await pingPong(up), { type: 'pong' }, 'still answers after the bad frames');
    up.ws.close();
  }
});
