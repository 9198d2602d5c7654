import test from 'ava';
import { randomUUID } from 'node:crypto';
import { createAdmin, registerUser, useSystem } from '../helpers/system.js';
import { makeCategory, makeProduct } from '../helpers/catalog.js';
import type { ApiResponse } from '../helpers/http.js';

const system = useSystem(test);
const P = '/api/v1/products';

test('categories list as a tree', async (t) => {
  const sys = system();
  const parent = await makeCategory(sys);
  const child = await makeCategory(sys, parent.id);
  const res = await sys.api.get('/api/v1/categories');
  t.is(res.status, 200);
  const found = res.body.data.find((c: { id: string }) => c.id === child.id);
  t.deepEqual(Object.keys(found).sort(), ['id', 'name', 'parentId', 'slug']);
  t.is(found.parentId, parent.id);
  t.is(res.body.data.find((c: { id: string }) => c.id === parent.id).parentId, null);
});

test('a seller creates a product with variants; anyone reads it', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const sku = `SKU-${randomUUID().slice(0, 8)}`;
  const res = await sys.api.post(
    P,
    {
      title: 'Vintage camera',
      description: 'A 1970s rangefinder.\n\tLens: 50 mm\r\nCase included',
      categoryId: cat.id,
      price: 12500,
      currency: 'usd',
      images: ['https://img.example.com/cam.jpg'],
      variants: [{ sku, name: 'Black', price: 12500, stock: 2 }],
    },
    { token: seller.accessToken },
  );
  t.is(res.status, 201);
  t.deepEqual(Object.keys(res.body).sort(), ['categoryId', 'createdAt', 'currency', 'description', 'id', 'images', 'price', 'sellerId', 'title', 'updatedAt', 'variants']);
  t.is(res.body.sellerId, seller.id);
  t.is(res.body.description, 'A 1970s rangefinder.\n\tLens: 50 mm\r\nCase included', 'line breaks and tabs kept');
  t.is(res.body.price, 12500);
  t.is(res.body.variants[0].sku, sku);
  t.is(res.body.variants[0].stock, 2);
  const got = await sys.api.get(`${P}/${res.body.id}`);
  t.is(got.status, 200);
  t.deepEqual(got.body, res.body);
});

test('only sellers and admins create; only the owner or an admin changes or deletes', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const other = await registerUser(sys, 'seller');
  const buyer = await registerUser(sys, 'buyer');
  const admin = await createAdmin(sys);
  const cat = await makeCategory(sys);
  const body = { title: 'Lamp', categoryId: cat.id, price: 500 };

  t.is((await sys.api.post(P, body)).status, 401);
  const asBuyer = await sys.api.post(P, body, { token: buyer.accessToken });
  t.is(asBuyer.status, 403);
  t.is(asBuyer.body.error.code, 'forbidden');
  t.is((await sys.api.post(P, body, { token: admin.accessToken })).status, 201);

  const product = await makeProduct(sys, seller, body);
  const foreign = await sys.api.put(`${P}/${product.id}`, { title: 'Mine now' }, { token: other.accessToken });
  t.is(foreign.status, 403);
  t.is(foreign.body.error.code, 'forbidden');
  t.is((await sys.api.del(`${P}/${product.id}`, { token: other.accessToken })).status, 403);
  t.is((await sys.api.get(`${P}/${product.id}`)).body.title, 'Lamp', 'unchanged');

  const byAdmin = await sys.api.put(`${P}/${product.id}`, { title: 'Lamp (moderated)' }, { token: admin.accessToken });
  t.is(byAdmin.status, 200);
  t.is(byAdmin.body.title, 'Lamp (moderated)');
  const byOwner = await sys.api.put(`${P}/${product.id}`, { price: 750, description: 'brass' }, { token: seller.accessToken });
  t.is(byOwner.status, 200);
  t.is(byOwner.body.price, 750);
  t.is(byOwner.body.title, 'Lamp (moderated)');

  t.is((await sys.api.del(`${P}/${product.id}`, { token: seller.accessToken })).status, 204);
  const gone = await sys.api.get(`${P}/${product.id}`);
  t.is(gone.status, 404);
  t.is(gone.body.error.code, 'not_found');
  t.is((await sys.api.del(`${P}/${product.id}`, { token: seller.accessToken })).status, 404);
  t.is((await sys.api.put(`${P}/${randomUUID()}`, { title: 'x' }, { token: seller.accessToken })).status, 404);
});

