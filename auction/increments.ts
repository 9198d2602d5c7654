/**
 * The bid increment table of API.md, in cents: below each price (in dollars) the
 * increment that applies. A fixed `bidIncrement` on the auction replaces it.
 */
const TABLE: readonly [belowCents: number, incrementCents: number][] = [
  [100, 5],
  [500, 25],
  [2_500, 50],
  [10_000, 100],
  [25_000, 250],
  [50_000, 500],
  [100_000, 1_000],
  [250_000, 2_500],
  [500_000, 5_000],
];
const TOP_INCREMENT = 10_000;

/** The increment over `priceCents`: the auction's own, else the table's. */
export function increment(priceCents: number, fixed: number | null = null): number {
  if (fixed !== null) return fixed;
  for (const [below, inc] of TABLE) if (priceCents < below) return inc;
  return TOP_INCREMENT;
}
