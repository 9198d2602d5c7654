import test from 'ava';
import { applyBid, startAuction } from '../../auction/engine.js';
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

test('after an owner\'s early end (hardEnd) a bid in the soft-close window does not extend', (t) => {
  const endsAt = T0 + HOUR;
  const soft = auction({ endsAt, softCloseSeconds: 30 });
  const hard = auction({ endsAt, softCloseSeconds: 30, hardEnd: true });
  const late = input({ receivedAt: endsAt - 5_000 });
  t.is(applyBid(soft, late, ctx).state.endsAt, endsAt - 5_000 + 30_000);
  const r = applyBid(hard, late, ctx);
  t.is(r.verdict.status, 'accepted');
  t.is(r.state.endsAt, endsAt);
  t.false(r.events.some((e) => e.type === 'auction.extended'));
});
