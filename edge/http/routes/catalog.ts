import Joi from 'joi';
import type { Response } from 'express';
import type { ProductCursor, ProductInput, VariantInput } from '../../../db/operations/catalog.js';
import { AppError } from '../../../lib/errors.js';
import type { EdgeDeps } from '../deps.js';
import { cursorSchema, decodeCursor, encodeCursor, limitSchema } from '../pagination.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { currency, isoDate, longText, money, text, uuid } from '../schemas.js';
import * as catalog from '../services/catalog.js';

const variantSchema = Joi.object({ id: uuid(), sku: Joi.string(), name: Joi.string(), price: Joi.number().integer(), stock: Joi.number().integer() });
const productSchema = Joi.object({
  id: uuid(),
  sellerId: uuid(),
  title: Joi.string(),
  description: Joi.string().allow(''),
  categoryId: uuid(),
  price: Joi.number().integer(),
  currency: Joi.string(),
  images: Joi.array().items(Joi.string()),
  variants: Joi.array().items(variantSchema),
  createdAt: isoDate(),
  updatedAt: isoDate(),
});
const categorySchema = Joi.object({ id: uuid(), name: Joi.string(), slug: Joi.string(), parentId: uuid().allow(null) });

const variantInput = (withId: boolean) =>
  Joi.object({
    ...(withId ? { id: uuid() } : {}),
    sku: Joi.string().pattern(/^[A-Za-z0-9._-]{1,64}$/, 'sku').required(),
    name: text(100).required(),
    price: money().required(),
    stock: Joi.number().integer().strict().min(0).max(1_000_000_000).required(),
  });
const productFields = {
  title: text(200),
  description: longText(10_000),
  categoryId: uuid(),
  price: money(),
  currency: currency(),
  images: Joi.array().items(Joi.string().uri({ scheme: ['https', 'http'] }).max(2048)).max(20),
};

type CreateBody = Pick<ProductInput, 'title' | 'categoryId' | 'price'> &
  Partial<Pick<ProductInput, 'description' | 'currency' | 'images'>> & { variants?: VariantInput[] };
type UpdateBody = Partial<ProductInput> & { variants?: VariantInput[] };
type ListQuery = { q?: string; categoryId?: string; sellerId?: string; minPrice?: number; maxPrice?: number; limit: number; cursor?: string };

const cursorShape = Joi.alternatives(
  Joi.object({ kind: Joi.string().valid('recent').required(), createdAt: isoDate().required(), id: uuid().required() }),
  Joi.object({ kind: Joi.string().valid('rank').required(), rank: Joi.number().min(0).required(), id: uuid().required() }),
);

/** Public catalog reads: cacheable by anyone, always revalidated (ETag → 304). */
function publicRead(res: Response) {
  res.setHeader('Cache-Control', 'public, no-cache');
}

