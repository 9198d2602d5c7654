import test from 'ava';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import net from 'node:net';
import { loadConfig } from '../../lib/env.js';
import { createLogger } from '../../lib/logger.js';
import { startEdge, type RunningEdge } from '../../edge/http/server.js';
import { testEnv } from '../helpers/config.js';
import { client, type ApiResponse, type Client } from '../helpers/http.js';
import { registerUser, useSystem } from '../helpers/system.js';

const ALLOWED = 'https://app.blytz.test';
const ALSO_ALLOWED = 'https://admin.blytz.test';
const A = '/api/v1/auth';

// Serial hooks: this teardown is declared first so it finishes before the system's
// own (which drops the database); the start-up below waits for the system's.
let prod: { edge: RunningEdge; api: Client } | undefined;
test.serial.after.always(async () => {
  await prod?.edge.close();
});

const system = useSystem(test, { env: { CORS_ORIGINS: `${ALLOWED}, ${ALSO_ALLOWED}` } });

/** A second edge in production mode on the same database and Redis prefix. */
test.serial.before(async () => {
  const sys = system();
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const config = loadConfig({
    ...testEnv({ DB_NAME: sys.env.DB_NAME!, REDIS_PREFIX: sys.env.REDIS_PREFIX! }),
    ENV: 'production',
    JWT_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    STRIPE_SECRET_KEY: 'sk_test_security_suite',
    STRIPE_WEBHOOK_SECRET: 'whsec_security_suite',
    LIVEKIT_API_KEY: 'lk_security_suite',
    LIVEKIT_API_SECRET: 'lk-secret-security-suite-0000000000',
    // Trust auth locally; a CI with a real password passes it through testEnv.
    DB_PASSWORD: process.env.DB_PASSWORD || 'unused-with-trust-auth',
    TRUST_PROXY_HOPS: '1',
  });
  const edge = await startEdge(config, createLogger('test', config.logLevel));
  prod = { edge, api: client(edge.url) };
});

const HTTPS = { 'x-forwarded-proto': 'https' };

// ---------------------------------------------------------------------------
// Helpers

function assertSecurityHeaders(t: import('ava').ExecutionContext, res: ApiResponse, label: string) {
  t.is(res.headers.get('x-content-type-options'), 'nosniff', `${label}: nosniff`);
  const csp = res.headers.get('content-security-policy');
  t.truthy(csp, `${label}: CSP present`);
  const frameOptions = res.headers.get('x-frame-options');
  t.true(frameOptions === 'DENY' || /frame-ancestors\s+'none'/.test(csp ?? ''), `${label}: frame protection`);
  t.is(res.headers.get('x-powered-by'), null, `${label}: no X-Powered-By`);
}

/** Leaks an error body must never contain. */
const LEAKS: [RegExp, string][] = [
  [/node_modules/i, 'node_modules'],
  [/\bat\s+[^\s]+\s+\(?[^\s()]+:\d+:\d+\)?/, 'a stack frame'],
  [/\n\s+at\s/, 'a stack trace'],
  [/\b(SELECT|INSERT|UPDATE|DELETE)\b\s+[\s\S]*\b(FROM|INTO|SET|WHERE)\b/i, 'SQL'],
  [/\bsyntax error at or near\b|\bduplicate key value\b|\bviolates\b.*\bconstraint\b/i, 'a Postgres message'],
  [/\.(ts|js|mjs|cjs):\d+/, 'a source location'],
  [/\/work\/|\/home\/|\/usr\/|[A-Z]:\\/, 'a file path'],
  [/SyntaxError|TypeError|ReferenceError|URIError|PayloadTooLargeError/, 'an exception class'],
  [/Unexpected token|in JSON at position/, 'a parser message'],
];

