import test from 'ava';
import {
  BanPeriods,
  applyBid,
  closeAuction,
  minNextBid,
  reserveMet,
  startAuction,
  type AuctionState,
  type BidInput,
  type RejectReason,
} from '../../auction/engine.js';
import { HOUR, SELLER, T0, auction, ctxFor, nameOf, notices, placed, run, type Step } from './helpers.js';

const verdicts = (r: ReturnType<typeof run>) => r.results.map((x) => (x.verdict.status === 'accepted' ? 'ok' : x.verdict.reason));

// ---------------------------------------------------------------- minNextBid

test('minNextBid is the starting price before the first bid, then price + increment', (t) => {
  const s = auction({ startingPrice: 800, currentPrice: 800 });
  t.is(minNextBid(s), 800);
  const r = run(s, [['bid', 'a', 800]]);
  t.is(r.state.currentPrice, 800);
  t.is(minNextBid(r.state), 850);
  const e = r.events[0]!;
  t.is(e.type === 'bid.placed' && e.minNextBid, 850);
});

const minNextCases: [price: number, fixed: number | null, expected: number][] = [
  [95, null, 100],
  [99, null, 104],
  [100, null, 125],
  [499, null, 524],
  [500, null, 550],
  [2_499, null, 2_549],
  [2_500, null, 2_600],
  [9_999, null, 10_099],
  [10_000, null, 10_250],
  [25_000, null, 25_500],
  [50_000, null, 51_000],
  [100_000, null, 102_500],
  [250_000, null, 255_000],
  [500_000, null, 510_000],
  [500_000, 1, 500_001],
  [100, 1_000, 1_100],
];
for (const [price, fixed, expected] of minNextCases) {
  test(`minNextBid after a bid at ${price}¢ (bidIncrement ${fixed}) is ${expected}¢`, (t) => {
    const s = auction({ startingPrice: 1, currentPrice: price, leaderId: 'x', leaderOrder: 1, bidCount: 1, bidIncrement: fixed });
    t.is(minNextBid(s), expected);
    const r = run(s, [
      ['bid', 'a', expected - 1],
      ['bid', 'a', expected],
    ]);
    t.deepEqual(verdicts(r), ['bid_too_low', 'ok']);
    t.is(r.state.currentPrice, expected);
  });
}

test('a bid below the starting price is too low; at it, it is accepted', (t) => {
  const r = run(auction({ startingPrice: 500, currentPrice: 500 }), [
    ['bid', 'a', 499],
    ['autobid', 'b', 499],
    ['bid', 'a', 500],
  ]);
  t.deepEqual(verdicts(r), ['bid_too_low', 'bid_too_low', 'ok']);
});

test('a bid is placed at exactly its amount, however far above minNextBid', (t) => {
  const r = run(auction(), [
    ['bid', 'a', 100],
    ['bid', 'b', 7_777],
  ]);
  t.deepEqual(placed(r.events), [
    ['a', 100, false],
    ['b', 7_777, false],
  ]);
  t.is(r.state.currentPrice, 7_777);
  t.is(r.state.leaderId, 'b');
  t.is(r.state.bidCount, 2);
  t.is(minNextBid(r.state), 7_877);
});

// ---------------------------------------------------------------- rejections

interface RejectCase {
  name: string;
  state: Partial<AuctionState>;
  kind: 'bid' | 'autobid';
  user: string;
  amount: number;
  at?: number;
  banned?: string[];
  expect: RejectReason | 'ok';
}