test('a product in a live or scheduled auction cannot be deleted (409)', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const product = await makeProduct(sys, seller, { categoryId: cat.id });
  const [auction] = await sys.db('auctions')
    .insert({ seller_id: seller.id, product_id: product.id, title: 'Live now', status: 'live', starting_price: 100, current_price: 100, duration_seconds: 60 })
    .returning('id');
  const res = await sys.api.del(`${P}/${product.id}`, { token: seller.accessToken });
  t.is(res.status, 409);
  t.is(res.body.error.code, 'conflict');
  t.is((await sys.api.get(`${P}/${product.id}`)).status, 200);
  await sys.db('auctions').where({ id: auction.id }).update({ status: 'ended' });
  t.is((await sys.api.del(`${P}/${product.id}`, { token: seller.accessToken })).status, 204);
});

test('variants: unique SKUs (409), full-list replace, SKU swap, foreign variant id refused', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const tag = randomUUID().slice(0, 8);
  const p = await makeProduct(sys, seller, {
    categoryId: cat.id,
    variants: [
      { sku: `A-${tag}`, name: 'A', price: 100, stock: 1 },
      { sku: `B-${tag}`, name: 'B', price: 200, stock: 2 },
    ],
  });
  const dup = await sys.api.post(P, { title: 'x', categoryId: cat.id, price: 1, variants: [{ sku: `A-${tag}`, name: 'A', price: 1, stock: 0 }] }, { token: seller.accessToken });
  t.is(dup.status, 409);
  t.is(dup.body.error.code, 'conflict');

  const [a, b] = p.variants;
  const swapped = await sys.api.put(
    `${P}/${p.id}`,
    { variants: [{ id: a.id, sku: b.sku, name: 'A', price: 100, stock: 5 }, { id: b.id, sku: a.sku, name: 'B', price: 200, stock: 0 }] },
    { token: seller.accessToken },
  );
  t.is(swapped.status, 200, swapped.text);
  t.is(swapped.body.variants.find((v: { id: string }) => v.id === a.id).sku, b.sku);
  t.is(swapped.body.variants.find((v: { id: string }) => v.id === a.id).stock, 5);

  const replaced = await sys.api.put(`${P}/${p.id}`, { variants: [{ id: a.id, sku: `A2-${tag}`, name: 'A', price: 100, stock: 5 }, { sku: `C-${tag}`, name: 'C', price: 300, stock: 3 }] }, { token: seller.accessToken });
  t.is(replaced.status, 200);
  t.deepEqual(replaced.body.variants.map((v: { sku: string }) => v.sku).sort(), [`A2-${tag}`, `C-${tag}`]);

  const other = await makeProduct(sys, seller, { categoryId: cat.id, variants: [{ sku: `D-${tag}`, name: 'D', price: 1, stock: 1 }] });
  const foreign = await sys.api.put(`${P}/${p.id}`, { variants: [{ id: other.variants[0].id, sku: `E-${tag}`, name: 'E', price: 1, stock: 1 }] }, { token: seller.accessToken });
  t.is(foreign.status, 400);
  t.is((await sys.api.get(`${P}/${other.id}`)).body.variants[0].sku, `D-${tag}`, 'nothing changed');
});