function assertCleanError(t: import('ava').ExecutionContext, res: ApiResponse, label: string) {
  t.truthy(res.body, `${label}: a JSON body`);
  t.deepEqual(Object.keys(res.body ?? {}), ['error'], `${label}: only the envelope`);
  const keys = Object.keys(res.body?.error ?? {});
  t.true(keys.every((k) => ['code', 'message', 'details'].includes(k)), `${label}: envelope keys ${keys.join(',')}`);
  t.regex(String(res.body?.error?.code), /^[a-z]+(_[a-z]+)*$/, `${label}: snake_case code`);
  t.is(typeof res.body?.error?.message, 'string', `${label}: message`);
  for (const [re, what] of LEAKS) t.false(re.test(res.text), `${label}: body contains ${what}: ${res.text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------
// Security headers

test('every kind of response carries the security headers, and no HSTS in test mode', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const responses: [number, string, ApiResponse][] = [
    [200, 'jwks', await sys.api.get('/.well-known/jwks.json')],
    [200, 'profile', await sys.api.get(`${A}/profile`, { token: u.accessToken })],
    [200, 'healthz', await sys.api.get('/healthz')],
    [200, 'readyz', await sys.api.get('/readyz')],
    [200, 'openapi', await sys.api.get('/openapi.json')],
    [400, 'malformed json', await sys.api.post(`${A}/login`, undefined, { raw: '{' })],
    [401, 'no token', await sys.api.get(`${A}/profile`)],
    [403, 'wrong role', await sys.api.put(`/api/v1/admin/users/${u.id}/role`, { role: 'admin' }, { token: u.accessToken })],
    [404, 'unknown route', await sys.api.get('/api/v1/nope')],
    [413, 'large body', await sys.api.post(`${A}/login`, undefined, { raw: JSON.stringify({ email: 'x'.repeat(200_000) }) })],
  ];
  for (const [status, label, res] of responses) {
    t.is(res.status, status, label);
    assertSecurityHeaders(t, res, `${status} ${label}`);
    t.is(res.headers.get('strict-transport-security'), null, `${label}: no HSTS outside production`);
  }
});

// ---------------------------------------------------------------------------
// Production mode

test('production: HSTS on HTTPS responses (behind the trusted proxy)', async (t) => {
  const res = await prod!.api.get('/.well-known/jwks.json', { headers: HTTPS });
  t.is(res.status, 200);
  const hsts = res.headers.get('strict-transport-security') ?? '';
  const maxAge = Number(/max-age=(\d+)/.exec(hsts)?.[1] ?? 0);
  t.true(maxAge >= 15_552_000, `max-age of at least 180 days: ${hsts}`);
  t.regex(hsts, /includeSubDomains/i);
  assertSecurityHeaders(t, res, 'production 200');
  const err = await prod!.api.get(`${A}/profile`, { headers: HTTPS });
  t.is(err.status, 401);
  t.is(err.body.error.code, 'unauthorized');
  t.truthy(err.headers.get('strict-transport-security'), 'errors carry HSTS too');
});

test('production: plain HTTP is redirected to https with 308, method and query kept', async (t) => {
  const { api, edge } = prod!;
  const host = `127.0.0.1:${edge.port}`;
  const get = await api.get('/api/v1/notifications?limit=5&cursor=abc');
  t.is(get.status, 308);
  t.is(get.headers.get('location'), `https://${host}/api/v1/notifications?limit=5&cursor=abc`);
  assertSecurityHeaders(t, get, 'redirect');

  const email = `redirect.${randomUUID()}@example.com`;
  const post = await api.post(`${A}/register`, { email, password: 'password123', name: 'Plain' });
  t.is(post.status, 308, 'a POST over plain HTTP is redirected, not served');
  t.is(post.headers.get('location'), `https://${host}${A}/register`);
  t.is(await system().db('users').where({ email }).first(), undefined, 'nothing was created over plain HTTP');

  // A client claiming https through the proxy header is served.
  const viaProxy = await api.get('/api/v1/notifications', { headers: HTTPS });
  t.is(viaProxy.status, 401);
  t.is(viaProxy.body.error.code, 'unauthorized');
  const other = await api.get('/api/v1/notifications', { headers: { 'x-forwarded-proto': 'http' } });
  t.is(other.status, 308);
});

