/**
 * `npm run seed`: fills a development database with a category tree, sellers,
 * buyers and a few hundred products with variants, so a new user sees a working
 * catalog at once. Deterministic (fixed PRNG seed) and idempotent: a database that
 * already has the seed is left alone. Every seeded account's password is
 * `blytz-dev-password` (sellerN@seed.blytz.dev, buyerN@seed.blytz.dev).
 */
import { getConfigOrExit } from '../lib/env.js';
import { createDb } from '../db/client.js';
import { hashPassword } from '../edge/http/services/auth.js';

const config = getConfigOrExit('seed');
if (config.env === 'production') {
  console.error('seed: refusing to seed a production database');
  process.exit(2);
}

const PASSWORD = 'blytz-dev-password';
const PRODUCTS = Number(process.env.SEED_PRODUCTS ?? 300);
// "abc" made NaN, and NaN products: a seed of none that said so as "NaN products".
if (!Number.isSafeInteger(PRODUCTS) || PRODUCTS < 1 || PRODUCTS > 100_000) {
  console.error(`seed: SEED_PRODUCTS must be a whole number from 1 to 100000, not ${JSON.stringify(process.env.SEED_PRODUCTS)}`);
  process.exit(2);
}

// mulberry32: a tiny deterministic PRNG.
function prng(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(20261125);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));

const TREE: Record<string, Record<string, string[]>> = {
  Electronics: { Phones: ['smartphone', 'flip phone'], Cameras: ['rangefinder camera', 'mirrorless camera', 'film camera', 'lens'], Audio: ['turntable', 'headphones', 'tube amplifier', 'speaker'] },
  Collectibles: { 'Trading Cards': ['rookie card', 'holo card', 'booster box'], Coins: ['silver dollar', 'gold sovereign', 'proof set'], Comics: ['first issue comic', 'graphic novel'] },
  Fashion: { Sneakers: ['retro sneakers', 'high-top sneakers'], Watches: ['chronograph watch', 'dive watch', 'pocket watch'], Handbags: ['leather handbag', 'tote bag'] },
  Home: { Furniture: ['armchair', 'side table', 'lamp'], Kitchen: ['cast iron skillet', 'espresso machine', 'knife set'] },
  Toys: { 'Building Sets': ['brick set', 'starship set'], 'Action Figures': ['action figure', 'figure two-pack'] },
};
const ADJECTIVES = ['Vintage', 'Rare', 'Mint', 'Limited edition', 'Signed', 'Restored', 'Classic', 'Sealed', 'Hand-made', 'Graded'];
const DETAILS = ['from a private collection', 'with original box', 'in excellent condition', 'fully working', 'with certificate of authenticity', 'lightly used', 'never opened'];
const COLORS = ['Black', 'Silver', 'Walnut', 'Red', 'Blue', 'Gold', 'Green'];

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');

const db = createDb(config, { poolMax: 2 });
try {
  if (await db('categories').where({ slug: 'electronics' }).first()) {
    console.log('seed: this database is already seeded; nothing to do');
  } else {
    const hash = await hashPassword(config, PASSWORD);
    await db.transaction(async (trx) => {
      const leaves: { id: string; nouns: string[] }[] = [];
      for (const [top, children] of Object.entries(TREE)) {
        const [parent] = await trx('categories').insert({ name: top, slug: slug(top) }).returning('id');
        for (const [child, nouns] of Object.entries(children)) {
          const [row] = await trx('categories').insert({ name: child, slug: slug(child), parent_id: parent.id }).returning('id');
          leaves.push({ id: row.id, nouns });
        }
      }
      const users = (role: 'seller' | 'buyer', n: number) =>
        Array.from({ length: n }, (_, i) => ({ email: `${role}${i + 1}@seed.blytz.dev`, name: `${role === 'seller' ? 'Seller' : 'Buyer'} ${i + 1}`, role, password_hash: hash }));
      const sellers = await trx('users').insert(users('seller', 5)).returning('id');
      await trx('users').insert(users('buyer', 10));

      let skuN = 0;
      for (let i = 0; i < PRODUCTS; i++) {
        const leaf = pick(leaves);
        const noun = pick(leaf.nouns);
        const title = `${pick(ADJECTIVES)} ${noun}`;
        const price = int(5, 2_000) * 100 + pick([0, 50, 99]);
        const [product] = await trx('products')
          .insert({
            seller_id: pick(sellers).id,
            category_id: leaf.id,
            title,
            description: `A ${title.toLowerCase()} ${pick(DETAILS)}. Ships within ${int(1, 5)} days.`,
            price,
            currency: 'usd',
            images: JSON.stringify([`https://images.blytz.dev/seed/${i + 1}.jpg`]),
            // Spread creation times over the last 30 days, oldest first.
            created_at: new Date(Date.now() - (PRODUCTS - i) * 86_400_000 * (30 / PRODUCTS)),
          })
          .returning('id');
        const variants = int(0, 3);
        const colors = [...COLORS].sort(() => rand() - 0.5).slice(0, variants);
        if (colors.length) {
          await trx('variants').insert(
            colors.map((color) => ({ product_id: product.id, sku: `SEED-${String(++skuN).padStart(5, '0')}`, name: color, price: price + int(0, 20) * 100, stock: int(0, 25) })),
          );
        }
      }
    });
    console.log(`seed: ${Object.keys(TREE).length} top categories, 5 sellers, 10 buyers, ${PRODUCTS} products (password for all: ${PASSWORD})`);
  }
} catch (err) {
  console.error(`seed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