test('bad input is a 400 and changes nothing', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const good = { title: 'Ok', categoryId: cat.id, price: 100 };
  const bad: Record<string, unknown>[] = [
    { ...good, sellerId: seller.id },
    { ...good, price: -1 },
    { ...good, price: 0 },
    { ...good, price: 10.5 },
    { ...good, price: '100' },
    { ...good, price: 100_000_000_001 },
    { ...good, title: 'x'.repeat(201) },
    { ...good, title: '' },
    { ...good, categoryId: randomUUID() },
    { ...good, categoryId: 'not-a-uuid' },
    { ...good, currency: 'USD' },
    { ...good, currency: 'xyz' },
    { ...good, currency: 'abc' },
    { ...good, images: ['javascript:alert(1)'] },
    { ...good, variants: [{ sku: 'ok-sku', name: 'v', price: 1, stock: -1 }] },
    { ...good, variants: [{ sku: 'dup', name: 'v', price: 1, stock: 1 }, { sku: 'dup', name: 'w', price: 1, stock: 1 }] },
    { title: 'no price', categoryId: cat.id },
  ];
  for (const body of bad) {
    const res = await sys.api.post(P, body, { token: seller.accessToken });
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.error.code, 'validation_failed');
  }
  t.deepEqual(await sys.db('products').where({ seller_id: seller.id }), []);
  const p = await makeProduct(sys, seller, good);
  const yen = await sys.api.post(P, { ...good, currency: 'jpy' }, { token: seller.accessToken });
  t.is(yen.status, 201, 'another ISO currency');
  t.is(yen.body.currency, 'jpy');
  t.is((await sys.api.put(`${P}/${p.id}`, {}, { token: seller.accessToken })).status, 400);
  t.is((await sys.api.put(`${P}/${p.id}`, { price: -5 }, { token: seller.accessToken })).status, 400);
  t.is((await sys.api.put(`${P}/${p.id}`, { sellerId: randomUUID() }, { token: seller.accessToken })).status, 400);
  t.is((await sys.api.get(`${P}/${p.id}`)).body.price, 100);
  for (const q of ['limit=0', 'limit=101', 'limit=abc', 'cursor=%%%', `cursor=${Buffer.from('{"kind":"recent"}').toString('base64url')}`, 'minPrice=-1', 'minPrice=10&maxPrice=5', 'categoryId=nope', 'color=red']) {
    const res = await sys.api.get(`${P}?${q}`);
    t.is(res.status, 400, q);
    t.is(res.body.error.code, 'validation_failed');
  }
  t.is((await sys.api.get(`${P}/not-a-uuid`)).status, 400);
});

test('filters: category, seller, price range', async (t) => {
  const sys = system();
  const s1 = await registerUser(sys, 'seller');
  const s2 = await registerUser(sys, 'seller');
  const c1 = await makeCategory(sys);
  const c2 = await makeCategory(sys);
  const a = await makeProduct(sys, s1, { categoryId: c1.id, price: 100 });
  const b = await makeProduct(sys, s1, { categoryId: c2.id, price: 5000 });
  const c = await makeProduct(sys, s2, { categoryId: c1.id, price: 900 });
  const ids = async (q: string) => (await sys.api.get(`${P}?${q}&limit=100`)).body.data.map((p: { id: string }) => p.id);
  t.deepEqual(await ids(`sellerId=${s1.id}`), [b.id, a.id], 'newest first');
  t.deepEqual(await ids(`categoryId=${c1.id}`), [c.id, a.id]);
  t.deepEqual(await ids(`categoryId=${c1.id}&minPrice=500`), [c.id]);
  t.deepEqual(await ids(`sellerId=${s1.id}&maxPrice=100`), [a.id]);
  t.deepEqual(await ids(`sellerId=${s2.id}&minPrice=900&maxPrice=900`), [c.id]);
});