test('production: the bid fast path redirects plain HTTP and serves HTTPS (via the proxy) with HSTS', async (t) => {
  const { api, edge } = prod!;
  const auctionId = randomUUID();
  const path = `/api/v1/auctions/${auctionId}/bid`;
  const plain = await api.post(path, { amount: 1000 });
  t.is(plain.status, 308, 'a bid over plain HTTP is redirected, not taken');
  t.is(plain.headers.get('location'), `https://127.0.0.1:${edge.port}${path}`);
  const secure = await api.post(path, { amount: 1000 }, { headers: HTTPS });
  t.is(secure.status, 401, 'served: no token');
  t.is(secure.headers.get('etag'), null, 'by the fast path');
  t.truthy(secure.headers.get('strict-transport-security'));
  assertSecurityHeaders(t, secure, 'fast path 401');
  assertCleanError(t, secure, 'fast path 401');
});

test('production: /healthz and /readyz are never redirected', async (t) => {
  for (const path of ['/healthz', '/readyz']) {
    const res = await prod!.api.get(path);
    t.is(res.status, 200, path);
    t.is(res.headers.get('location'), null, path);
  }
});

// ---------------------------------------------------------------------------
// CORS

test('CORS: only configured origins get Access-Control-Allow-Origin', async (t) => {
  const { api } = system();
  for (const origin of [ALLOWED, ALSO_ALLOWED]) {
    const res = await api.get('/.well-known/jwks.json', { headers: { origin } });
    t.is(res.status, 200);
    t.is(res.headers.get('access-control-allow-origin'), origin, origin);
    t.regex(res.headers.get('vary') ?? '', /origin/i, 'Vary: Origin');
  }
  for (const origin of ['https://evil.example', 'https://app.blytz.test.evil.example', 'http://app.blytz.test', 'null']) {
    const res = await api.get('/.well-known/jwks.json', { headers: { origin } });
    t.is(res.status, 200);
    t.is(res.headers.get('access-control-allow-origin'), null, origin);
    t.is(res.headers.get('access-control-allow-credentials'), null, origin);
  }
});

test('CORS preflight: allowed origin gets methods and headers, others get nothing', async (t) => {
  const { api } = system();
  const ok = await api.request('OPTIONS', `${A}/login`, {
    headers: { origin: ALLOWED, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
  });
  t.true(ok.status === 204 || ok.status === 200);
  t.is(ok.headers.get('access-control-allow-origin'), ALLOWED);
  t.regex(ok.headers.get('access-control-allow-methods') ?? '', /POST/);
  t.regex(ok.headers.get('access-control-allow-headers') ?? '', /authorization/i);
  const bad = await api.request('OPTIONS', `${A}/login`, {
    headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
  });
  t.is(bad.headers.get('access-control-allow-origin'), null);
});

// ---------------------------------------------------------------------------
// Request bodies

test('malformed JSON is 400 validation_failed', async (t) => {
  const { api } = system();
  for (const raw of ['{', '{"email": "a@b.c",}', "{'email':'a'}", 'nope', '{"a":1}{"b":2}', '\u0000']) {
    const res = await api.post(`${A}/login`, undefined, { raw });
    t.is(res.status, 400, raw);
    t.is(res.body.error.code, 'validation_failed', raw);
    assertCleanError(t, res, raw);
  }
});

test('a body over 100 kB is 413 payload_too_large; just under is judged on its content', async (t) => {
  const { api, db } = system();
  const email = `big.${randomUUID()}@example.com`;
  const big = await api.post(`${A}/register`, { email, password: 'password123', name: 'x'.repeat(101 * 1024) });
  t.is(big.status, 413);
  t.is(big.body.error.code, 'payload_too_large');
  assertCleanError(t, big, '413');
  const bigger = await api.post(`${A}/login`, undefined, { raw: 'x'.repeat(2 * 1024 * 1024) });
  t.is(bigger.status, 413, 'even when not JSON');
  t.is(bigger.body.error.code, 'payload_too_large');
  const under = await api.post(`${A}/register`, { email, password: 'password123', name: 'x'.repeat(90 * 1024) });
  t.is(under.status, 400, '90 kB is parsed, then the name is too long');
  t.is(under.body.error.code, 'validation_failed');
  t.is(await db('users').where({ email }).first(), undefined);
});

test('unknown body fields are 400 (no mass assignment)', async (t) => {
  const sys = system();
  const email = `mass.${randomUUID()}@example.com`;
  for (const extra of [{ role: 'admin', isAdmin: true }, { id: randomUUID() }, { password_hash: 'x' }, { createdAt: '2020-01-01T00:00:00Z' }]) {
    const res = await sys.api.post(`${A}/register`, undefined, {
      raw: JSON.stringify({ email, password: 'password123', name: 'Mass' }).replace(/}$/, `,${JSON.stringify(extra).slice(1, -1)}}`),
    });
    t.is(res.status, 400, JSON.stringify(extra));
    t.is(res.body.error.code, 'validation_failed');
  }
  const proto = await sys.api.post(`${A}/register`, undefined, { raw: `{"email":"${email}","password":"password123","name":"P","__proto__":{"role":"admin"}}` });
  t.is(proto.status, 400, '__proto__ key');
  t.is(proto.body.error.code, 'validation_failed');
  const constructor = await sys.api.post(`${A}/register`, undefined, {
    raw: `{"email":"${email}","password":"password123","name":"P","constructor":{"prototype":{"role":"admin"}}}`,
  });
  t.is(constructor.status, 400, 'constructor key');
  t.is(await sys.db('users').where({ email }).first(), undefined, 'nothing was created');
  t.is(({} as Record<string, unknown>).role, undefined, 'no prototype pollution in this process');
});

