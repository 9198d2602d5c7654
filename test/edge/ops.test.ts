import test from 'ava';
import type { Express } from 'express';
import { createAdmin, registerUser, useSystem } from '../helpers/system.js';

const system = useSystem(test);

interface Layer {
  rawPath?: string;
  route?: { path: string; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** Every (method, path) Express actually routes, found by walking the router. */
function expressRoutes(app: Express): Set<string> {
  const out = new Set<string>();
  const walk = (stack: Layer[], prefix: string) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const m of Object.keys(layer.route.methods)) out.add(`${m} ${prefix}${layer.route.path}`);
      } else if (layer.handle?.stack && typeof layer.rawPath === 'string' && layer.rawPath !== '/') {
        walk(layer.handle.stack, prefix + layer.rawPath);
      } else if (layer.handle?.stack) {
        walk(layer.handle.stack, prefix);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return out;
}

test('healthz and readyz', async (t) => {
  const { api } = system();
  const h = await api.get('/healthz');
  t.is(h.status, 200);
  t.is(h.body.status, 'ok');
  const r = await api.get('/readyz');
  t.is(r.status, 200);
  t.deepEqual(r.body.checks, { postgres: 'ok', redis: 'ok' });
});

test('metrics: request counters and latency by route pattern, error counts, process metrics', async (t) => {
  const sys = system();
  const u = await registerUser(sys);
  await sys.api.get('/api/v1/auth/profile', { token: u.accessToken });
  await sys.api.get('/api/v1/nope');
  t.is((await sys.api.get('/api/v1/products?limit=0')).status, 400);
  const res = await sys.api.get('/metrics');
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /text\/plain/);
  t.regex(res.text, /blytz_http_requests_total\{method="GET",route="\/api\/v1\/auth\/profile",status="200"\} \d+/);
  t.regex(res.text, /blytz_http_requests_total\{method="POST",route="\/api\/v1\/auth\/register",status="201"\} \d+/);
  t.regex(res.text, /blytz_http_request_duration_seconds_bucket\{le="0.1",method="GET",route="\/api\/v1\/auth\/profile",status="200"\}/);
  t.regex(res.text, /blytz_http_requests_total\{method="GET",route="\/api\/v1\/products",status="400"\} \d+/, 'an error keeps its route\'s full pattern');
  t.notRegex(res.text, /route="\/products"/);
  t.regex(res.text, /route="unmatched",status="404"/, 'unknown URLs do not create labels of their own');
  t.notRegex(res.text, /\/api\/v1\/nope/);
  t.regex(res.text, /blytz_http_errors_total\{code="not_found",status="404"\} \d+/);
  t.regex(res.text, /blytz_edge_process_resident_memory_bytes/);
});

test('OpenAPI: the spec lists exactly the API routes the server has', async (t) => {
  const sys = system();
  const res = await sys.api.get('/openapi.json');
  t.is(res.status, 200);
  t.is(res.body.openapi, '3.0.3');
  const specOps = new Set<string>();
  for (const [path, ops] of Object.entries(res.body.paths as Record<string, Record<string, unknown>>)) {
    for (const m of Object.keys(ops)) specOps.add(`${m} ${path.replace(/\{([^}]+)\}/g, ':$1')}`);
  }
  const app = sys.edge.app as Express;
  const routed = [...expressRoutes(app)].filter((r) => r.includes(' /api/v1/'));
  t.true(routed.length >= 9, `found ${routed.length} API routes`);
  for (const r of routed) t.true(specOps.has(r), `${r} is routed but not in the spec`);
  for (const op of specOps) {
    if (op.includes(' /api/v1/')) t.true(routed.includes(op), `${op} is in the spec but not routed`);
  }
  // Validation in the spec is the validation the server applies.
  const register = res.body.paths['/api/v1/auth/register'].post;
  const schema = register.requestBody.content['application/json'].schema;
  t.deepEqual(schema.required.sort(), ['email', 'name', 'password']);
  t.is(schema.additionalProperties, false);
  t.is(schema.properties.password.minLength, 8);
  t.is(schema.properties.password.maxLength, 128);
  t.deepEqual(register.responses['201'] !== undefined, true);
});

test('/docs serves the interactive documentation', async (t) => {
  const { api } = system();
  const res = await api.get('/docs/', { redirect: 'follow' });
  t.is(res.status, 200);
  t.regex(res.text, /swagger-ui/i);
  const init = await api.get('/docs/swagger-ui-init.js');
  t.is(init.status, 200);
  t.regex(init.text, /openapi\.json/);
});

