import test from 'ava';
import { registerUser, useSystem } from '../helpers/system.js';
import { bid, liveAuction } from '../helpers/auctions.js';

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
