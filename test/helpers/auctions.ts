import { randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { System, TestUser } from './system.js';
import { makeCategory, makeProduct } from './catalog.js';

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, ms = 15_000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * `n` live auctions of `sellerId` (an hour long, no soft close, each of its own
 * product) with their receipt counters, inserted directly, for tests that need
 * many at once. Returns their ids.
 */
export async function insertLiveAuctions(db: Knex, sellerId: string, n: number): Promise<string[]> {
  const slug = `lots-${randomBytes(4).toString('hex')}`;
  const [cat] = await db('categories').insert({ name: slug, slug }).returning('id');
  const products = await db('products')
    .insert(Array.from({ length: n }, (_, i) => ({ seller_id: sellerId, category_id: cat.id, title: `Lot ${i}`, price: 100 })))
    .returning('id');
  const rows = await db('auctions')
    .insert(
      products.map((p: { id: string }) => ({
        seller_id: sellerId,
        product_id: p.id,
        title: 'Lot',
        status: 'live',
        starting_price: 100,
        current_price: 100,
        duration_seconds: 3600,
        starts_at: db.fn.now(),
        ends_at: db.raw("now() + interval '1 hour'"),
        soft_close_seconds: 0,
      })),
    )
    .returning('id');
  const ids = rows.map((r: { id: string }) => r.id as string);
  await db('auction_counters').insert(ids.map((id) => ({ auction_id: id })));
  return ids;
}

/** A product of `seller` and a scheduled auction of it (API.md defaults unless given). */
export async function makeAuction(sys: System, seller: TestUser, fields: Record<string, unknown> = {}) {
  const cat = await makeCategory(sys);
  const product = await makeProduct(sys, seller, { categoryId: cat.id });
  const res = await sys.api.post('/api/v1/auctions', { productId: product.id, startingPrice: 1000, durationSeconds: 600, ...fields }, { token: seller.accessToken });
  if (res.status !== 201) throw new Error(`create auction failed: ${res.status} ${res.text}`);
  return res.body;
}

/** A live auction: created and started. */
export async function liveAuction(sys: System, seller: TestUser, fields: Record<string, unknown> = {}) {
  const a = await makeAuction(sys, seller, fields);
  const res = await sys.api.put(`/api/v1/auctions/${a.id}/start`, undefined, { token: seller.accessToken });
  if (res.status !== 200) throw new Error(`start failed: ${res.status} ${res.text}`);
  return res.body;
}

export async function bid(sys: System, user: TestUser, auctionId: string, amount: number, headers: Record<string, string> = {}) {
  return sys.api.post(`/api/v1/auctions/${auctionId}/bid`, { amount }, { token: user.accessToken, headers });
}

/** Waits until the bid has a verdict; returns GET /bids/:id. */
export async function verdict(sys: System, user: TestUser, bidId: string, ms = 15_000) {
  return waitFor(async () => {
    const r = await sys.api.get(`/api/v1/bids/${bidId}`, { token: user.accessToken });
    return r.status === 200 && r.body.status !== 'queued' ? r.body : undefined;
  }, ms, `verdict of ${bidId}`);
}

/**
 * The stored private events of `userIds` (from their batches, in order), each as
 * `{batchId, userId, type, payload, publishedAt}`; only those of `type` if given,
 * else the auction events (not the account notifications registering stores).
 */
export async function storedUserEvents(db: Knex, userIds: string[], type?: string) {
  const { rows } = await db.raw(
    `select b.id as batch_id, e->>'userId' as user_id, e->'event'->>'type' as type, e->'event' as payload, b.published_at
     from user_event_batches b cross join lateral json_array_elements(b.events) with ordinality as x(e, ord)
     where e->>'userId' = any(?::text[]) and coalesce(e->'event'->>'type' = ?, e->'event'->>'type' <> 'notification')
     order by b.id, x.ord`,
    [userIds, type ?? null] as unknown as Knex.RawBinding[],
  );
  return (rows as { batch_id: string; user_id: string; type: string; payload: Record<string, unknown>; published_at: Date | null }[]).map((r) => ({
    batchId: String(r.batch_id),
    userId: r.user_id,
    type: r.type,
    payload: r.payload,
    publishedAt: r.published_at,
  }));
}
