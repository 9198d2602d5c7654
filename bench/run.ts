/** `npm run bench -- <name>`: runs one benchmark (or all of them without a name). */
import { benchCatalog } from './catalog.js';
import { benchBids } from './bids.js';
import { benchFanout } from './fanout.js';

const BENCHES: Record<string, () => Promise<void>> = {
  catalog: benchCatalog,
  bids: benchBids,
  fanout: benchFanout,
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in BENCHES));
if (unknown.length) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`);
  process.exit(2);
}
for (const name of wanted.length ? wanted : Object.keys(BENCHES)) {
  await BENCHES[name]!();
}
