import test from 'ava';
import { increment } from '../../auction/increments.js';

// API.md "Bidding rules": price in dollars → increment. Every row is checked at the
// first cent of its band, one cent before its upper bound, and at the bound itself
// (which belongs to the next band).
const BANDS: { fromCents: number; belowCents: number | null; inc: number }[] = [
  { fromCents: 0, belowCents: 100, inc: 5 },
  { fromCents: 100, belowCents: 500, inc: 25 },
  { fromCents: 500, belowCents: 2_500, inc: 50 },
  { fromCents: 2_500, belowCents: 10_000, inc: 100 },
  { fromCents: 10_000, belowCents: 25_000, inc: 250 },
  { fromCents: 25_000, belowCents: 50_000, inc: 500 },
  { fromCents: 50_000, belowCents: 100_000, inc: 1_000 },
  { fromCents: 100_000, belowCents: 250_000, inc: 2_500 },
  { fromCents: 250_000, belowCents: 500_000, inc: 5_000 },
  { fromCents: 500_000, belowCents: null, inc: 10_000 },
];

const cases: [price: number, expected: number][] = [];
for (const b of BANDS) {
  cases.push([b.fromCents, b.inc], [b.fromCents + 1, b.inc]);
  if (b.belowCents !== null) cases.push([b.belowCents - 1, b.inc]);
}
cases.push([1, 5], [99, 5], [100, 25], [499, 25], [500, 50], [2_499, 50], [2_500, 100], [9_999, 100], [10_000, 250]);
cases.push([24_999, 250], [25_000, 500], [49_999, 500], [50_000, 1_000], [99_999, 1_000], [100_000, 2_500]);
cases.push([249_999, 2_500], [250_000, 5_000], [499_999, 5_000], [500_000, 10_000], [100_000_000_000, 10_000]);

for (const [price, expected] of new Map(cases)) {
  test(`increment(${price}¢) = ${expected}¢`, (t) => {
    t.is(increment(price), expected);
    t.is(increment(price, null), expected);
  });
}

test('the table is monotone: price + increment never decreases as the price rises', (t) => {
  let prev = -Infinity;
  for (let p = 0; p <= 600_000; p += 1) {
    const next = p + increment(p);
    if (next < prev) t.fail(`price ${p}: ${next} < ${prev}`);
    prev = next;
  }
  t.pass();
});

const fixed: [price: number, fixed: number][] = [
  [0, 1],
  [99, 1],
  [100, 7],
  [2_500, 10],
  [10_000, 1],
  [500_000, 300],
  [100_000_000_000, 12_345],
];
for (const [price, f] of fixed) {
  test(`a fixed bidIncrement of ${f}¢ replaces the table at ${price}¢`, (t) => {
    t.is(increment(price, f), f);
  });
}