test('wrong JSON types are 400: numbers for strings and strings for numbers', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const email = `types.${randomUUID()}@example.com`;
  const bodies: [string, unknown][] = [
    [`${A}/register`, { email, password: 12345678, name: 'T' }],
    [`${A}/register`, { email, password: 'password123', name: 42 }],
    [`${A}/register`, { email, password: 'password123', name: ['T'] }],
    [`${A}/register`, { email, password: 'password123', name: { first: 'T' } }],
    [`${A}/register`, { email, password: 'password123', name: null }],
    [`${A}/register`, { email, password: 'password123', name: true }],
    [`${A}/login`, { email: 1, password: 'password123' }],
    [`${A}/refresh`, { refreshToken: 123456 }],
    [`${A}/refresh`, { refreshToken: [u.refreshToken] }],
  ];
  for (const [path, body] of bodies) {
    const res = await sys.api.post(path, body);
    t.is(res.status, 400, `${path} ${JSON.stringify(body)}`);
    t.is(res.body.error.code, 'validation_failed');
  }
  // A string where the (query) number is expected.
  for (const limit of ['twenty', '1e1x', '']) {
    const res = await sys.api.get(`/api/v1/notifications?limit=${limit}`, { token: u.accessToken });
    t.is(res.status, 400, `limit=${limit}`);
    t.is(res.body.error.code, 'validation_failed');
  }
  t.is(await sys.db('users').where({ email }).first(), undefined);
  // The array-wrapped refresh token was not consumed.
  t.is((await sys.api.post(`${A}/refresh`, { refreshToken: u.refreshToken })).status, 200);
});

test('a POST with a non-JSON content type is 400 and creates nothing', async (t) => {
  const { api, db } = system();
  const email = `ctype.${randomUUID()}@example.com`;
  const json = JSON.stringify({ email, password: 'password123', name: 'CT' });
  const cases: [string, string][] = [
    ['text/plain', json],
    ['application/x-www-form-urlencoded', `email=${encodeURIComponent(email)}&password=password123&name=CT`],
    ['multipart/form-data; boundary=x', `--x\r\nContent-Disposition: form-data; name="email"\r\n\r\n${email}\r\n--x--\r\n`],
    ['application/xml', `<user><email>${email}</email></user>`],
  ];
  for (const [type, raw] of cases) {
    const res = await api.post(`${A}/register`, undefined, { raw, headers: { 'content-type': type } });
    t.is(res.status, 400, type);
    t.is(res.body.error.code, 'validation_failed', type);
    assertCleanError(t, res, type);
  }
  const none = await api.request('POST', `${A}/register`);
  t.is(none.status, 400, 'no body at all');
  t.is(none.body.error.code, 'validation_failed');
  t.is(await db('users').where({ email }).first(), undefined);
  // The same body as JSON does create the account (the checks above were not vacuous).
  const ok = await api.post(`${A}/register`, undefined, { raw: json });
  t.is(ok.status, 201);
});

// ---------------------------------------------------------------------------
// Unknown routes and error hygiene