const LEADING: Partial<AuctionState> = { leaderId: 'lead', leaderOrder: 1, currentPrice: 1_000, bidCount: 1 };
const rejectCases: RejectCase[] = [
  // 1. auction_not_live / auction_ended come before everything else.
  { name: 'scheduled', state: { status: 'scheduled', endsAt: null }, kind: 'bid', user: SELLER, amount: 1, banned: [SELLER], expect: 'auction_not_live' },
  { name: 'cancelled', state: { status: 'cancelled' }, kind: 'autobid', user: SELLER, amount: 1, banned: [SELLER], expect: 'auction_not_live' },
  { name: 'ended', state: { status: 'ended' }, kind: 'bid', user: SELLER, amount: 1, banned: [SELLER], expect: 'auction_ended' },
  { name: 'ended (high bid)', state: { status: 'ended' }, kind: 'bid', user: 'a', amount: 1_000_000, expect: 'auction_ended' },
  { name: 'received exactly at endsAt', state: {}, kind: 'bid', user: SELLER, amount: 1, at: T0 + HOUR, banned: [SELLER], expect: 'auction_ended' },
  { name: 'received after endsAt', state: {}, kind: 'autobid', user: 'a', amount: 1_000, at: T0 + HOUR + 1, expect: 'auction_ended' },
  { name: 'received 1 ms before endsAt', state: {}, kind: 'bid', user: 'a', amount: 100, at: T0 + HOUR - 1, expect: 'ok' },
  { name: 'auto-bid 1 ms before endsAt', state: {}, kind: 'autobid', user: 'a', amount: 100, at: T0 + HOUR - 1, expect: 'ok' },
  // 2. banned, before self_bid, already_leading, bid_too_low.
  { name: 'banned seller bidding too low', state: {}, kind: 'bid', user: SELLER, amount: 1, banned: [SELLER], expect: 'banned' },
  { name: 'banned leader', state: LEADING, kind: 'bid', user: 'lead', amount: 1, banned: ['lead'], expect: 'banned' },
  { name: 'banned auto-bidder', state: {}, kind: 'autobid', user: 'a', amount: 100_000, banned: ['a'], expect: 'banned' },
  { name: 'banned, high enough', state: {}, kind: 'bid', user: 'a', amount: 100_000, banned: ['a', 'b'], expect: 'banned' },
  // 3. self_bid, before already_leading and bid_too_low.
  { name: 'seller bidding too low', state: {}, kind: 'bid', user: SELLER, amount: 1, expect: 'self_bid' },
  { name: 'seller bidding high', state: LEADING, kind: 'bid', user: SELLER, amount: 100_000, expect: 'self_bid' },
  { name: 'seller auto-bid', state: {}, kind: 'autobid', user: SELLER, amount: 100_000, expect: 'self_bid' },
  { name: 'seller, someone else banned', state: {}, kind: 'bid', user: SELLER, amount: 100, banned: ['a'], expect: 'self_bid' },
  // 4. already_leading, before bid_too_low.
  { name: 'leader bidding too low', state: LEADING, kind: 'bid', user: 'lead', amount: 1, expect: 'already_leading' },
  { name: 'leader bidding high', state: LEADING, kind: 'bid', user: 'lead', amount: 100_000, expect: 'already_leading' },
  // 5. bid_too_low.
  { name: 'one cent below minNextBid', state: LEADING, kind: 'bid', user: 'a', amount: 1_049, expect: 'bid_too_low' },
  { name: 'at minNextBid', state: LEADING, kind: 'bid', user: 'a', amount: 1_050, expect: 'ok' },
  { name: 'equal to the current price', state: LEADING, kind: 'bid', user: 'a', amount: 1_000, expect: 'bid_too_low' },
  { name: 'auto-bid max one cent below minNextBid', state: LEADING, kind: 'autobid', user: 'a', amount: 1_049, expect: 'bid_too_low' },
  { name: 'auto-bid max at minNextBid', state: LEADING, kind: 'autobid', user: 'a', amount: 1_050, expect: 'ok' },
  // The leader may set or raise a max (never already_leading) but not below the price.
  { name: 'leader sets a max above the price', state: LEADING, kind: 'autobid', user: 'lead', amount: 1_001, expect: 'ok' },
  { name: 'leader sets a max at the price', state: LEADING, kind: 'autobid', user: 'lead', amount: 1_000, expect: 'bid_too_low' },
];

for (const c of rejectCases) {
  test(`${c.kind} ${c.expect === 'ok' ? 'accepted' : `rejected ${c.expect}`}: ${c.name}`, (t) => {
    const s = auction(c.state);
    const frozen = structuredClone(s);
    const input: BidInput = {
      id: 'req-1',
      kind: c.kind,
      bidderId: c.user,
      bidderName: nameOf(c.user),
      amount: c.amount,
      receivedAt: c.at ?? T0 + 1000,
      receiptNo: 2,
    };
    const r = applyBid(s, input, ctxFor(c.banned ?? []));
    t.deepEqual(s, frozen, 'the input state is not mutated');
    if (c.expect === 'ok') {
      t.is(r.verdict.status, 'accepted');
      t.is(r.verdict.reason, undefined);
      t.true(r.events.length > 0 || c.user === s.leaderId);
      return;
    }
    t.deepEqual(r.verdict, { id: 'req-1', status: 'rejected', reason: c.expect });
    t.deepEqual(r.events, [], 'a rejected request changes nothing public');
    t.deepEqual(r.state, frozen, 'a rejected request leaves the state as it was');
    t.deepEqual(
      r.private,
      c.kind === 'bid'
        ? [{ type: 'bid.ack', userId: c.user, bidId: 'req-1', status: 'rejected', reason: c.expect, amount: c.amount }]
        : [{ type: 'autobid.ack', userId: c.user, autobidId: 'req-1', status: 'rejected', reason: c.expect, maxAmount: c.amount }],
    );
  });
}

test('a user banned after setting an auto-bid gets no further bids from it', (t) => {
  // API.md (chat bans): "that user's chat and bids in this auction are refused".
  const a = run(auction(), [['autobid', 'a', 5_000]], ctxFor());
  t.is(a.state.leaderId, 'a');
  const b = run(a.state, [['bid', 'b', 1_000]], ctxFor(['a']), 2);
  t.deepEqual(verdicts(b), ['ok']);
  t.deepEqual(placed(b.events), [['b', 1_000, false]]);
  t.is(b.state.leaderId, 'b');
  t.is(b.state.currentPrice, 1_000);
});