test('Bull Board: 401 for API clients, login page for browsers, 403 for non-admins', async (t) => {
  const sys = system();
  const anon = await sys.api.get('/admin/queues');
  t.is(anon.status, 401);
  t.is(anon.body.error.code, 'unauthorized');
  const browser = await sys.api.get('/admin/queues', { headers: { accept: 'text/html' } });
  t.is(browser.status, 302);
  t.is(browser.headers.get('location'), '/admin/login');
  const buyer = await registerUser(sys);
  const forbidden = await sys.api.get('/admin/queues', { token: buyer.accessToken });
  t.is(forbidden.status, 403);
  t.is(forbidden.body.error.code, 'forbidden');
});

test('Bull Board: an admin sees every queue (Bearer)', async (t) => {
  const sys = system();
  const admin = await createAdmin(sys);
  const page = await sys.api.get('/admin/queues', { token: admin.accessToken });
  t.is(page.status, 200);
  t.regex(page.text, /<div id="root">/);
  const queues = await sys.api.get('/admin/queues/api/queues', { token: admin.accessToken });
  t.is(queues.status, 200);
  const names = (queues.body.queues as { name: string }[]).map((q) => q.name).sort();
  t.deepEqual(names, [...sys.edge.deps.producer.queues.keys()].sort());
  // API.md: no X-Powered-By on any answer (the adapter's router is an Express app of its own).
  for (const r of [page, queues]) t.is(r.headers.get('x-powered-by'), null);
});

test('Bull Board: a malformed request is a 4xx in the API envelope, not a 500', async (t) => {
  const sys = system();
  const admin = await createAdmin(sys);
  const escape = await sys.api.get('/admin/queues/api/queues/auctions/%ZZ', { token: admin.accessToken });
  t.is(escape.status, 400);
  t.is(escape.body.error.code, 'validation_failed');
  t.is(escape.headers.get('x-powered-by'), null);
  const json = await fetch(`${sys.edge.url}/admin/queues/api/queues/auctions/retry/failed`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${admin.accessToken}`, 'content-type': 'application/json' },
    body: '{"not json',
  });
  t.is(json.status, 400);
  t.is(((await json.json()) as { error: { code: string } }).error.code, 'validation_failed');
});

test('Bull Board: an operator signs in with a browser form and a secure cookie', async (t) => {
  const sys = system();
  const admin = await createAdmin(sys);
  const form = await sys.api.get('/admin/login');
  t.is(form.status, 200);
  t.regex(form.text, /<form method="post" action="\/admin\/login">/);

  const post = (email: string, password: string) =>
    sys.api.request('POST', '/admin/login', {
      raw: new URLSearchParams({ email, password }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
  const bad = await post(admin.email, 'wrong password');
  t.is(bad.status, 401);
  t.is(bad.headers.get('set-cookie'), null);
  const buyer = await registerUser(sys);
  const notAdmin = await post(buyer.email, buyer.password);
  t.is(notAdmin.status, 401, 'a non-admin gets no console cookie');

  const ok = await post(admin.email.toUpperCase(), admin.password);
  t.is(ok.status, 303);
  t.is(ok.headers.get('location'), '/admin/queues');
  const setCookie = ok.headers.get('set-cookie') ?? '';
  t.regex(setCookie, /blytz_admin=/);
  t.regex(setCookie, /HttpOnly/i);
  t.regex(setCookie, /SameSite=Strict/i);
  t.regex(setCookie, /Path=\/admin/);
  const cookie = setCookie.split(';')[0]!;
  const page = await sys.api.get('/admin/queues', { headers: { cookie, accept: 'text/html' } });
  t.is(page.status, 200);
  t.regex(page.text, /Blytz\.live queues|<div id="root">/);

  // The console cookie is not an access token, and an access token is not a cookie.
  const asBearer = await sys.api.get('/api/v1/auth/profile', { token: decodeURIComponent(cookie.split('=')[1]!) });
  t.is(asBearer.status, 401);
  const asCookie = await sys.api.get('/admin/queues', { headers: { cookie: `blytz_admin=${admin.accessToken}` } });
  t.is(asCookie.status, 401);

  // The cookie lasts hours: a demotion, or a password change, ends it at once.
  const api = '/admin/queues/api/queues';
  t.is((await sys.api.get(api, { headers: { cookie } })).status, 200);
  await sys.db('users').where({ id: admin.id }).update({ role: 'buyer' });
  t.is((await sys.api.get(api, { headers: { cookie } })).status, 401, 'demoted');
  await sys.db('users').where({ id: admin.id }).update({ role: 'admin' });
  t.is((await sys.api.get(api, { headers: { cookie } })).status, 200, 'an admin again');
  // Changed within the second the cookie was issued in, too.
  await sys.db('users').where({ id: admin.id }).update({ password_changed_at: sys.db.raw('clock_timestamp()') });
  t.is((await sys.api.get(api, { headers: { cookie } })).status, 401, 'password changed since');
});