test('unknown routes and methods are 404 not_found in the envelope', async (t) => {
  const { api } = system();
  const cases: [string, string][] = [
    ['GET', '/api/v1/does-not-exist'],
    ['GET', '/api/v2/auth/profile'],
    ['DELETE', `${A}/profile`],
    ['GET', `${A}/login`],
    ['POST', '/nope'],
    ['GET', '/.env'],
    ['GET', '/../../etc/passwd'],
    ['GET', '/api/v1/auth/%2e%2e/%2e%2e/etc/passwd'],
  ];
  for (const [method, path] of cases) {
    const res = await api.request(method, path);
    t.is(res.status, 404, `${method} ${path}`);
    t.is(res.body?.error?.code, 'not_found', `${method} ${path}`);
    assertCleanError(t, res, `${method} ${path}`);
  }
});

test('a malformed percent-encoding in a path parameter is 400, not 500', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  for (const bad of ['%E0%A4%A', '%', '%zz']) {
    const res = await sys.api.request('POST', `/api/v1/notifications/${bad}/read`, { token: u.accessToken });
    t.is(res.status, 400, bad);
    t.is(res.body?.error?.code, 'validation_failed', bad);
    assertCleanError(t, res, bad);
  }
});

test('no error body leaks stack traces, paths, SQL or library messages', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  const responses: [string, ApiResponse][] = [
    ['malformed json', await sys.api.post(`${A}/login`, undefined, { raw: '{"email": }' })],
    ['truncated json', await sys.api.post(`${A}/login`, undefined, { raw: '{"email": "a' })],
    ['too large', await sys.api.post(`${A}/login`, undefined, { raw: JSON.stringify({ email: 'x'.repeat(200_000) }) })],
    ['unsupported charset', await sys.api.post(`${A}/login`, undefined, { raw: '{}', headers: { 'content-type': 'application/json; charset=klingon' } })],
    ['unsupported encoding', await sys.api.post(`${A}/login`, undefined, { raw: '{}', headers: { 'content-encoding': 'zstd-bogus' } })],
    ['bad gzip', await sys.api.post(`${A}/login`, undefined, { raw: 'not gzip', headers: { 'content-encoding': 'gzip' } })],
    ['validation', await sys.api.post(`${A}/register`, { email: 'x', password: 1, name: '' })],
    ['deeply nested body', await sys.api.post(`${A}/register`, undefined, { raw: `{"name":${'['.repeat(40_000)}${']'.repeat(40_000)}}` })],
    ['nested __proto__', await sys.api.post(`${A}/login`, undefined, { raw: '{"email":{"__proto__":{"x":1}},"password":"p"}' })],
    ['sql-looking uuid', await sys.api.request('POST', `/api/v1/notifications/${encodeURIComponent("1' OR '1'='1")}/read`, { token: u.accessToken })],
    ['sql-looking cursor', await sys.api.get(`/api/v1/notifications?cursor=${encodeURIComponent("'; DROP TABLE users; --")}`, { token: u.accessToken })],
    ['cursor with a non-date', await sys.api.get(`/api/v1/notifications?cursor=${Buffer.from(JSON.stringify(['2020-13-45T99:99:99Z', randomUUID()])).toString('base64url')}`, { token: u.accessToken })],
    ['unknown query', await sys.api.get(`/api/v1/notifications?sort=id;drop`, { token: u.accessToken })],
    ['repeated query', await sys.api.get(`/api/v1/notifications?limit=1&limit=2`, { token: u.accessToken })],
    ['nested query', await sys.api.get(`/api/v1/notifications?limit[$gt]=1`, { token: u.accessToken })],
    ['bad token', await sys.api.get(`${A}/profile`, { token: 'a.b.c' })],
    ['not found', await sys.api.get('/api/v1/nowhere')],
    ['bad admin body', await sys.api.put(`/api/v1/admin/users/${u.id}/role`, { role: 'god' }, { token: u.accessToken })],
  ];
  for (const [label, res] of responses) {
    t.true(res.status >= 400 && res.status < 500, `${label}: a client error, got ${res.status}: ${res.text.slice(0, 200)}`);
    assertCleanError(t, res, label);
  }
});