export function catalogRoutes(deps: EdgeDeps): AnyRoute[] {
  const idParams = Joi.object<{ id: string }>({ id: uuid().required() });
  return [
    defineRoute({
      method: 'get',
      path: '/categories',
      tag: 'catalog',
      summary: 'Every category (a tree through parentId)',
      responses: { 200: { description: 'categories', schema: Joi.object({ data: Joi.array().items(categorySchema) }) } },
      handler: async ({ res }) => {
        publicRead(res);
        res.json({ data: await catalog.categories(deps) });
      },
    }),
    defineRoute<Record<string, never>, ListQuery>({
      method: 'get',
      path: '/products',
      tag: 'catalog',
      summary: 'Products: full-text search (`q`, ranked), filters, cursor pagination (newest first without `q`)',
      query: Joi.object({
        q: Joi.string().trim().min(1).max(200),
        categoryId: uuid(),
        sellerId: uuid(),
        minPrice: Joi.number().integer().min(0).max(100_000_000_000),
        maxPrice: Joi.number().integer().min(0).max(100_000_000_000),
        limit: limitSchema(),
        cursor: cursorSchema(),
      }),
      responses: { 200: { description: 'a page', schema: Joi.object({ data: Joi.array().items(productSchema), nextCursor: Joi.string().allow(null) }) } },
      handler: async ({ query, res }) => {
        if (query.minPrice !== undefined && query.maxPrice !== undefined && query.minPrice > query.maxPrice) {
          throw new AppError('validation_failed', 'minPrice is above maxPrice', [{ path: 'query.minPrice', message: 'must be <= maxPrice' }]);
        }
        const cursor = decodeCursor(query.cursor, cursorShape) as ProductCursor | null;
        if (cursor && (cursor.kind === 'rank') !== Boolean(query.q)) {
          throw new AppError('validation_failed', 'malformed cursor', [{ path: 'query.cursor', message: 'belongs to another query' }]);
        }
        const { q, categoryId, sellerId, minPrice, maxPrice } = query;
        const page = await catalog.searchProducts(deps, { q, categoryId, sellerId, minPrice, maxPrice }, query.limit, cursor);
        publicRead(res);
        res.json({ data: page.products, nextCursor: page.next ? encodeCursor(page.next) : null });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/products/:id',
      tag: 'catalog',
      summary: 'A product with its variants (ETag / If-None-Match → 304)',
      params: idParams,
      responses: { 200: { description: 'the product', schema: productSchema }, 304: { description: 'not modified' }, 404: { description: 'no such product' } },
      handler: async ({ params, res }) => {
        const product = await catalog.getProduct(deps, params.id);
        publicRead(res);
        res.json(product);
      },
    }),
    defineRoute<CreateBody>({
      method: 'post',
      path: '/products',
      tag: 'catalog',
      summary: 'Create a product (sellers and admins)',
      roles: ['seller', 'admin'],
      body: Joi.object({
        ...productFields,
        title: productFields.title.required(),
        categoryId: productFields.categoryId.required(),
        price: productFields.price.required(),
        variants: Joi.array().items(variantInput(false)).max(100).unique('sku'),
      }),
      responses: { 201: { description: 'created', schema: productSchema }, 409: { description: 'a SKU is taken' } },
      handler: async ({ user, body, res }) => {
        const { variants = [], ...fields } = body;
        const input: ProductInput = { ...fields, description: fields.description ?? '', currency: fields.currency ?? 'usd', images: fields.images ?? [] };
        const product = await catalog.createProduct(deps, user!, input, variants);
        res.status(201).setHeader('Location', `/api/v1/products/${product.id}`).json(product);
      },
    }),
    defineRoute<UpdateBody, Record<string, never>, { id: string }>({
      method: 'put',
      path: '/products/:id',
      tag: 'catalog',
      summary: 'Update a product (its seller or an admin); `variants`, if given, is the full new list',
      auth: 'user',
      params: idParams,
      body: Joi.object({ ...productFields, variants: Joi.array().items(variantInput(true)).max(100).unique('sku').unique('id', { ignoreUndefined: true }) }).min(1),
      responses: { 200: { description: 'updated', schema: productSchema }, 403: { description: 'not yours' }, 404: { description: 'no such product' }, 409: { description: 'a SKU is taken' } },
      handler: async ({ user, params, body, res }) => {
        const { variants, ...fields } = body;
        res.json(await catalog.changeProduct(deps, user!, params.id, fields, variants));
      },
    }),
    defineRoute<Record<string, never>, Record<string, never>, { id: string }>({
      method: 'delete',
      path: '/products/:id',
      tag: 'catalog',
      summary: 'Delete a product (its seller or an admin); 409 while it is in a scheduled or live auction',
      auth: 'user',
      params: idParams,
      responses: { 204: { description: 'deleted' }, 403: { description: 'not yours' }, 404: { description: 'no such product' }, 409: { description: 'in an auction' } },
      handler: async ({ user, params, res }) => {
        await catalog.deleteProduct(deps, user!, params.id);
        res.status(204).end();
      },
    }),
  ] as AnyRoute[];
}
