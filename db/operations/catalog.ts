/**
 * Catalog reads and writes, one function per operation, each taking an explicit
 * knex (or transaction). Money is bigint in Postgres and a safe integer in JS.
 */
import type { Knex } from 'knex';
import type { CategoryRow, ProductRow, VariantRow } from '../tables.js';

export interface Variant {
  id: string;
  sku: string;
  name: string;
  price: number;
  stock: number;
}

export interface Product {
  id: string;
  sellerId: string;
  title: string;
  description: string;
  categoryId: string;
  price: number;
  currency: string;
  images: string[];
  variants: Variant[];
  createdAt: string;
  updatedAt: string;
}

export interface VariantInput {
  id?: string;
  sku: string;
  name: string;
  price: number;
  stock: number;
}

export interface ProductInput {
  title: string;
  description: string;
  categoryId: string;
  price: number;
  currency: string;
  images: string[];
}

const toVariant = (v: VariantRow): Variant => ({ id: v.id, sku: v.sku, name: v.name, price: Number(v.price), stock: v.stock });

function toProduct(p: ProductRow, variants: VariantRow[]): Product {
  return {
    id: p.id,
    sellerId: p.seller_id,
    title: p.title,
    description: p.description,
    categoryId: p.category_id,
    price: Number(p.price),
    currency: p.currency,
    images: p.images,
    variants: variants.map(toVariant),
    createdAt: p.created_at.toISOString(),
    updatedAt: p.updated_at.toISOString(),
  };
}

export async function listCategories(db: Knex): Promise<CategoryRow[]> {
  return db<CategoryRow>('categories').orderBy([{ column: 'name' }, { column: 'id' }]);
}

export async function categoryExists(db: Knex, id: string): Promise<boolean> {
  return Boolean(await db('categories').where({ id }).first('id'));
}

const PRODUCT_COLUMNS = ['id', 'seller_id', 'category_id', 'title', 'description', 'price', 'currency', 'images', 'created_at', 'updated_at', 'deleted_at'];

async function withVariants(db: Knex, rows: ProductRow[]): Promise<Product[]> {
  if (rows.length === 0) return [];
  const variants = await db<VariantRow>('variants')
    .whereIn('product_id', rows.map((r) => r.id))
    .orderBy([{ column: 'created_at' }, { column: 'sku' }]);
  const byProduct = new Map<string, VariantRow[]>();
  for (const v of variants) byProduct.set(v.product_id, [...(byProduct.get(v.product_id) ?? []), v]);
  return rows.map((r) => toProduct(r, byProduct.get(r.id) ?? []));
}

/** A live (not deleted) product with its variants; `lock` takes a row lock. */
export async function findProduct(db: Knex, id: string, lock = false): Promise<Product | undefined> {
  const q = db<ProductRow>('products').select(PRODUCT_COLUMNS).where({ id }).whereNull('deleted_at');
  if (lock) q.forUpdate();
  const row = (await q.first()) as unknown as ProductRow | undefined;
  if (!row) return undefined;
  return (await withVariants(db, [row]))[0];
}

export interface ProductFilter {
  q?: string;
  categoryId?: string;
  sellerId?: string;
  minPrice?: number;
  maxPrice?: number;
}

/** Where a page starts: after (createdAt, id) for recency, after (rank, id) for search. */
export type ProductCursor = { kind: 'recent'; createdAt: string; id: string } | { kind: 'rank'; rank: number; id: string };

/**
 * A page of products. Without `q`: newest first, keyset on (created_at, id).
 * With `q`: Postgres full-text search (websearch syntax, GIN index), ranked by
 * ts_rank (title matches outrank description matches), keyset on (rank, id).
 * Keyset pages are stable under inserts: no row is skipped or repeated.
 */
