/**
 * Property tests of the bidding engine against API.md's rules.
 *
 * The reference model below is written from API.md, not from the engine: it keeps,
 * for every user, their best standing amount (their highest manual bid or their
 * proxy max, with the receipt order it was placed at) and, after every change,
 * applies the closed-form rule: "the highest max leads at min(highest max,
 * second-highest competing amount + increment); equal amounts: the one placed first
 * wins". It is deliberately NOT a step-by-step simulation where proxies outbid each
 * other one minimal increment at a time, because such a simulation legitimately
 * differs from API.md:
 *  - its loser stops at the last minNextBid it could reach, not at its max, so the
 *    price can come out lower (A max $10.20 vs B max $20: steps end with B at $10.50;
 *    API.md says $10.20 + $0.50 = $10.70);
 *  - the winner can even be the LOWER max: with maxes within one increment of each
 *    other, whoever happens to lead on the increment grid when the other can no
 *    longer reach minNextBid keeps the lead (A max $10.30 vs B max $10.20 can end
 *    with B leading at $10.00 if B bid $10.00 last);
 *  - its increment is taken at each intermediate price, not at the second amount.
 * What the closed form needs on top of API.md's sentence (and what the reference
 * states explicitly): a manual bid is placed at exactly its amount, so a manual
 * leader with no stronger proxy leads at their own amount; a leader raising their own
 * max moves nothing, and the reserve moves no proxy (it only decides the winner).
 */
import test from 'ava';
import fc from 'fast-check';
import { applyBid, type ApplyResult, type AuctionState, type BidInput, type Context, type PublicEvent, type RejectReason } from '../../auction/engine.js';
import { SELLER, T0, auction, nameOf } from './helpers.js';

// ------------------------------------------------------------------ reference

/** API.md's table, as written there (dollars), converted to cents. */
const TABLE_DOLLARS: [below: number, inc: number][] = [
  [1, 0.05],
  [5, 0.25],
  [25, 0.5],
  [100, 1],
  [250, 2.5],
  [500, 5],
  [1000, 10],
  [2500, 25],
  [5000, 50],
];
function refIncrement(cents: number, fixed: number | null): number {
  if (fixed !== null) return fixed;
  const row = TABLE_DOLLARS.find(([below]) => cents / 100 < below);
  return Math.round((row ? row[1] : 100) * 100);
}

interface Standing {
  amount: number;
  order: number;
  proxy: boolean;
}

interface RefAuction {
  sellerId: string;
  startingPrice: number;
  reservePrice: number | null;
  bidIncrement: number | null;
  softCloseSeconds: number;
  banned: ReadonlySet<string>;
  price: number;
  leader: string | null;
  endsAt: number;
  proxies: Map<string, { max: number; order: number }>;
  manual: Map<string, { amount: number; order: number }>;
}

const refMinNext = (r: RefAuction) => (r.leader === null ? r.startingPrice : r.price + refIncrement(r.price, r.bidIncrement));

/** Ranks a before b: the higher amount; equal amounts, the one placed first. */
const before = (a: Standing, b: Standing) => a.amount > b.amount || (a.amount === b.amount && a.order < b.order);

function standing(r: RefAuction, user: string): Standing | null {
  const m = r.manual.get(user);
  const p = r.proxies.get(user);
  const options: Standing[] = [];
  if (m) options.push({ amount: m.amount, order: m.order, proxy: false });
  if (p) options.push({ amount: p.max, order: p.order, proxy: true });
  options.sort((a, b) => (before(a, b) ? -1 : 1));
  return options[0] ?? null;
}