test('bans are judged at each bid\'s receipt time: a period banned from its start to its end (or lift)', (t) => {
  // 'a' banned from T0 + 2,500 to T0 + 4,500 (receipt times; the steps are 1 s apart from T0 + 1,000).
  const bans = new BanPeriods().add('a', T0 + 2_500, T0 + 4_500).add('b', T0 + 4_000, null);
  const ctx = { ...ctxFor([], ['a', 'b', 'c']), banned: bans };
  const r = run(auction(), [['bid', 'a', 100], ['bid', 'c', 200], ['bid', 'a', 300], ['autobid', 'a', 10_000], ['bid', 'a', 300], ['autobid', 'b', 5_000]], ctx);
  // a at 1,000 (before the ban): ok; at 3,000 and 4,000 (during it): banned; at 5,000 (after): ok. b from 4,000: banned at 6,000.
  t.deepEqual(verdicts(r), ['ok', 'ok', 'banned', 'banned', 'ok', 'banned']);
  // A proxy placed before a ban bids no more while the ban holds its trigger's receipt time.
  const p = run(auction(), [['autobid', 'a', 10_000], ['bid', 'c', 300], ['bid', 'c', 1_000]], { ...ctxFor([], ['a', 'c']), banned: new BanPeriods().add('a', T0 + 2_500, null) });
  t.deepEqual(placed(p.events), [['a', 100, true], ['c', 300, false], ['a', 325, true], ['c', 1_000, false]]);
});

// ---------------------------------------------------------------- acks and seq

test('every request gets exactly one ack, to its sender, with its id and amount', (t) => {
  const r = run(auction(), [
    ['bid', 'a', 100],
    ['autobid', 'b', 2_000],
    ['bid', 'c', 1_000],
    ['autobid', 'b', 5_000],
    ['bid', 'b', 9_000],
    ['autobid', SELLER, 9_999],
  ]);
  t.deepEqual(verdicts(r), ['ok', 'ok', 'ok', 'ok', 'already_leading', 'self_bid']);
  r.results.forEach((res, i) => {
    const input = r.inputs[i]!;
    const acks = res.private.filter((p) => p.type === 'bid.ack' || p.type === 'autobid.ack');
    t.is(acks.length, 1);
    const ack = acks[0]!;
    t.is(ack.userId, input.bidderId);
    if (input.kind === 'bid') t.like(ack, { type: 'bid.ack', bidId: input.id, amount: input.amount, status: res.verdict.status });
    else t.like(ack, { type: 'autobid.ack', autobidId: input.id, maxAmount: input.amount, status: res.verdict.status });
  });
});