test("requests Node's HTTP parser refuses get the envelope and the security headers", async (t) => {
  const sys = system();
  const { port } = new URL(sys.edge.url);
  /** Sends `head` on a raw socket; returns the status, headers and body of the answer. */
  const raw = (head: string) =>
    new Promise<{ status: number; headers: Record<string, string>; body: string }>((resolve, reject) => {
      const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(head));
      let text = '';
      socket.on('data', (d) => (text += d.toString('latin1')));
      socket.on('error', reject);
      socket.on('close', () => {
        const [top = '', body = ''] = text.split('\r\n\r\n');
        const [statusLine = '', ...lines] = top.split('\r\n');
        const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
      });
    });
  const cases: [string, string, number, string][] = [
    ['headers over 16 KB', `GET /api/v1/auctions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'headers_too_large'],
    ['two Content-Lengths', 'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400, 'validation_failed'],
    ['Content-Length with Transfer-Encoding', 'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}', 400, 'validation_failed'],
    ['an Expect other than 100-continue', 'GET /api/v1/auctions HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nConnection: close\r\n\r\n', 417, 'expectation_failed'],
  ];
  for (const [what, head, status, code] of cases) {
    const res = await raw(head);
    t.is(res.status, status, what);
    t.is(JSON.parse(res.body).error.code, code, what);
    t.is(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`);
    t.true(res.headers['x-frame-options'] === 'DENY' || /frame-ancestors 'none'/.test(res.headers['content-security-policy'] ?? ''), `${what}: frame protection`);
  }
  t.is((await sys.api.get('/readyz')).status, 200);
});

test('a JSON body whose bytes are not UTF-8 is 400 and stores nothing (not U+FFFD in their place)', async (t) => {
  const sys = system();
  const email = `u${randomUUID()}@x.io`;
  const res = await fetch(`${sys.edge.url}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: Buffer.concat([Buffer.from(`{"email":"${email}","password":"password123","name":"bad`), Buffer.from([0xc3, 0x28]), Buffer.from('name"}')]),
  });
  t.is(res.status, 400);
  const body = (await res.json()) as { error: { code: string; message: string } };
  t.is(body.error.code, 'validation_failed');
  t.is(body.error.message, 'request body is not valid UTF-8');
  t.is(await sys.db('users').where({ email }).first(), undefined);
  // The same body in valid UTF-8 is taken.
  const ok = await sys.api.post('/api/v1/auth/register', { email, password: 'password123', name: 'good\u00e9name' });
  t.is(ok.status, 201);
});

test('NUL characters and out-of-range numbers that reach Postgres are 400, not 500', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cursor = Buffer.from(JSON.stringify({ kind: 'rank', rank: 1e-50, id: '00000000-0000-4000-8000-000000000000' })).toString('base64url');
  for (const [what, res] of [
    ['login with a NUL in the email', await sys.api.post('/api/v1/auth/login', { email: '\u0000', password: 'x' })],
    ['search for a NUL', await sys.api.get('/api/v1/products?q=%00')],
    ['a search cursor with a rank below real\'s range', await sys.api.get(`/api/v1/products?q=a&cursor=${cursor}`)],
    ['a name with an unpaired surrogate', await sys.api.post('/api/v1/auth/register', { email: `s${randomUUID()}@x.io`, password: 'password123', name: 'a\ud800' })],
    ['a description with an unpaired surrogate', await sys.api.post('/api/v1/products', { title: 'x', categoryId: '00000000-0000-4000-8000-000000000000', price: 100, description: '\udc00' }, { token: seller.accessToken })],
    ['a description with an escape character', await sys.api.post('/api/v1/products', { title: 'x', categoryId: '00000000-0000-4000-8000-000000000000', price: 100, description: 'red\u001b[31m' }, { token: seller.accessToken })],
    ['a product description with a NUL', await sys.api.post('/api/v1/products', { title: 'x', categoryId: '00000000-0000-4000-8000-000000000000', price: 100, description: 'a\u0000' }, { token: seller.accessToken })],
  ] as const) {
    t.is(res.status, 400, `${what}: ${res.text}`);
    t.is((res.body as { error?: { code?: string } })?.error?.code, 'validation_failed', what);
  }
});
