/**
 * The load generator, run as its own process: fires POST …/bid at a fixed
 * overall rate (open loop: requests are sent on schedule whether or not earlier
 * ones have answered, up to `connections` in flight) and prints autocannon's
 * result as one JSON line.
 *
 * Input (argv[2], a JSON file): { url, pathPrefix, rate, seconds, connections,
 *   auctions: string[], skew: 'uniform' | '80/20', tokens: string[] }
 */
import fs from 'node:fs';
import autocannon from 'autocannon';

interface Plan {
  url: string;
  pathPrefix: string;
  rate: number;
  seconds: number;
  connections: number;
  auctions: string[];
  skew: 'uniform' | '80/20';
  tokens: string[];
}

const plan = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as Plan;
const next = new Map<string, number>();
let n = 0;
let seed = 42;
const rand = () => {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const hot = Math.max(1, Math.floor(plan.auctions.length * 0.2));
function pickAuction(): string {
  if (plan.skew === '80/20' && plan.auctions.length > 1) {
    return rand() < 0.8 ? plan.auctions[Math.floor(rand() * hot)]! : plan.auctions[hot + Math.floor(rand() * (plan.auctions.length - hot))]!;
  }
  return plan.auctions[Math.floor(rand() * plan.auctions.length)]!;
}

const result = await autocannon({
  url: plan.url,
  connections: plan.connections,
  overallRate: plan.rate,
  duration: plan.seconds,
  requests: [
    {
      method: 'POST',
      setupRequest: (req) => {
        const auction = pickAuction();
        // Mostly rising amounts per auction, so most bids are accepted.
        const amount = (next.get(auction) ?? 10_000) + 100;
        next.set(auction, amount);
        const token = plan.tokens[n++ % plan.tokens.length]!;
        return {
          ...req,
          path: `${plan.pathPrefix}/${auction}/bid`,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ amount }),
        };
      },
    },
  ],
});
process.stdout.write(
  JSON.stringify({
    sent: result.requests.sent,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    durationS: result.duration,
  }) + '\n',
);
