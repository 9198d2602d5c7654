/**
 * Catalog use cases: reads go through the Redis cache, writes commit in one
 * transaction and then invalidate, so a reader never sees a product older than a
 * write that has returned.
 */
import type { AccessClaims } from '../../../lib/jwt.js';
import { AppError, conflict, forbidden, notFound } from '../../../lib/errors.js';
import {
  categoryExists,
  findProduct,
  insertProduct,
  listCategories,
  listProducts,
  productHasOpenAuction,
  replaceVariants,
  softDeleteProduct,
  updateProduct,
  type Product,
  type ProductCursor,
  type ProductFilter,
  type ProductInput,
  type VariantInput,
} from '../../../db/operations/catalog.js';
import type { EdgeDeps } from '../deps.js';

export async function categories(deps: EdgeDeps) {
  return deps.cache.categories(async () =>
    (await listCategories(deps.db)).map((c) => ({ id: c.id, name: c.name, slug: c.slug, parentId: c.parent_id })),
  );
}

export async function getProduct(deps: EdgeDeps, id: string): Promise<Product> {
  const product = await deps.cache.product(id, () => findProduct(deps.db, id));
  if (!product) throw notFound('product');
  return product;
}

export async function searchProducts(deps: EdgeDeps, filter: ProductFilter, limit: number, cursor: ProductCursor | null) {
  return deps.cache.productList({ ...filter, limit, cursor: cursor ? JSON.stringify(cursor) : undefined }, () =>
    listProducts(deps.db, filter, limit, cursor),
  );
}

const unknownCategory = () =>
  new AppError('validation_failed', 'unknown category', [{ path: 'body.categoryId', message: 'no such category' }]);

export async function createProduct(deps: EdgeDeps, seller: AccessClaims, input: ProductInput, variants: VariantInput[]): Promise<Product> {
  const id = await deps.db.transaction(async (trx) => {
    if (!(await categoryExists(trx, input.categoryId))) throw unknownCategory();
    return insertProduct(trx, seller.id, input, variants);
  });
  await deps.cache.invalidateProduct(id);
  return (await findProduct(deps.db, id))!;
}

/** Loads the product for a write by `caller`: 404 if absent, 403 unless owner or admin. */
async function lockOwned(trx: EdgeDeps['db'], id: string, caller: AccessClaims): Promise<Product> {
  const product = await findProduct(trx, id, true);
  if (!product) throw notFound('product');
  if (product.sellerId !== caller.id && caller.role !== 'admin') throw forbidden('only the seller or an admin may change this product');
  return product;
}

export async function changeProduct(
  deps: EdgeDeps,
  caller: AccessClaims,
  id: string,
  input: Partial<ProductInput>,
  variants: VariantInput[] | undefined,
): Promise<Product> {
  // The answer is read in the write's own transaction, under its lock: read after
  // the commit, a delete in between made it a 200 with no body.
  const product = await deps.db.transaction(async (trx) => {
    await lockOwned(trx, id, caller);
    if (input.categoryId !== undefined && !(await categoryExists(trx, input.categoryId))) throw unknownCategory();
    await updateProduct(trx, id, input);
    if (variants && !(await replaceVariants(trx, id, variants))) {
      throw new AppError('validation_failed', 'a variant id does not belong to this product', [{ path: 'body.variants', message: 'unknown variant id' }]);
    }
    return (await findProduct(trx, id))!;
  });
  await deps.cache.invalidateProduct(id);
  return product;
}

export async function deleteProduct(deps: EdgeDeps, caller: AccessClaims, id: string): Promise<void> {
  await deps.db.transaction(async (trx) => {
    await lockOwned(trx, id, caller);
    if (await productHasOpenAuction(trx, id)) throw conflict('the product is in a scheduled or live auction');
    await softDeleteProduct(trx, id);
  });
  await deps.cache.invalidateProduct(id);
}
