/**
 * The bid fast path (edge/http/fast-bids.ts) must answer exactly as the Express
 * route does. Each case is sent twice: with a Content-Length (the fast path takes
 * it) and chunked (the fast path leaves it to Express). Express adds an ETag to
 * every JSON answer and the fast path never does, which proves which one answered.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { registerUser, useSystem, type System, type TestUser } from '../helpers/system.js';
import { liveAuction } from '../helpers/auctions.js';
import { chunkedBody } from '../helpers/http.js';

const system = useSystem(test);

type Way = 'fast' | 'express';

interface Answer {
  status: number;
  headers: Headers;
  body: { error?: { code: string; message: string; details?: { path: string }[] }; bidId?: string; autobidId?: string; status?: string };
}

async function send(sys: System, way: Way, path: string, body: string | Buffer, headers: Record<string, string>): Promise<Answer> {
  const init: RequestInit & { duplex?: 'half' } = { method: 'POST', headers: { 'content-type': 'application/json', ...headers } };
  if (way === 'fast') init.body = typeof body === 'string' ? body : new Uint8Array(body);
  else Object.assign(init, chunkedBody(body));
  const res = await fetch(sys.edge.url + path, init);
  const text = await res.text();
  const answer = { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
  if (way === 'fast') {
    if (res.headers.get('etag') !== null) throw new Error(`${path}: Express answered a fast-path request`);
  } else if (res.headers.get('etag') === null) throw new Error(`${path}: the fast path answered a chunked request`);
  return answer;
}

/** Header names that must match between the two ways. */
const IGNORED = new Set(['etag', 'date', 'content-length', 'transfer-encoding', 'connection', 'keep-alive']);
const headerNames = (h: Headers) => {
  const names: string[] = [];
  h.forEach((_v, k) => names.push(k));
  return names.filter((k) => !IGNORED.has(k)).sort();
};

interface Case {
  name: string;
  path: (auctionId: string) => string;
  body: string | Buffer;
  headers?: (u: TestUser) => Record<string, string>;
  status: number;
  code?: string;
}

const auth = (u: TestUser) => ({ authorization: `Bearer ${u.accessToken}` });
const bidPath = (id: string) => `/api/v1/auctions/${id}/bid`;

const CASES: Case[] = [
  { name: 'a valid bid', path: bidPath, body: '{"amount":1500}', headers: auth, status: 202 },
  { name: 'a valid auto-bid', path: (id) => `/api/v1/auctions/${id}/autobid`, body: '{"maxAmount":9000}', headers: auth, status: 202 },
  { name: 'an upper-case auction id', path: (id) => bidPath(id.toUpperCase()), body: '{"amount":1600}', headers: auth, status: 202 },
  { name: 'no token', path: bidPath, body: '{"amount":1500}', status: 401, code: 'unauthorized' },
  { name: 'an empty Authorization header', path: bidPath, body: '{"amount":1500}', headers: () => ({ authorization: '' }), status: 401, code: 'unauthorized' },
  { name: 'a malformed Authorization header', path: bidPath, body: '{"amount":1500}', headers: () => ({ authorization: 'Token abc' }), status: 401, code: 'unauthorized' },
  { name: 'a forged token', path: bidPath, body: '{"amount":1500}', headers: () => ({ authorization: 'Bearer a.b.c' }), status: 401, code: 'unauthorized' },
  { name: 'invalid JSON', path: bidPath, body: '{"amount":', headers: auth, status: 400, code: 'validation_failed' },
  { name: 'invalid JSON and no token (the body is read first)', path: bidPath, body: '{"amount":', status: 400, code: 'validation_failed' },
  { name: 'a JSON scalar (strict)', path: bidPath, body: '1500', headers: auth, status: 400, code: 'validation_failed' },
  { name: 'a string amount', path: bidPath, body: '{"amount":"1500"}', headers: auth, status: 400, code: 'validation_failed' },
  { name: 'a fractional amount', path: bidPath, body: '{"amount":15.5}', headers: auth, status: 400, code: 'validation_failed' },
  { name: 'an unsafe integer', path: bidPath, body: '{"amount":9007199254740993}', headers: auth, status: 400, code: 'validation_failed' },
  { name: 'an unknown field', path: bidPath, body: '{"amount":1500,"bidderId":"x"}', headers: auth, status: 400, code: 'validation_failed' },
  { name: 'a __proto__ key', path: bidPath, body: '{"amount":1500,"__proto__":{"admin":true}}', headers: auth, status: 400, code: 'validation_failed' },
  { name: 'a bid body on the autobid route', path: (id) => `/api/v1/auctions/${id}/autobid`, body: '{"amount":1500}', headers: auth, status: 400, code: 'validation_failed' },
  { name: 'an unknown auction', path: () => bidPath(randomUUID()), body: '{"amount":1500}', headers: auth, status: 404, code: 'not_found' },
  { name: 'a malformed Idempotency-Key', path: bidPath, body: '{"amount":1500}', headers: (u) => ({ ...auth(u), 'idempotency-key': 'has spaces in it' }), status: 400, code: 'validation_failed' },
  { name: 'bytes that are not UTF-8 (in a key)', path: bidPath, body: Buffer.from('{"amount":1500,"\xc3\x28":1}', 'latin1'), headers: auth, status: 400, code: 'validation_failed' },
  { name: 'bytes that are not UTF-8 (in whitespace after a valid body)', path: bidPath, body: Buffer.concat([Buffer.from('{"amount":1500}'), Buffer.from([0x20, 0xff])]), headers: auth, status: 400, code: 'validation_failed' },
  { name: 'a UTF-8 BOM before the JSON', path: bidPath, body: '\uFEFF{"amount":1700}', headers: auth, status: 202 },
];