test('search: ranked full text; a title match outranks a description match', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const word = `zyx${randomUUID().replace(/[^a-z]/g, '').slice(0, 8)}`;
  const inDescription = await makeProduct(sys, seller, { categoryId: cat.id, title: 'Oak table', description: `Made of ${word} wood, lovely` });
  const inTitle = await makeProduct(sys, seller, { categoryId: cat.id, title: `${word} chair`, description: 'A chair' });
  await makeProduct(sys, seller, { categoryId: cat.id, title: 'Unrelated', description: 'nothing here' });
  const res = await sys.api.get(`${P}?q=${word}`);
  t.is(res.status, 200);
  t.deepEqual(res.body.data.map((p: { id: string }) => p.id), [inTitle.id, inDescription.id]);
  // Stemming: "chairs" finds "chair"; websearch syntax: a quoted phrase, a minus.
  const stem = await sys.api.get(`${P}?q=${encodeURIComponent(`${word} chairs`)}`);
  t.deepEqual(stem.body.data.map((p: { id: string }) => p.id), [inTitle.id]);
  const minus = await sys.api.get(`${P}?q=${encodeURIComponent(`${word} -chair`)}`);
  t.deepEqual(minus.body.data.map((p: { id: string }) => p.id), [inDescription.id]);
  const junk = await sys.api.get(`${P}?q=${encodeURIComponent(`"&|!():*'`)}`);
  t.is(junk.status, 200, 'any text is a valid query');
});

async function walk(sys: ReturnType<typeof system>, query: string, limit: number, between: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const res: ApiResponse = await sys.api.get(`${P}?${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    if (res.status !== 200) throw new Error(res.text);
    seen.push(...res.body.data.map((p: { id: string }) => p.id));
    cursor = res.body.nextCursor;
    if (!cursor) break;
    await between();
  }
  return seen;
}

test('pagination walks every row exactly once while rows are inserted', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const word = `pag${randomUUID().replace(/[^a-z]/g, '').slice(0, 8)}`;
  const original: string[] = [];
  for (let i = 0; i < 23; i++) {
    original.push((await makeProduct(sys, seller, { categoryId: cat.id, title: `${word} item ${i}`, description: i % 2 ? word : 'plain' })).id);
  }
  const insertOne = async () => {
    await makeProduct(sys, seller, { categoryId: cat.id, title: `${word} late arrival` });
  };
  for (const query of [`sellerId=${seller.id}`, `q=${word}`, `q=${word}&sellerId=${seller.id}`]) {
    const seen = await walk(sys, query, 5, insertOne);
    t.is(new Set(seen).size, seen.length, `${query}: no row twice`);
    for (const id of original) t.true(seen.includes(id), `${query}: ${id} seen`);
  }
});

test('product reads carry an ETag; If-None-Match gives 304 until the product changes', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  const p = await makeProduct(sys, seller, { categoryId: cat.id });
  const first = await sys.api.get(`${P}/${p.id}`);
  const etag = first.headers.get('etag');
  t.truthy(etag);
  t.regex(first.headers.get('cache-control') ?? '', /public/);
  // As a browser revalidates (fetch would add `Cache-Control: no-cache` otherwise).
  const revalidate = { 'if-none-match': etag!, 'cache-control': 'max-age=0' };
  const again = await sys.api.get(`${P}/${p.id}`, { headers: revalidate });
  t.is(again.status, 304);
  t.is(again.text, '');
  await sys.api.put(`${P}/${p.id}`, { title: 'Changed' }, { token: seller.accessToken });
  const changed = await sys.api.get(`${P}/${p.id}`, { headers: revalidate });
  t.is(changed.status, 200);
  t.is(changed.body.title, 'Changed');
  t.not(changed.headers.get('etag'), etag);
});

test('large responses are gzipped when the client accepts it', async (t) => {
  const sys = system();
  const seller = await registerUser(sys, 'seller');
  const cat = await makeCategory(sys);
  for (let i = 0; i < 10; i++) await makeProduct(sys, seller, { categoryId: cat.id, description: 'long description '.repeat(20) });
  const res = await sys.api.get(`${P}?sellerId=${seller.id}&limit=100`, { headers: { 'accept-encoding': 'gzip' } });
  t.is(res.status, 200);
  t.is(res.headers.get('content-encoding'), 'gzip');
  t.is(res.body.data.length, 10);
});