test('an accepted bid gets the seq of its bid.placed; seqs are gapless from the state seq', (t) => {
  const r = run(auction({ seq: 7 }), [
    ['bid', 'a', 100],
    ['autobid', 'b', 2_000],
    ['bid', 'c', 50],
    ['bid', 'c', 1_000],
    ['autobid', 'a', 5_000],
  ]);
  t.deepEqual(
    r.events.map((e) => e.seq),
    Array.from({ length: r.events.length }, (_, i) => 8 + i),
  );
  t.is(r.state.seq, 7 + r.events.length);
  const first = r.results[0]!;
  t.is(first.verdict.seq, 8);
  const manual = r.results[3]!;
  const ownEvent = manual.events.find((e) => e.type === 'bid.placed' && e.bidId === r.inputs[3]!.id);
  t.is(manual.verdict.seq, ownEvent?.seq);
  t.is(r.results[2]!.verdict.seq, undefined);
  // Every bid placed by the system for an auto-bidder is auto: true, with its own id.
  const autos = r.events.filter((e) => e.type === 'bid.placed' && e.auto);
  t.true(autos.length >= 4);
  for (const e of autos) if (e.type === 'bid.placed') t.false(r.inputs.some((i) => i.kind === 'bid' && i.id === e.bidId));
  t.is(new Set(r.events.map((e) => (e.type === 'bid.placed' ? e.bidId : `x${e.seq}`))).size, r.events.length);
  // Their ids are UUIDs, as API.md's ids are (version 5: derived, not random), and
  // the same bids give the same ids (replay equals live).
  for (const e of autos) if (e.type === 'bid.placed') t.regex(e.bidId, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.deepEqual(
    run(auction({ seq: 7 }), r.inputs.map((i): Step => [i.kind, i.bidderId, i.amount])).events.map((e) => (e.type === 'bid.placed' ? e.bidId : e.seq)),
    r.events.map((e) => (e.type === 'bid.placed' ? e.bidId : e.seq)),
  );
});

test('bid.placed carries the state after the bid', (t) => {
  const r = run(auction(), [['bid', 'a', 300]]);
  t.deepEqual(r.events, [
    {
      type: 'bid.placed',
      seq: 2,
      at: T0 + 1000,
      bidId: 'bid-1',
      bidderId: 'a',
      bidderName: nameOf('a'),
      amount: 300,
      auto: false,
      currentPrice: 300,
      minNextBid: 325,
      leaderId: 'a',
      bidCount: 1,
      endsAt: T0 + HOUR,
    },
  ]);
  t.deepEqual(r.results[0]!.verdict, { id: 'bid-1', status: 'accepted', seq: 2 });
  t.deepEqual(r.private, [{ type: 'bid.ack', userId: 'a', bidId: 'bid-1', status: 'accepted', amount: 300 }]);
});

// ---------------------------------------------------------------- soft close

const E = T0 + HOUR;
const softCases: { name: string; soft: number; at: number; amount?: number; endsAt: number; extended: boolean }[] = [
  { name: 'bid 10 s before the end', soft: 30, at: E - 10_000, endsAt: E + 20_000, extended: true },
  { name: 'bid 1 ms before the end', soft: 30, at: E - 1, endsAt: E + 29_999, extended: true },
  { name: 'bid exactly softCloseSeconds before the end', soft: 30, at: E - 30_000, endsAt: E, extended: false },
  { name: 'bid just outside the window', soft: 30, at: E - 30_001, endsAt: E, extended: false },
  { name: 'bid long before the end', soft: 30, at: T0, endsAt: E, extended: false },
  { name: 'sudden death (softCloseSeconds 0)', soft: 0, at: E - 1, endsAt: E, extended: false },
  { name: 'rejected bid inside the window', soft: 30, at: E - 1, amount: 50, endsAt: E, extended: false },
  { name: 'long window', soft: 600, at: E - 599_000, endsAt: E + 1_000, extended: true },
];
for (const c of softCases) {
  test(`soft close: ${c.name}`, (t) => {
    const r = run(auction({ softCloseSeconds: c.soft, seq: 4 }), [['bid', 'a', c.amount ?? 100, { at: c.at }]]);
    t.is(r.state.endsAt, c.endsAt);
    const ext = r.events.filter((e) => e.type === 'auction.extended');
    if (!c.extended) {
      t.deepEqual(ext, []);
      return;
    }
    t.deepEqual(r.events.map((e) => [e.type, e.seq]), [
      ['bid.placed', 5],
      ['auction.extended', 6],
    ]);
    t.deepEqual(ext, [{ type: 'auction.extended', seq: 6, at: c.at, endsAt: c.endsAt }]);
    const bp = r.events[0]!;
    t.is(bp.type === 'bid.placed' && bp.endsAt, c.endsAt);
    t.is(r.state.seq, 6);
  });
}

test('soft close: after an extension a bid past the old end is on time, and extends again', (t) => {
  const r = run(auction(), [
    ['bid', 'a', 100, { at: E - 5_000 }],
    ['bid', 'b', 200, { at: E + 10_000 }],
    ['bid', 'a', 300, { at: E + 25_000 }],
    ['bid', 'b', 400, { at: E + 55_000 }],
  ]);
  t.deepEqual(verdicts(r), ['ok', 'ok', 'ok', 'auction_ended']);
  t.is(r.state.endsAt, E + 55_000);
  t.deepEqual(
    r.events.filter((e) => e.type === 'auction.extended').map((e) => e.endsAt),
    [E + 25_000, E + 40_000, E + 55_000],
  );
});

test('soft close: a bid never moves endsAt earlier', (t) => {
  // A later-applied bid with an earlier receipt time (clock skew between edges).
  const r = run(auction(), [
    ['bid', 'a', 100, { at: E - 1_000 }],
    ['bid', 'b', 200, { at: E - 2_000 }],
  ]);
  t.deepEqual(verdicts(r), ['ok', 'ok']);
  t.is(r.state.endsAt, E + 29_000);
  t.is(r.events.filter((e) => e.type === 'auction.extended').length, 1);
});

test('soft close: a proxy battle in the window extends once, after its bids', (t) => {
  const start = run(auction(), [['autobid', 'a', 2_000]]).state;
  const r = run(start, [['autobid', 'b', 1_000, { at: E - 1_000 }]], ctxFor([], ['a', 'b']), 2);
  t.deepEqual(r.events.map((e) => e.type), ['bid.placed', 'bid.placed', 'auction.extended']);
  t.deepEqual(r.events.map((e) => e.seq), [3, 4, 5]);
  t.is(r.state.endsAt, E + 29_000);
});

test('soft close: a leader raising their own max places no bid and does not extend', (t) => {
  const start = run(auction(), [['bid', 'a', 100]]).state;
  const r = run(start, [['autobid', 'a', 5_000, { at: E - 1_000 }]], ctxFor(), 2);
  t.deepEqual(verdicts(r), ['ok']);
  t.deepEqual(r.events, []);
  t.is(r.state.endsAt, E);
});

// ---------------------------------------------------------------- proxy bidding

interface ProxyCase {
  name: string;
  start?: Partial<AuctionState>;
  steps: Step[];
  verdicts?: (RejectReason | 'ok')[];
  placed: [string, number, boolean][];
  leader: string | null;
  price: number;
  notices?: [string, string][];
}

const proxyCases: ProxyCase[] = [
  {
    name: 'a lone auto-bid opens at the starting price',
    steps: [['autobid', 'a', 1_000]],
    placed: [['a', 100, true]],
    leader: 'a',
    price: 100,
  },
  {
    name: 'A max $10 vs B bid $8: A leads at $8.50',
    steps: [
      ['autobid', 'a', 1_000],
      ['bid', 'b', 800],
    ],
    placed: [
      ['a', 100, true],
      ['b', 800, false],
      ['a', 850, true],
    ],
    leader: 'a',
    price: 850,
    notices: [['bid.outbid', 'b']],
  },
  {
    name: 'A max $10 vs B bid $9.80: A leads at its max, $10',
    steps: [
      ['autobid', 'a', 1_000],
      ['bid', 'b', 980],
    ],
    placed: [
      ['a', 100, true],
      ['b', 980, false],
      ['a', 1_000, true],
    ],
    leader: 'a',
    price: 1_000,
    notices: [['bid.outbid', 'b']],
  },
  {
    name: 'A max $10 vs B max $12: B leads at $10.50',
    steps: [
      ['autobid', 'a', 1_000],
      ['autobid', 'b', 1_200],
    ],
    placed: [
      ['a', 100, true],
      ['a', 1_000, true],
      ['b', 1_050, true],
    ],
    leader: 'b',
    price: 1_050,
    notices: [
      ['autobid.exhausted', 'a'],
      ['bid.outbid', 'a'],
    ],
  },
  {
    name: 'A max $12 vs B max $10: A holds at $10.50',
    steps: [
      ['autobid', 'a', 1_200],
      ['autobid', 'b', 1_000],
    ],
    placed: [
      ['a', 100, true],
      ['b', 1_000, true],
      ['a', 1_050, true],
    ],
    leader: 'a',
    price: 1_050,
    notices: [
      ['autobid.exhausted', 'b'],
      ['bid.outbid', 'b'],
    ],
  },
  {
    name: 'A max $10.20 vs B max $20: B leads at $10.70 (the loser max + its increment)',
    steps: [
      ['autobid', 'a', 1_020],
      ['autobid', 'b', 2_000],
    ],
    placed: [
      ['a', 100, true],
      ['a', 1_020, true],
      ['b', 1_070, true],
    ],
    leader: 'b',
    price: 1_070,
  },
  {
    name: 'the increment is taken at the second amount: A $99.50 vs B $150 → $100.50',
    steps: [
      ['autobid', 'a', 9_950],
      ['autobid', 'b', 15_000],
    ],
    placed: [
      ['a', 100, true],
      ['a', 9_950, true],
      ['b', 10_050, true],
    ],
    leader: 'b',
    price: 10_050,
  },
  {
    name: 'equal maxes: the earlier auto-bid wins at that amount',
    steps: [
      ['autobid', 'a', 1_000],
      ['autobid', 'b', 1_000],
    ],
    placed: [
      ['a', 100, true],
      ['b', 1_000, true],
      ['a', 1_000, true],
    ],
    leader: 'a',
    price: 1_000,
    notices: [
      ['autobid.exhausted', 'b'],
      ['bid.outbid', 'b'],
    ],
  },
  {
    name: 'a manual bid equal to an earlier proxy max: the proxy keeps the lead at that amount',
    steps: [
      ['autobid', 'a', 1_000],
      ['bid', 'b', 1_000],
    ],
    placed: [
      ['a', 100, true],
      ['b', 1_000, false],
      ['a', 1_000, true],
    ],
    leader: 'a',
    price: 1_000,
    notices: [['bid.outbid', 'b']],
  },
  {
    name: 'a manual bid equal to a raised max placed before it: the proxy keeps the lead',
    steps: [
      ['autobid', 'a', 1_000],
      ['bid', 'c', 500],
      ['autobid', 'a', 2_000], // a raises while leading: no price change
      ['bid', 'b', 2_000],
    ],
    placed: [
      ['a', 100, true],
      ['c', 500, false],
      ['a', 550, true],
      ['b', 2_000, false],
      ['a', 2_000, true],
    ],
    leader: 'a',
    price: 2_000,
  },
  {
    name: 'a manual bid above the proxy max takes the lead at its amount',
    steps: [
      ['autobid', 'a', 1_000],
      ['bid', 'b', 1_001],
    ],
    placed: [
      ['a', 100, true],
      ['b', 1_001, false],
    ],
    leader: 'b',
    price: 1_001,
    notices: [
      ['autobid.exhausted', 'a'],
      ['bid.outbid', 'a'],
    ],
  },
  {
    name: 'a leader raising their own max does not change the price',
    steps: [
      ['autobid', 'a', 1_000],
      ['bid', 'b', 500],
      ['autobid', 'a', 3_000],
    ],
    verdicts: ['ok', 'ok', 'ok'],
    placed: [
      ['a', 100, true],
      ['b', 500, false],
      ['a', 550, true],
    ],
    leader: 'a',
    price: 550,
    notices: [['bid.outbid', 'b']],
  },
  {
    name: 'a raised max is used against the next challenger',
    steps: [
      ['autobid', 'a', 1_000],
      ['autobid', 'a', 3_000],
      ['autobid', 'b', 2_000],
    ],
    placed: [
      ['a', 100, true],
      ['b', 2_000, true],
      ['a', 2_050, true],
    ],
    leader: 'a',
    price: 2_050,
  },
  {
    name: 'a manual leader may add a max; it then defends the lead',
    steps: [
      ['bid', 'a', 100],
      ['autobid', 'a', 2_000],
      ['bid', 'b', 1_000],
    ],
    placed: [
      ['a', 100, false],
      ['b', 1_000, false],
      ['a', 1_050, true],
    ],
    leader: 'a',
    price: 1_050,
  },
  {
    name: "a leader's auto-bid that does not raise their max is bid_too_low",
    steps: [
      ['autobid', 'a', 1_000],
      ['autobid', 'a', 1_000],
      ['autobid', 'a', 900],
    ],
    verdicts: ['ok', 'bid_too_low', 'bid_too_low'],
    placed: [['a', 100, true]],
    leader: 'a',
    price: 100,
  },
  {
    name: 'an auto-bid below minNextBid for a non-leader is bid_too_low (even if above the price)',
    steps: [
      ['bid', 'a', 1_000],
      ['autobid', 'b', 1_049],
      ['autobid', 'b', 1_050],
    ],
    verdicts: ['ok', 'bid_too_low', 'ok'],
    placed: [
      ['a', 1_000, false],
      ['b', 1_050, true],
    ],
    leader: 'b',
    price: 1_050,
    notices: [['bid.outbid', 'a']],
  },
  {
    name: 'a new proxy over a manual leader bids just minNextBid',
    steps: [
      ['bid', 'a', 1_000],
      ['autobid', 'b', 5_000],
    ],
    placed: [
      ['a', 1_000, false],
      ['b', 1_050, true],
    ],
    leader: 'b',
    price: 1_050,
  },
  {
    name: 'three proxies: the highest wins over the second highest',
    steps: [
      ['autobid', 'a', 1_500],
      ['autobid', 'b', 3_000],
      ['autobid', 'c', 2_000],
    ],
    placed: [
      ['a', 100, true],
      ['a', 1_500, true],
      ['b', 1_550, true],
      ['c', 2_000, true],
      ['b', 2_050, true],
    ],
    leader: 'b',
    price: 2_050,
    notices: [
      ['autobid.exhausted', 'a'],
      ['bid.outbid', 'a'],
      ['autobid.exhausted', 'c'],
      ['bid.outbid', 'c'],
    ],
  },
  {
    name: 'an outbid proxy that raises its max above the leader retakes the lead',
    steps: [
      ['autobid', 'a', 1_000],
      ['autobid', 'b', 2_000],
      ['autobid', 'a', 4_000],
    ],
    placed: [
      ['a', 100, true],
      ['a', 1_000, true],
      ['b', 1_050, true],
      ['b', 2_000, true],
      ['a', 2_050, true],
    ],
    leader: 'a',
    price: 2_050,
    notices: [
      ['autobid.exhausted', 'a'],
      ['bid.outbid', 'a'],
      ['autobid.exhausted', 'b'],
      ['bid.outbid', 'b'],
    ],
  },
  {
    name: 'a raise equal to the leader max loses: the leader max was placed first',
    steps: [
      ['autobid', 'a', 1_000],
      ['autobid', 'b', 2_000],
      ['autobid', 'a', 2_000],
    ],
    placed: [
      ['a', 100, true],
      ['a', 1_000, true],
      ['b', 1_050, true],
      ['a', 2_000, true],
      ['b', 2_000, true],
    ],
    leader: 'b',
    price: 2_000,
  },
  {
    name: 'fixed bidIncrement applies to proxies',
    start: { bidIncrement: 7 },
    steps: [
      ['autobid', 'a', 1_000],
      ['autobid', 'b', 5_000],
    ],
    placed: [
      ['a', 100, true],
      ['a', 1_000, true],
      ['b', 1_007, true],
    ],
    leader: 'b',
    price: 1_007,
  },
];

for (const c of proxyCases) {
  test(`proxy: ${c.name}`, (t) => {
    const users = new Set(c.steps.map((s) => s[1]));
    const r = run(auction(c.start), c.steps, ctxFor([], users));
    if (c.verdicts) t.deepEqual(verdicts(r), c.verdicts);
    else t.true(verdicts(r).every((v) => v === 'ok'), verdicts(r).join());
    t.deepEqual(placed(r.events), c.placed);
    t.is(r.state.leaderId, c.leader);
    t.is(r.state.currentPrice, c.price);
    t.is(r.state.bidCount, c.placed.length);
    if (c.notices) t.deepEqual(notices(r.private), c.notices);
    for (const e of r.events) if (e.type === 'bid.placed') t.is(e.bidderName, nameOf(e.bidderId));
  });
}

test('bid.outbid goes once to the leader who lost the lead, with the new price', (t) => {
  const r = run(auction(), [
    ['bid', 'a', 100],
    ['bid', 'b', 200],
    ['bid', 'a', 300],
  ]);
  t.deepEqual(r.results.map((x) => x.private.filter((p) => p.type === 'bid.outbid')), [
    [],
    [{ type: 'bid.outbid', userId: 'a', currentPrice: 200 }],
    [{ type: 'bid.outbid', userId: 'b', currentPrice: 300 }],
  ]);
});

test('autobid.exhausted is sent once per max, again after a raise', (t) => {
  const r = run(auction(), [
    ['autobid', 'a', 1_000],
    ['bid', 'b', 1_500], // a exhausted
    ['bid', 'c', 2_000], // a told nothing more
    ['autobid', 'a', 3_000], // a back in, leads at 20.50
    ['bid', 'b', 4_000], // a exhausted again
  ]);
  t.deepEqual(
    r.results.map((x) => notices(x.private)),
    [
      [],
      [
        ['autobid.exhausted', 'a'],
        ['bid.outbid', 'a'],
      ],
      [['bid.outbid', 'b']],
      [['bid.outbid', 'c']],
      [
        ['autobid.exhausted', 'a'],
        ['bid.outbid', 'a'],
      ],
    ],
  );
  const ex = r.private.filter((p) => p.type === 'autobid.exhausted');
  t.deepEqual(
    ex.map((p) => (p.type === 'autobid.exhausted' ? p.maxAmount : 0)),
    [1_000, 3_000],
  );
});

// ---------------------------------------------------------------- reserve

test('reserveMet: true without a reserve, else once a leader is at or above it', (t) => {
  t.true(reserveMet(auction()));
  t.false(reserveMet(auction({ reservePrice: 1_000 })));
  t.false(reserveMet(auction({ reservePrice: 100 })), 'no leader yet, even with the price at the reserve');
  t.false(reserveMet(auction({ reservePrice: 1_000, leaderId: 'a', currentPrice: 999 })));
  t.true(reserveMet(auction({ reservePrice: 1_000, leaderId: 'a', currentPrice: 1_000 })));
  t.true(reserveMet(auction({ reservePrice: 1_000, leaderId: 'a', currentPrice: 1_001 })));
});

const reserveCases: { name: string; steps: Step[]; placed: [string, number, boolean][]; leader: string; price: number; met: boolean }[] = [
  {
    name: 'manual bids below the reserve do not meet it',
    steps: [['bid', 'a', 900]],
    placed: [['a', 900, false]],
    leader: 'a',
    price: 900,
    met: false,
  },
  {
    name: 'a manual bid at the reserve meets it',
    steps: [['bid', 'a', 1_000]],
    placed: [['a', 1_000, false]],
    leader: 'a',
    price: 1_000,
    met: true,
  },
  {
    // API.md's formula is the least needed to lead: the reserve does not enter it
    // (and a proxy bidding up to a hidden reserve would show where it is).
    name: 'a lone proxy whose max reaches the reserve opens at the starting price',
    steps: [['autobid', 'a', 5_000]],
    placed: [['a', 100, true]],
    leader: 'a',
    price: 100,
    met: false,
  },
  {
    name: 'a proxy whose max is exactly the reserve opens at the starting price',
    steps: [['autobid', 'a', 1_000]],
    placed: [['a', 100, true]],
    leader: 'a',
    price: 100,
    met: false,
  },
  {
    name: 'a proxy below the reserve stays at the least needed',
    steps: [['autobid', 'a', 999]],
    placed: [['a', 100, true]],
    leader: 'a',
    price: 100,
    met: false,
  },
  {
    name: 'a proxy that takes the lead below the reserve bids one increment over the leader',
    steps: [
      ['bid', 'b', 500],
      ['autobid', 'a', 2_000],
    ],
    placed: [
      ['b', 500, false],
      ['a', 550, true],
    ],
    leader: 'a',
    price: 550,
    met: false,
  },
  {
    // API.md: "A leader may raise their own max at any time without raising the price."
    name: 'a leader below the reserve who sets a max past it keeps the price',
    steps: [
      ['bid', 'a', 500],
      ['autobid', 'a', 2_000],
    ],
    placed: [['a', 500, false]],
    leader: 'a',
    price: 500,
    met: false,
  },
  {
    name: 'a leading proxy that raises its max past the reserve keeps the price',
    steps: [
      ['autobid', 'a', 500],
      ['autobid', 'a', 2_000],
    ],
    placed: [['a', 100, true]],
    leader: 'a',
    price: 100,
    met: false,
  },
  {
    name: 'a challenger past the reserve makes the leading proxy answer above it',
    steps: [
      ['autobid', 'a', 2_000],
      ['bid', 'b', 1_000],
    ],
    placed: [
      ['a', 100, true],
      ['b', 1_000, false],
      ['a', 1_050, true],
    ],
    leader: 'a',
    price: 1_050,
    met: true,
  },
  {
    name: 'a defending proxy above the reserve: the second max + increment',
    steps: [
      ['autobid', 'a', 3_000],
      ['autobid', 'b', 1_500],
    ],
    placed: [
      ['a', 100, true],
      ['b', 1_500, true],
      ['a', 1_550, true],
    ],
    leader: 'a',
    price: 1_550,
    met: true,
  },
];
for (const c of reserveCases) {
  test(`reserve: ${c.name}`, (t) => {
    const r = run(auction({ reservePrice: 1_000 }), c.steps, ctxFor([], ['a', 'b']));
    t.deepEqual(placed(r.events), c.placed);
    t.is(r.state.leaderId, c.leader);
    t.is(r.state.currentPrice, c.price);
    t.is(reserveMet(r.state), c.met);
    const closed = closeAuction(r.state, T0 + HOUR);
    t.truthy(closed);
    t.is(closed!.winnerId, c.met ? c.leader : null);
    t.like(closed!.event, { type: 'auction.ended', winnerId: c.met ? c.leader : null, finalPrice: c.price, reserveMet: c.met });
  });
}

// ---------------------------------------------------------------- start / close

test('startAuction: a scheduled auction goes live for durationSeconds with the next seq', (t) => {
  const s = auction({ status: 'scheduled', endsAt: null, seq: 0, startingPrice: 500, currentPrice: 500 });
  const frozen = structuredClone(s);
  const r = startAuction(s, T0, 120);
  t.deepEqual(s, frozen);
  t.truthy(r);
  t.is(r!.state.status, 'live');
  t.is(r!.state.endsAt, T0 + 120_000);
  t.is(r!.state.seq, 1);
  t.deepEqual(r!.event, { type: 'auction.started', seq: 1, at: T0, startsAt: T0, endsAt: T0 + 120_000, currentPrice: 500, minNextBid: 500 });
  // Bids are then judged against the new endsAt.
  const b = run(r!.state, [
    ['bid', 'a', 500, { at: T0 + 119_999 }],
    ['bid', 'b', 600, { at: T0 + 140_000 }],
    ['bid', 'a', 700, { at: T0 + 180_000 }],
  ]);
  t.deepEqual(verdicts(b), ['ok', 'ok', 'auction_ended']); // extended to +149.999 s, then +170 s
  t.is(b.events[0]!.seq, 2);
});

for (const status of ['live', 'ended', 'cancelled'] as const) {
  test(`startAuction refuses a ${status} auction`, (t) => {
    t.is(startAuction(auction({ status }), T0, 60), null);
  });
}

test('closeAuction: only a live auction, only once its end has come', (t) => {
  const s = run(auction(), [['bid', 'a', 100]]).state;
  t.is(closeAuction(s, E - 1), null, 'not yet due');
  const frozen = structuredClone(s);
  const c = closeAuction(s, E);
  t.deepEqual(s, frozen);
  t.truthy(c);
  t.is(c!.state.status, 'ended');
  t.is(c!.winnerId, 'a');
  t.deepEqual(c!.event, { type: 'auction.ended', seq: s.seq + 1, at: E, winnerId: 'a', finalPrice: 100, reserveMet: true });
  t.is(c!.state.seq, s.seq + 1);
  t.is(closeAuction(c!.state, E + 10_000), null, 'closing twice is a no-op');
  t.deepEqual(verdicts(run(c!.state, [['bid', 'b', 5_000, { at: E - 10 }]])), ['auction_ended']);
});

test('closeAuction: late close (now well past endsAt) still ends it', (t) => {
  const c = closeAuction(auction(), E + HOUR);
  t.truthy(c);
  t.is(c!.winnerId, null);
  t.like(c!.event, { winnerId: null, finalPrice: 100, reserveMet: true });
});

for (const status of ['scheduled', 'cancelled', 'ended'] as const) {
  test(`closeAuction refuses a ${status} auction`, (t) => {
    t.is(closeAuction(auction({ status, endsAt: status === 'scheduled' ? null : E }), E + HOUR), null);
  });
}

test('closeAuction: no bids, no winner', (t) => {
  const c = closeAuction(auction({ reservePrice: 500 }), E);
  t.is(c!.winnerId, null);
  t.like(c!.event, { winnerId: null, finalPrice: 100, reserveMet: false });
});
