import type { System, TestUser } from './system.js';

let n = 0;

/** Inserts a category directly (there is no category write API). */
export async function makeCategory(sys: System, parentId: string | null = null): Promise<{ id: string; slug: string }> {
  const slug = `cat-${process.pid}-${Date.now().toString(36)}-${++n}`;
  const [row] = await sys.db('categories').insert({ name: `Category ${n}`, slug, parent_id: parentId }).returning(['id', 'slug']);
  return row;
}

/** Creates a product over HTTP as `seller`. */
export async function makeProduct(sys: System, seller: TestUser, fields: Record<string, unknown> & { categoryId: string }) {
  const res = await sys.api.post('/api/v1/products', { title: `Product ${++n}`, price: 1000, ...fields }, { token: seller.accessToken });
  if (res.status !== 201) throw new Error(`create product failed: ${res.status} ${res.text}`);
  return res.body;
}