export async function listProducts(
  db: Knex,
  filter: ProductFilter,
  limit: number,
  cursor: ProductCursor | null,
): Promise<{ products: Product[]; next: ProductCursor | null }> {
  const q = db<ProductRow>('products as p').whereNull('p.deleted_at');
  if (filter.categoryId) q.where('p.category_id', filter.categoryId);
  if (filter.sellerId) q.where('p.seller_id', filter.sellerId);
  if (filter.minPrice !== undefined) q.where('p.price', '>=', filter.minPrice);
  if (filter.maxPrice !== undefined) q.where('p.price', '<=', filter.maxPrice);
  const columns = PRODUCT_COLUMNS.map((c) => `p.${c}`);
  let rows: (ProductRow & { rank?: number })[];
  if (filter.q) {
    q.joinRaw("cross join websearch_to_tsquery('english', ?) as query", [filter.q])
      .whereRaw('p.search @@ query')
      .select([...columns, db.raw('ts_rank(p.search, query) as rank')]);
    if (cursor?.kind === 'rank') {
      q.whereRaw('(ts_rank(p.search, query) < ?::real or (ts_rank(p.search, query) = ?::real and p.id > ?))', [cursor.rank, cursor.rank, cursor.id]);
    }
    rows = await q.orderByRaw('rank desc, p.id asc').limit(limit + 1);
  } else {
    q.select(columns);
    if (cursor?.kind === 'recent') q.whereRaw('(p.created_at, p.id) < (?::timestamptz, ?::uuid)', [cursor.createdAt, cursor.id]);
    rows = await q.orderBy([{ column: 'p.created_at', order: 'desc' }, { column: 'p.id', order: 'desc' }]).limit(limit + 1);
  }
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  let next: ProductCursor | null = null;
  if (rows.length > limit && last) {
    next = filter.q
      ? { kind: 'rank', rank: Number(last.rank), id: last.id }
      : { kind: 'recent', createdAt: last.created_at.toISOString(), id: last.id };
  }
  return { products: await withVariants(db, page), next };
}

/** Inserts a product and its variants (a duplicate SKU raises 23505). */
export async function insertProduct(trx: Knex, sellerId: string, input: ProductInput, variants: VariantInput[]): Promise<string> {
  const [row] = await trx('products')
    .insert({
      seller_id: sellerId,
      category_id: input.categoryId,
      title: input.title,
      description: input.description,
      price: input.price,
      currency: input.currency,
      images: JSON.stringify(input.images),
    })
    .returning('id');
  const id = (row as { id: string }).id;
  if (variants.length) {
    await trx('variants').insert(variants.map((v) => ({ product_id: id, sku: v.sku, name: v.name, price: v.price, stock: v.stock })));
  }
  return id;
}

export async function updateProduct(trx: Knex, id: string, input: Partial<ProductInput>): Promise<void> {
  const patch: Record<string, unknown> = { updated_at: trx.raw('clock_timestamp()') };
  if (input.title !== undefined) patch.title = input.title;
  if (input.description !== undefined) patch.description = input.description;
  if (input.categoryId !== undefined) patch.category_id = input.categoryId;
  if (input.price !== undefined) patch.price = input.price;
  if (input.currency !== undefined) patch.currency = input.currency;
  if (input.images !== undefined) patch.images = JSON.stringify(input.images);
  await trx('products').where({ id }).update(patch);
}

/**
 * Makes the product's variants exactly `variants`: items with an `id` of this
 * product are updated, items without one are created, the rest are deleted.
 * Returns false when an `id` does not belong to the product.
 */
export async function replaceVariants(trx: Knex, productId: string, variants: VariantInput[]): Promise<boolean> {
  const existing = new Set((await trx<VariantRow>('variants').where({ product_id: productId }).select('id')).map((v) => v.id));
  const keep = variants.filter((v) => v.id).map((v) => v.id!);
  if (keep.some((id) => !existing.has(id))) return false;
  await trx('variants').where({ product_id: productId }).whereNotIn('id', keep).delete();
  // Two variants may swap SKUs in one update: check uniqueness at commit.
  await trx.raw('set constraints variants_sku_unique deferred');
  for (const v of variants) {
    if (v.id) await trx('variants').where({ id: v.id }).update({ sku: v.sku, name: v.name, price: v.price, stock: v.stock });
    else await trx('variants').insert({ product_id: productId, sku: v.sku, name: v.name, price: v.price, stock: v.stock });
  }
  return true;
}

export async function softDeleteProduct(trx: Knex, id: string): Promise<void> {
  await trx('products').where({ id }).update({ deleted_at: trx.raw('clock_timestamp()'), updated_at: trx.raw('clock_timestamp()') });
}

/** True when an auction of the product is scheduled or live (it cannot be deleted then). */
export async function productHasOpenAuction(trx: Knex, productId: string): Promise<boolean> {
  return Boolean(await trx('auctions').where({ product_id: productId }).whereIn('status', ['scheduled', 'live']).first('id'));
}
