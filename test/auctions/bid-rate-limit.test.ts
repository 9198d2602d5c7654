import test from 'ava';
import { registerUser, useSystem } from '../helpers/system.js';
import { bid, liveAuction } from '../helpers/auctions.js';
import { chunkedBody } from '../helpers/http.js';

const system = useSystem(test, { env: { RATE_LIMIT_BIDS_PER_MIN: '3' } });

test('bids are limited per user (429 with Retry-After); other users keep their own budget', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const eager = await registerUser(sys);
  const calm = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  for (let i = 0; i < 3; i++) t.is((await bid(sys, eager, a.id, 1000 + i * 100)).status, 202);
  const over = await bid(sys, eager, a.id, 5000);
  t.is(over.status, 429);
  t.is(over.body.error.code, 'rate_limited');
  t.regex(over.headers.get('retry-after') ?? '', /^\d+$/);
  const auto = await sys.api.post(`/api/v1/auctions/${a.id}/autobid`, { maxAmount: 9000 }, { token: eager.accessToken });
  t.is(auto.status, 429, 'auto-bids share the budget');
  t.is((await bid(sys, calm, a.id, 6000)).status, 202);
  t.is((await sys.db('bids').where({ auction_id: a.id, bidder_id: eager.id })).length, 3, 'refused bids were not recorded');
});

test('the bid fast path and the Express route count against one budget', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const u = await registerUser(sys);
  const a = await liveAuction(sys, seller);
  const url = `${sys.edge.url}/api/v1/auctions/${a.id}/bid`;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${u.accessToken}` };
  // A Content-Length body goes the fast path; a chunked one (a stream) goes to Express (it adds an ETag).
  const fast = (amount: number) => fetch(url, { method: 'POST', headers, body: JSON.stringify({ amount }) });
  const chunked = (amount: number) =>
    fetch(url, { method: 'POST', headers, ...chunkedBody(JSON.stringify({ amount })) } as RequestInit);
  const answers = [await chunked(1000), await fast(1100), await chunked(1200)];
  t.deepEqual(answers.map((r) => r.status), [202, 202, 202]);
  t.deepEqual(answers.map((r) => r.headers.get('etag') !== null), [true, false, true], 'both paths were used');
  t.regex(answers[1]!.headers.get('ratelimit') ?? '', /^limit=3, remaining=1, reset=\d+$/, 'the fast path saw the Express hit before it');
  const overFast = await fast(1300);
  t.is(overFast.status, 429);
  t.regex(overFast.headers.get('retry-after') ?? '', /^\d+$/);
  t.is((await overFast.json()).error.code, 'rate_limited');
  t.is((await chunked(1400)).status, 429);
  t.is((await sys.db('bids').where({ auction_id: a.id })).length, 3);
});