/** After a change: who leads, at what price (API.md's closed form). */
function resolve(r: RefAuction): void {
  const users = new Set([...r.manual.keys(), ...r.proxies.keys()]);
  const ranked = [...users]
    .map((user) => ({ user, s: standing(r, user)! }))
    .sort((a, b) => (before(a.s, b.s) ? -1 : before(b.s, a.s) ? 1 : 0));
  const [w, second] = ranked;
  if (!w) return;
  const competing = second ? Math.min(w.s.amount, second.s.amount + refIncrement(second.s.amount, r.bidIncrement)) : null;
  if (w.user === r.leader) {
    // The leader only bids when a challenger's amount passed the price.
    if (w.s.proxy && second && second.s.amount > r.price) r.price = competing!;
  } else {
    r.leader = w.user;
    r.price = competing ?? r.startingPrice;
  }
}

interface RefRequest {
  kind: 'bid' | 'autobid';
  user: string;
  amount: number;
  at: number;
  order: number;
}

function refApply(r: RefAuction, q: RefRequest): RejectReason | 'accepted' {
  if (q.at >= r.endsAt) return 'auction_ended';
  if (r.banned.has(q.user)) return 'banned';
  if (q.user === r.sellerId) return 'self_bid';
  const isLeader = r.leader === q.user;
  if (q.kind === 'bid') {
    if (isLeader) return 'already_leading';
    if (q.amount < refMinNext(r)) return 'bid_too_low';
  } else if (isLeader) {
    // Not in API.md; the engine's choice: a leader's new max must raise it.
    if (q.amount <= Math.max(r.price, r.proxies.get(q.user)?.max ?? 0)) return 'bid_too_low';
  } else if (q.amount < refMinNext(r)) return 'bid_too_low';

  const was = { price: r.price, leader: r.leader };
  if (q.kind === 'bid') {
    r.manual.set(q.user, { amount: q.amount, order: q.order });
    r.leader = q.user;
    r.price = q.amount;
  } else {
    r.proxies.set(q.user, { max: q.amount, order: q.order });
  }
  resolve(r);
  // Soft close: a bid was placed (the price or the leader moved) within the window.
  const bidPlaced = r.price !== was.price || r.leader !== was.leader;
  if (bidPlaced && r.softCloseSeconds > 0 && r.endsAt - q.at <= r.softCloseSeconds * 1000) {
    r.endsAt = Math.max(r.endsAt, q.at + r.softCloseSeconds * 1000);
  }
  return 'accepted';
}

// ------------------------------------------------------------------ generators

const USERS = ['a', 'b', 'c', 'd'];
const BANNED = 'banned-user';
const DURATION = 60_000;

interface Setup {
  startingPrice: number;
  reservePrice: number | null;
  bidIncrement: number | null;
  softCloseSeconds: number;
}

/** How a request's amount is chosen: absolute, relative to minNextBid, or equal to a standing proxy max. */
type AmountSpec = { mode: 'abs'; value: number } | { mode: 'rel'; value: number } | { mode: 'echo'; pick: number; bump: number };

interface Gen {
  kind: 'bid' | 'autobid';
  user: string;
  amount: AmountSpec;
  gapMs: number;
}

const setupArb: fc.Arbitrary<Setup> = fc.record({
  startingPrice: fc.constantFrom(1, 5, 95, 100, 480, 990, 2_400, 9_900, 24_900, 99_000, 499_000),
  reservePrice: fc.option(fc.constantFrom(100, 1_000, 2_500, 5_000, 10_000, 60_000), { nil: null, freq: 2 }),
  bidIncrement: fc.option(fc.constantFrom(1, 25, 100, 333), { nil: null, freq: 3 }),
  softCloseSeconds: fc.constantFrom(0, 5, 30),
});

const amountArb = (allowProxyTricks: boolean): fc.Arbitrary<AmountSpec> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.record({ mode: fc.constant('abs' as const), value: fc.integer({ min: 1, max: 700_000 }) }) },
    { weight: 6, arbitrary: fc.record({ mode: fc.constant('rel' as const), value: fc.integer({ min: -30, max: 4_000 }) }) },
    ...(allowProxyTricks
      ? [{ weight: 3, arbitrary: fc.record({ mode: fc.constant('echo' as const), pick: fc.nat(), bump: fc.constantFrom(-1, 0, 0, 0, 1) }) }]
      : []),
  );