for (const c of CASES) {
  test(`fast path and Express agree: ${c.name}`, async (t) => {
    const sys = system();
    const seller = await registerUser(sys, 'seller');
    const u = await registerUser(sys);
    const a = await liveAuction(sys, seller);
    const answers: Record<Way, Answer> = {} as Record<Way, Answer>;
    for (const way of ['fast', 'express'] as const) {
      answers[way] = await send(sys, way, c.path(a.id), c.body, c.headers?.(u) ?? {});
    }
    const { fast, express } = answers;
    t.is(fast.status, c.status);
    t.is(express.status, c.status);
    t.is(fast.body.error?.code, c.code);
    t.is(express.body.error?.code, c.code);
    t.is(fast.body.error?.message, express.body.error?.message);
    t.deepEqual(fast.body.error?.details?.map((d) => d.path), express.body.error?.details?.map((d) => d.path));
    t.deepEqual(Object.keys(fast.body).sort(), Object.keys(express.body).sort());
    t.deepEqual(headerNames(fast.headers), headerNames(express.headers), 'the same headers');
    t.is(fast.headers.get('content-security-policy'), express.headers.get('content-security-policy'));
    t.is(fast.headers.get('content-type'), express.headers.get('content-type'));
    const recorded = await sys.db('bids').where({ auction_id: a.id }).count<{ count: string }[]>('* as count');
    t.is(Number(recorded[0]!.count), c.status === 202 ? 2 : 0, 'accepted requests are recorded once each way; refused ones not at all');
  });
}

test('Idempotency-Key: a key first used on one path replays on the other; a different request with it is 409 either way', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const headers = { ...auth(u), 'idempotency-key': randomUUID() };
  const first = await send(sys, 'express', bidPath(a.id), '{"amount":2000}', headers);
  const again = await send(sys, 'fast', bidPath(a.id), '{"amount":2000}', headers);
  t.is(first.status, 202);
  t.is(again.status, 202);
  t.is(again.body.bidId, first.body.bidId);
  for (const way of ['fast', 'express'] as const) {
    const other = await send(sys, way, bidPath(a.id), '{"amount":2100}', headers);
    t.is(other.status, 409, way);
    t.is(other.body.error?.code, 'conflict');
  }
  t.is((await sys.db('bids').where({ auction_id: a.id })).length, 1);
});

test('requests the fast path does not take still work (query string, charset, big body, other content types)', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const post = (path: string, body: string, headers: Record<string, string>) =>
    fetch(sys.edge.url + path, { method: 'POST', headers: { ...auth(u), ...headers }, body }).then(async (r) => ({ status: r.status, etag: r.headers.get('etag'), body: await r.json() }));
  const withQuery = await post(`${bidPath(a.id)}?x=1`, '{"amount":1500}', { 'content-type': 'application/json' });
  t.is(withQuery.status, 400, 'the route takes no query');
  t.truthy(withQuery.etag, 'Express answered');
  const text = await post(bidPath(a.id), '{"amount":1500}', { 'content-type': 'text/plain' });
  t.is(text.status, 400);
  t.is(text.body.error.code, 'validation_failed');
  const latin1 = await post(bidPath(a.id), '{"amount":1500}', { 'content-type': 'application/json; charset=latin1' });
  t.is(latin1.status, 415);
  const empty = await post(bidPath(a.id), '', { 'content-type': 'application/json' });
  t.is(empty.status, 400, 'an empty body is {}: amount is missing');
  t.is(empty.etag, null, 'the fast path took it');
  const big = await post(bidPath(a.id), JSON.stringify({ amount: 1500, pad: 'x'.repeat(200_000) }), { 'content-type': 'application/json' });
  t.is(big.status, 413);
  const charset = await post(bidPath(a.id), '{"amount":1500}', { 'content-type': 'application/json; charset=UTF-8' });
  t.is(charset.status, 202);
  t.is(charset.etag, null, 'the fast path took it');
});

test('the fast path counts requests in the edge metrics under the route pattern', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  await send(sys, 'fast', bidPath(a.id), '{"amount":1500}', auth(u));
  const metrics = await (await fetch(`${sys.edge.url}/metrics`)).text();
  t.regex(metrics, /blytz_http_requests_total\{method="POST",route="\/api\/v1\/auctions\/:id\/bid",status="202"\} [1-9]/);
  t.regex(metrics, /blytz_bids_received_total\{kind="bid"\} [1-9]/);
});
