import test from 'ava';
import { applyBid, closeAuction, startAuction } from '../../auction/engine.js';
import { auction, HOUR, T0 } from './helpers.js';

const ctx = { banned: new Set<string>(), names: new Map<string, string>() };
const input = (over: Partial<Parameters<typeof applyBid>[1]> = {}) => ({
  id: 'b1',
  kind: 'bid' as const,
  bidderId: 'alice',
  bidderName: 'Alice',
  amount: 100,
  receivedAt: T0,
  receiptNo: 1,
  ...over,
});

test('a bid received before the auction went live is auction_not_live, however late it is applied', (t) => {
  const s = auction({ startsAt: T0 + 1_000 });
  t.is(applyBid(s, input({ receivedAt: T0 + 999 }), ctx).verdict.reason, 'auction_not_live');
  t.is(applyBid(s, input({ receivedAt: T0 + 1_000 }), ctx).verdict.status, 'accepted');
});

test('startAuction records when it went live', (t) => {
  const started = startAuction(auction({ status: 'scheduled', endsAt: null, seq: 0 }), T0, 60)!;
  t.is(started.state.startsAt, T0);
  t.is(started.state.endsAt, T0 + 60_000);
  t.is(applyBid(started.state, input({ receivedAt: T0 - 1 }), ctx).verdict.reason, 'auction_not_live');
});

test('after an owner\'s early end (endCap) a bid in the soft-close window does not extend past it', (t) => {
  const endsAt = T0 + HOUR;
  const soft = auction({ endsAt, softCloseSeconds: 30 });
  const hard = auction({ endsAt, softCloseSeconds: 30, endCap: endsAt });
  const late = input({ receivedAt: endsAt - 5_000 });
  t.is(applyBid(soft, late, ctx).state.endsAt, endsAt - 5_000 + 30_000);
  const r = applyBid(hard, late, ctx);
  t.is(r.verdict.status, 'accepted');
  t.is(r.state.endsAt, endsAt);
  t.false(r.events.some((e) => e.type === 'auction.extended'));
});

test('an owner\'s end asked after a stale end: a bid received before that end extends it up to the cap, and a bid after the stale end but before the cap is on time', (t) => {
  // Stored end E has passed; a bid received at E - 1 s is still queued (it would
  // move the end to E + 29 s); the owner asks to end at E + 600 ms.
  const E = T0 + HOUR;
  const cap = E + 600;
  const s = auction({ endsAt: E, softCloseSeconds: 30, endCap: cap });
  const first = applyBid(s, input({ receivedAt: E - 1_000, amount: 1_000 }), ctx);
  t.is(first.verdict.status, 'accepted');
  t.is(first.state.endsAt, cap, 'extended, up to the cap only');
  t.deepEqual(first.events.filter((e) => e.type === 'auction.extended').map((e) => e.endsAt), [cap]);
  const second = applyBid(first.state, input({ id: 'b2', bidderId: 'u2', bidderName: 'Bob', receivedAt: E + 300, amount: 2_000, receiptNo: 2 }), ctx);
  t.is(second.verdict.status, 'accepted');
  t.is(second.state.endsAt, cap);
  t.is(applyBid(second.state, input({ id: 'b3', bidderId: 'u3', receivedAt: cap, amount: 3_000, receiptNo: 3 }), ctx).verdict.reason, 'auction_ended');
  t.is(closeAuction(second.state, cap - 1), null);
  t.is(closeAuction(second.state, cap)?.winnerId, 'u2');
});