const genArb = (kinds: ('bid' | 'autobid')[], users: string[]): fc.Arbitrary<Gen> =>
  fc.record({
    kind: fc.constantFrom(...kinds),
    user: fc.constantFrom(...users),
    amount: amountArb(kinds.includes('autobid')),
    gapMs: fc.oneof(fc.integer({ min: 0, max: 3_000 }), fc.constantFrom(0, 1)),
  });

const ALL_USERS = [...USERS, SELLER, BANNED];
const mixedArb = fc.tuple(setupArb, fc.array(genArb(['bid', 'autobid'], ALL_USERS), { minLength: 1, maxLength: 30 }));
const manualArb = fc.tuple(setupArb, fc.array(genArb(['bid'], ALL_USERS), { minLength: 1, maxLength: 30 }));

function startState(setup: Setup): AuctionState {
  return auction({
    startingPrice: setup.startingPrice,
    currentPrice: setup.startingPrice,
    reservePrice: setup.reservePrice,
    bidIncrement: setup.bidIncrement,
    softCloseSeconds: setup.softCloseSeconds,
    endsAt: T0 + DURATION,
    seq: 1,
  });
}

function startRef(setup: Setup): RefAuction {
  return {
    sellerId: SELLER,
    startingPrice: setup.startingPrice,
    reservePrice: setup.reservePrice,
    bidIncrement: setup.bidIncrement,
    softCloseSeconds: setup.softCloseSeconds,
    banned: new Set([BANNED]),
    price: setup.startingPrice,
    leader: null,
    endsAt: T0 + DURATION,
    proxies: new Map(),
    manual: new Map(),
  };
}

const CTX: Context = { banned: new Set([BANNED]), names: new Map([...USERS, SELLER, BANNED].map((u) => [u, nameOf(u)])) };

/** Turns generated requests into concrete inputs, amounts chosen against the reference state. */
function materialize(setup: Setup, gens: Gen[]): { inputs: BidInput[]; ref: RefAuction; refVerdicts: (RejectReason | 'accepted')[]; refAfter: { leader: string | null; price: number; endsAt: number }[] } {
  const ref = startRef(setup);
  const inputs: BidInput[] = [];
  const refVerdicts: (RejectReason | 'accepted')[] = [];
  const refAfter: { leader: string | null; price: number; endsAt: number }[] = [];
  let at = T0 + 1_000;
  gens.forEach((g, i) => {
    at += g.gapMs * 10; // up to 30 s apart: sequences cross the soft-close window and the end
    let amount: number;
    if (g.amount.mode === 'abs') amount = g.amount.value;
    else if (g.amount.mode === 'rel') amount = refMinNext(ref) + g.amount.value;
    else {
      const maxes = [...ref.proxies.values()].map((p) => p.max);
      amount = (maxes.length ? maxes[g.amount.pick % maxes.length]! : refMinNext(ref)) + g.amount.bump;
    }
    amount = Math.max(1, amount);
    const receiptNo = i + 1;
    const input: BidInput = { id: `${g.kind}-${receiptNo}`, kind: g.kind, bidderId: g.user, bidderName: nameOf(g.user), amount, receivedAt: at, receiptNo };
    inputs.push(input);
    refVerdicts.push(refApply(ref, { kind: g.kind, user: g.user, amount, at, order: receiptNo }));
    refAfter.push({ leader: ref.leader, price: ref.price, endsAt: ref.endsAt });
  });
  return { inputs, ref, refVerdicts, refAfter };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function runEngine(setup: Setup, inputs: BidInput[]): { states: AuctionState[]; results: ApplyResult[] } {
  let state = startState(setup);
  const states = [state];
  const results: ApplyResult[] = [];
  for (const input of inputs) {
    const before = structuredClone(state);
    deepFreeze(state); // mutating the input would throw (ESM is strict mode)
    const r = applyBid(state, input, CTX);
    if (JSON.stringify(state) !== JSON.stringify(before)) throw new Error('applyBid mutated its input state');
    results.push(r);
    state = r.state;
    states.push(state);
  }
  return { states, results };
}

const verdictOf = (r: ApplyResult) => (r.verdict.status === 'accepted' ? 'accepted' : r.verdict.reason!);

const describe = (setup: Setup, inputs: BidInput[]) =>
  JSON.stringify({ setup, inputs: inputs.map((i) => [i.kind, i.bidderId, i.amount, i.receivedAt - T0]) });

const RUNS = 400;

// ------------------------------------------------------------------ (a) reference model

test('manual bids only: leader = last accepted, at its amount; accepted iff on time, not seller/banned/leader, >= minNextBid', (t) => {
  fc.assert(
    fc.property(manualArb, ([setup, gens]) => {
      // The simplest model, not even the general reference.
      const { inputs } = materialize(setup, gens);
      const { results, states } = runEngine(setup, inputs);
      let leader: string | null = null;
      let price = setup.startingPrice;
      let endsAt = T0 + DURATION;
      inputs.forEach((q, i) => {
        const minNext = leader === null ? setup.startingPrice : price + refIncrement(price, setup.bidIncrement);
        const expected: RejectReason | 'accepted' =
          q.receivedAt >= endsAt
            ? 'auction_ended'
            : q.bidderId === BANNED
              ? 'banned'
              : q.bidderId === SELLER
                ? 'self_bid'
                : q.bidderId === leader
                  ? 'already_leading'
                  : q.amount < minNext
                    ? 'bid_too_low'
                    : 'accepted';
        if (verdictOf(results[i]!) !== expected) throw new Error(`request ${i}: engine ${verdictOf(results[i]!)}, model ${expected}\n${describe(setup, inputs)}`);
        if (expected === 'accepted') {
          leader = q.bidderId;
          price = q.amount;
          if (endsAt - q.receivedAt < setup.softCloseSeconds * 1000) endsAt = q.receivedAt + setup.softCloseSeconds * 1000;
        }
        const s = states[i + 1]!;
        if (s.leaderId !== leader || s.currentPrice !== price || s.endsAt !== endsAt) throw new Error(`request ${i}: engine ${s.leaderId}@${s.currentPrice} until ${s.endsAt}, model ${leader}@${price} until ${endsAt}\n${describe(setup, inputs)}`);
        // One bid.placed per accepted bid, at its amount, never auto.
        const bp = results[i]!.events.filter((e) => e.type === 'bid.placed');
        const want = expected === 'accepted' ? [[q.bidderId, q.amount, false]] : [];
        if (JSON.stringify(bp.map((e) => e.type === 'bid.placed' && [e.bidderId, e.amount, e.auto])) !== JSON.stringify(want)) throw new Error(`request ${i}: bid.placed ${JSON.stringify(bp)}`);
      });
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

test('bids and auto-bids: verdicts, leader, price and endsAt follow the closed-form reference after every request', (t) => {
  fc.assert(
    fc.property(mixedArb, ([setup, gens]) => {
      const { inputs, refVerdicts, refAfter } = materialize(setup, gens);
      const { results, states } = runEngine(setup, inputs);
      inputs.forEach((_, i) => {
        const got = { verdict: verdictOf(results[i]!), leader: states[i + 1]!.leaderId, price: states[i + 1]!.currentPrice, endsAt: states[i + 1]!.endsAt };
        const want = { verdict: refVerdicts[i], ...refAfter[i]! };
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          throw new Error(`after request ${i}: engine ${JSON.stringify(got)} reference ${JSON.stringify(want)}\n${describe(setup, inputs.slice(0, i + 1))}`);
        }
      });
    }),
    { numRuns: RUNS * 2 },
  );
  t.pass();
});

test('proxy-heavy sequences (auto-bids from two or three users, ties likely) follow the reference', (t) => {
  const arb = fc.tuple(
    setupArb,
    fc.array(
      fc.record({
        kind: fc.constantFrom<'bid' | 'autobid'>('autobid', 'autobid', 'bid'),
        user: fc.constantFrom('a', 'b', 'c'),
        amount: fc.oneof(
          fc.record({ mode: fc.constant('echo' as const), pick: fc.nat(), bump: fc.constantFrom(-1, 0, 0, 1) }),
          fc.record({ mode: fc.constant('rel' as const), value: fc.integer({ min: 0, max: 300 }) }),
        ) as fc.Arbitrary<AmountSpec>,
        gapMs: fc.constant(1),
      }),
      { minLength: 2, maxLength: 20 },
    ),
  );
  fc.assert(
    fc.property(arb, ([setup, gens]) => {
      const { inputs, refVerdicts, refAfter } = materialize(setup, gens);
      const { results, states } = runEngine(setup, inputs);
      inputs.forEach((_, i) => {
        const got = { verdict: verdictOf(results[i]!), leader: states[i + 1]!.leaderId, price: states[i + 1]!.currentPrice };
        const want = { verdict: refVerdicts[i], leader: refAfter[i]!.leader, price: refAfter[i]!.price };
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          throw new Error(`after request ${i}: engine ${JSON.stringify(got)} reference ${JSON.stringify(want)}\n${describe(setup, inputs.slice(0, i + 1))}`);
        }
      });
    }),
    { numRuns: RUNS },
  );
  t.pass();
});

// ------------------------------------------------------------------ (b) invariants

function checkInvariants(setup: Setup, inputs: BidInput[], manualOnly: boolean): void {
  const { states, results } = runEngine(setup, inputs);
  const fail = (msg: string) => {
    throw new Error(`${msg}\n${describe(setup, inputs)}`);
  };
  const events: PublicEvent[] = results.flatMap((r) => r.events);
  // seq: gapless, one per public event, continuing from the state's.
  events.forEach((e, i) => {
    if (e.seq !== 2 + i) fail(`event ${i} has seq ${e.seq}`);
  });
  if (states.at(-1)!.seq !== 1 + events.length) fail('state seq does not match the events');
  // bid.placed: prices never decrease (strictly increase with manual bids only); each is the state after it.
  let lastPrice = -1;
  let bids = 0;
  const manualIds = new Set(inputs.filter((i) => i.kind === 'bid').map((i) => i.id));
  for (const e of events) {
    if (e.type !== 'bid.placed') continue;
    bids += 1;
    if (e.amount < lastPrice || (manualOnly && e.amount === lastPrice)) fail(`bid.placed price went ${lastPrice} → ${e.amount}`);
    lastPrice = e.amount;
    if (e.currentPrice !== e.amount || e.leaderId !== e.bidderId || e.bidCount !== bids) fail(`bid.placed inconsistent: ${JSON.stringify(e)}`);
    if (e.minNextBid !== e.amount + refIncrement(e.amount, setup.bidIncrement)) fail(`bid.placed minNextBid ${e.minNextBid} after ${e.amount}`);
    // Manual bids are auto: false; every bid the system makes for an auto-bidder is auto: true.
    if (e.auto === manualIds.has(e.bidId)) fail(`bid ${e.bidId} auto=${e.auto}`);
    if (e.bidderName !== nameOf(e.bidderId)) fail(`bid ${e.bidId} by ${e.bidderId} named ${e.bidderName}`);
  }
  if (new Set(events.map((e) => (e.type === 'bid.placed' ? e.bidId : `ext-${e.seq}`))).size !== events.length) fail('duplicate bidId');
  // From the accepted requests and the notices sent (not the engine's state): each
  // user's proxy max, and the max each was last told was exhausted.
  const proxyMax = new Map<string, number>();
  const told = new Map<string, number>();
  results.forEach((r, i) => {
    const q = inputs[i]!;
    const prev = states[i]!;
    const s = states[i + 1]!;
    if (s.bidCount !== prev.bidCount + r.events.filter((e) => e.type === 'bid.placed').length) fail(`bidCount at ${i}`);
    if (s.leaderId !== null) {
      if (s.currentPrice < setup.startingPrice) fail(`price ${s.currentPrice} below the starting price`);
      if (s.leaderId === SELLER || s.leaderId === BANNED) fail(`leader ${s.leaderId}`);
    }
    if (s.currentPrice < prev.currentPrice) fail('price went down');
    if (s.endsAt! < prev.endsAt!) fail('endsAt went down');
    // Exactly one ack, for this request.
    const acks = r.private.filter((p) => p.type === 'bid.ack' || p.type === 'autobid.ack');
    if (acks.length !== 1) fail(`request ${i} got ${acks.length} acks`);
    const ack = acks[0]!;
    const idOk = ack.type === 'bid.ack' ? q.kind === 'bid' && ack.bidId === q.id && ack.amount === q.amount : q.kind === 'autobid' && ack.autobidId === q.id && ack.maxAmount === q.amount;
    if (!idOk || ack.userId !== q.bidderId || ack.status !== r.verdict.status || ack.reason !== r.verdict.reason || r.verdict.id !== q.id) fail(`bad ack ${JSON.stringify(ack)} for ${JSON.stringify(q)}`);
    if (r.verdict.status === 'rejected') {
      if (r.events.length || r.private.length !== 1 || JSON.stringify(s) !== JSON.stringify(prev)) fail(`rejected request ${i} changed something`);
      return;
    }
    if (q.kind === 'bid') {
      const own = r.events.find((e) => e.type === 'bid.placed' && e.bidId === q.id);
      if (!own || own.seq !== r.verdict.seq) fail(`accepted bid ${q.id} without its bid.placed seq`);
    } else if (r.verdict.seq !== undefined) fail('an auto-bid verdict carries a seq');
    // auction.extended: last, only after a bid, with the new endsAt; endsAt moves only then.
    const ext = r.events.filter((e) => e.type === 'auction.extended');
    if (ext.length > 1 || (ext.length === 1 && (r.events.at(-1) !== ext[0] || ext[0]!.endsAt !== s.endsAt || r.events.length < 2))) fail(`bad auction.extended at ${i}`);
    if ((s.endsAt !== prev.endsAt) !== (ext.length === 1)) fail(`endsAt moved without auction.extended at ${i}`);
    if (setup.softCloseSeconds === 0 && ext.length) fail('sudden death extended');
    // Private notices: once per user and type; outbid = everyone who led during the change but not after.
    const seen = new Set<string>();
    for (const p of r.private) {
      const k = `${p.type}:${p.userId}`;
      if (seen.has(k)) fail(`${k} twice at ${i}`);
      seen.add(k);
    }
    const ledDuring = new Set<string>([...(prev.leaderId ? [prev.leaderId] : []), ...r.events.flatMap((e) => (e.type === 'bid.placed' ? [e.leaderId] : []))]);
    ledDuring.delete(s.leaderId!);
    const outbid = new Set(r.private.filter((p) => p.type === 'bid.outbid').map((p) => p.userId));
    if ([...ledDuring].sort().join() !== [...outbid].sort().join()) fail(`outbid sent to ${[...outbid]} but lost the lead: ${[...ledDuring]} at ${i}`);
    for (const p of r.private) if (p.type === 'bid.outbid' && p.currentPrice !== s.currentPrice) fail('outbid with a stale price');
    // Auto bids bid the least needed: each one is the opening bid at the starting
    // price, a proxy going to its whole max (the loser's last word), one increment
    // over the bid before it (capped at the max), the same amount taken back by an
    // earlier max.
    let price = prev.currentPrice;
    let holder = prev.leaderId;
    for (const e of r.events) {
      if (e.type !== 'bid.placed') continue;
      if (e.auto) {
        const max = s.proxies.find((x) => x.userId === e.bidderId)?.maxAmount ?? -1;
        const step = holder === null ? setup.startingPrice : Math.min(max, price + refIncrement(price, setup.bidIncrement));
        const ok = e.amount === step || e.amount === max || (e.amount === price && holder !== e.bidderId);
        if (!ok) fail(`auto bid ${e.bidderId} ${e.amount} after ${holder}@${price} (max ${max}) at ${i}`);
      }
      price = e.amount;
      holder = e.bidderId;
    }
    for (const p of r.private) {
      if (p.type !== 'autobid.exhausted') continue;
      const proxy = s.proxies.find((x) => x.userId === p.userId);
      if (!proxy || proxy.maxAmount !== p.maxAmount || p.userId === s.leaderId) fail(`bad autobid.exhausted ${JSON.stringify(p)}`);
      const was = prev.proxies.find((x) => x.userId === p.userId);
      if (was?.exhausted && was.maxAmount === p.maxAmount) fail(`autobid.exhausted repeated for ${p.userId} at ${i}`);
      told.set(p.userId, p.maxAmount);
    }
    // And it is sent: every proxy left behind by its max (not leading, max below
    // minNextBid) has been told, for that max.
    if (q.kind === 'autobid') proxyMax.set(q.bidderId, q.amount);
    const minNext = s.leaderId === null ? setup.startingPrice : s.currentPrice + refIncrement(s.currentPrice, setup.bidIncrement);
    for (const [user, max] of proxyMax) {
      if (user !== s.leaderId && max < minNext && told.get(user) !== max) fail(`${user}'s max ${max} is behind (minNextBid ${minNext}) and autobid.exhausted was not sent, at ${i}`);
    }
  });
}

test('invariants over random bids and auto-bids (seller and banned users included)', (t) => {
  fc.assert(
    fc.property(mixedArb, ([setup, gens]) => checkInvariants(setup, materialize(setup, gens).inputs, false)),
    { numRuns: RUNS },
  );
  t.pass();
});

test('invariants over random manual bids: bid.placed prices strictly increase', (t) => {
  fc.assert(
    fc.property(manualArb, ([setup, gens]) => checkInvariants(setup, materialize(setup, gens).inputs, true)),
    { numRuns: RUNS / 2 },
  );
  t.pass();
});

test('determinism: replaying the same inputs gives identical outputs', (t) => {
  fc.assert(
    fc.property(mixedArb, ([setup, gens]) => {
      const { inputs } = materialize(setup, gens);
      const once = runEngine(setup, inputs);
      const twice = runEngine(setup, structuredClone(inputs));
      if (JSON.stringify(once) !== JSON.stringify(twice)) throw new Error(`replay differs\n${describe(setup, inputs)}`);
      // Replay from any intermediate state gives the same tail (the worker resumes from a stored state).
      const cut = Math.floor(inputs.length / 2);
      let state = structuredClone(once.states[cut]!);
      for (let i = cut; i < inputs.length; i++) {
        const r = applyBid(state, inputs[i]!, CTX);
        if (JSON.stringify(r) !== JSON.stringify(once.results[i])) throw new Error(`resume at ${cut} differs at ${i}\n${describe(setup, inputs)}`);
        state = r.state;
      }
      // And from the state as a worker reloads it, at every point: proxies in the
      // order placed (placed_order), names only of proxy owners and of the bids to apply.
      const same = (x: ApplyResult) => JSON.stringify({ ...x, state: { ...x.state, proxies: [...x.state.proxies].sort((a, b) => a.placedOrder - b.placedOrder) } });
      for (let from = 1; from < inputs.length; from++) {
        state = structuredClone(once.states[from]!);
        state.proxies.sort((a, b) => a.placedOrder - b.placedOrder);
        const names = new Map([...state.proxies.map((p) => p.userId), ...inputs.slice(from).map((q) => q.bidderId)].map((u) => [u, nameOf(u)]));
        for (let i = from; i < inputs.length; i++) {
          const r = applyBid(state, inputs[i]!, { banned: CTX.banned, names });
          if (same(r) !== same(once.results[i]!)) throw new Error(`resume from the stored state at ${from} differs at ${i}\n${describe(setup, inputs)}`);
          state = r.state;
        }
      }
    }),
    { numRuns: RUNS / 2 },
  );
  t.pass();
});
