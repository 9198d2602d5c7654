import Joi from 'joi';
import { bidHistory, findBid, listAuctions, listLiveAuctions } from '../../../db/operations/auctions.js';
import { notFound } from '../../../lib/errors.js';
import type { EdgeDeps } from '../deps.js';
import { limiter } from '../middleware/rate-limit.js';
import { cursorSchema, decodeCursor, limitSchema, pageOf } from '../pagination.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { isoDate, money, uuid } from '../schemas.js';
import * as auctions from '../services/auctions.js';
import { bidService, parseIdempotencyKey } from '../services/bids.js';
import { viewerStats } from '../../../lib/viewers.js';

const auctionSchema = Joi.object({
  id: uuid(),
  sellerId: uuid(),
  productId: uuid(),
  title: Joi.string(),
  status: Joi.string().valid('scheduled', 'live', 'ended', 'cancelled'),
  startingPrice: Joi.number().integer(),
  reservePrice: Joi.number().integer().allow(null).description('its seller only'),
  reserveMet: Joi.boolean().description('everyone else: true when there is no reserve or it is met'),
  currentPrice: Joi.number().integer(),
  currency: Joi.string(),
  minNextBid: Joi.number().integer(),
  bidIncrement: Joi.number().integer().allow(null),
  leaderId: uuid().allow(null),
  bidCount: Joi.number().integer(),
  startsAt: isoDate().allow(null),
  endsAt: isoDate().allow(null),
  softCloseSeconds: Joi.number().integer(),
  durationSeconds: Joi.number().integer(),
  seq: Joi.number().integer(),
  winnerId: uuid().allow(null),
  createdAt: isoDate(),
});
const page = (item: Joi.Schema) => Joi.object({ data: Joi.array().items(item), nextCursor: Joi.string().allow(null) });
export const idParams = Joi.object<{ id: string }>({ id: uuid().required() });
/** The bodies of POST /auctions/:id/bid and /autobid (the fast path validates with them too). */
export const bidBodies = {
  bid: Joi.object<{ amount: number }>({ amount: money().required() }),
  autobid: Joi.object<{ maxAmount: number }>({ maxAmount: money().required() }),
};
const queued = (key: 'bidId' | 'autobidId') => Joi.object({ [key]: uuid(), status: Joi.string().valid('queued') });

export function auctionRoutes(deps: EdgeDeps): AnyRoute[] {
  const bids = bidService(deps);
  const bidLimit = limiter(deps, 'bids', deps.config.rateLimits.bidsPerMinute, 'user');

  return [
    defineRoute<auctions.CreateAuctionInput>({
      method: 'post',
      path: '/auctions',
      tag: 'auctions',
      summary: 'Create an auction of your product (sellers, admins); with startsAt it starts by itself',
      roles: ['seller', 'admin'],
      idempotent: 'stored',
      body: Joi.object({
        productId: uuid().required(),
        startingPrice: money().required(),
        reservePrice: money(),
        bidIncrement: money(),
        startsAt: isoDate(),
        durationSeconds: Joi.number().integer().strict().min(10).max(30 * 24 * 3600).required(),
        softCloseSeconds: Joi.number().integer().strict().min(0).max(3600),
      }),
      responses: { 201: { description: 'created (scheduled)', schema: auctionSchema }, 403: { description: 'not your product' }, 409: { description: 'the product already has an open auction' } },
      handler: async ({ user, body, res }) => {
        const a = await auctions.createAuction(deps, user!, body);
        res.status(201).setHeader('Location', `/api/v1/auctions/${a.id}`).json(a);
      },
    }),
    defineRoute<Record<string, never>, { status?: string; sellerId?: string; limit: number; cursor?: string }>({
      method: 'get',
      path: '/auctions',
      tag: 'auctions',
      summary: 'Auctions, newest first',
      query: Joi.object({ status: Joi.string().valid('scheduled', 'live', 'ended', 'cancelled'), sellerId: uuid(), limit: limitSchema(), cursor: cursorSchema() }),
      responses: { 200: { description: 'a page', schema: page(auctionSchema) } },
      handler: async ({ query, user, res }) => {
        const after = decodeCursor(query.cursor, Joi.object({ createdAt: isoDate().required(), id: uuid().required() })) as { createdAt: string; id: string } | null;
        const page = pageOf(await listAuctions(deps.db, query, query.limit + 1, after), query.limit, (r) => ({ createdAt: r.created_at.toISOString(), id: r.id }));
        res.json({ data: page.data.map((r) => auctions.toApiAuction(r, user)), nextCursor: page.nextCursor });
      },
    }),
    defineRoute<Record<string, never>, { limit: number; cursor?: string }>({
      method: 'get',
      path: '/auctions/live',
      tag: 'auctions',
      summary: 'Live auctions, soonest ending first',
      query: Joi.object({ limit: limitSchema(), cursor: cursorSchema() }),
      responses: { 200: { description: 'a page', schema: page(auctionSchema) } },
      handler: async ({ query, user, res }) => {
        const after = decodeCursor(query.cursor, Joi.object({ endsAt: isoDate().required(), id: uuid().required() })) as { endsAt: string; id: string } | null;
        const page = pageOf(await listLiveAuctions(deps.db, query.limit + 1, after), query.limit, (r) => ({ endsAt: r.ends_at!.toISOString(), id: r.id }));
        res.json({ data: page.data.map((r) => auctions.toApiAuction(r, user)), nextCursor: page.nextCursor });
      },
    }),
    defineRoute({
      method: 'get',
      path: '/auctions/:id',
      tag: 'auctions',
      summary: 'An auction (reservePrice for its seller, reserveMet for everyone else, admins included)',
      params: idParams,
      responses: { 200: { description: 'the auction', schema: auctionSchema }, 404: { description: 'no such auction' } },
      handler: async ({ params, user, res }) => {
        res.json(auctions.toApiAuction(await auctions.getAuction(deps, params.id), user));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/auctions/:id/viewers',
      tag: 'auctions',
      summary: 'Viewers across all broadcaster instances: current, peak and unique',
      params: idParams,
      responses: {
        200: { description: 'counts', schema: Joi.object({ current: Joi.number().integer(), peak: Joi.number().integer(), unique: Joi.number().integer() }) },
        404: { description: 'no such auction' },
      },
      handler: async ({ params, res }) => {
        await auctions.getAuction(deps, params.id);
        res.json(await viewerStats(deps.redis, deps.config.redis.prefix, params.id));
      },
    }),
    defineRoute({
      method: 'put',
      path: '/auctions/:id/start',
      tag: 'auctions',
      summary: 'Start a scheduled auction now (endsAt = now + durationSeconds)',
      auth: 'user',
      idempotent: 'stored',
      params: idParams,
      responses: { 200: { description: 'live', schema: auctionSchema }, 409: { description: 'not scheduled' } },
      handler: async ({ params, user, res }) => {
        res.json(await auctions.startAuctionNow(deps, user!, params.id));
      },
    }),
    defineRoute({
      method: 'put',
      path: '/auctions/:id/end',
      tag: 'auctions',
      summary: 'End a live auction: every bid received before this call is applied first; ending an ended auction returns it unchanged',
      auth: 'user',
      idempotent: 'stored',
      params: idParams,
      responses: { 200: { description: 'ended', schema: auctionSchema }, 409: { description: 'not live' }, 503: { description: 'queued but not finished in time' } },
      handler: async ({ params, user, res }) => {
        res.json(await auctions.endAuction(deps, user!, params.id));
      },
    }),
    defineRoute({
      method: 'put',
      path: '/auctions/:id/cancel',
      tag: 'auctions',
      summary: 'Cancel an auction before its first bid (subscribers get auction.cancelled)',
      auth: 'user',
      idempotent: 'stored',
      params: idParams,
      responses: { 200: { description: 'cancelled', schema: auctionSchema }, 409: { description: 'it has bids, or is ending or over' } },
      handler: async ({ params, user, res }) => {
        res.json(await auctions.cancelAuction(deps, user!, params.id));
      },
    }),
    defineRoute<{ amount: number }, Record<string, never>, { id: string }>({
      method: 'post',
      path: '/auctions/:id/bid',
      tag: 'bidding',
      summary: 'Place a bid: recorded and queued (202); the outcome comes as bid.ack and from GET /bids/:id. Idempotency-Key replays the first answer.',
      auth: 'user',
      idempotent: 'self',
      before: [bidLimit],
      params: idParams,
      body: bidBodies.bid,
      responses: { 202: { description: 'queued', schema: queued('bidId') }, 404: { description: 'no such auction' }, 409: { description: 'Idempotency-Key reused for another request' } },
      handler: async ({ params, user, body, req, res }) => {
        const bidId = await bids.take(user!, params.id, 'bid', body.amount, parseIdempotencyKey(req.get('idempotency-key')));
        res.status(202).json({ bidId, status: 'queued' });
      },
    }),
    defineRoute<{ maxAmount: number }, Record<string, never>, { id: string }>({
      method: 'post',
      path: '/auctions/:id/autobid',
      tag: 'bidding',
      summary: 'Set a proxy maximum: recorded and queued (202); the outcome comes as autobid.ack',
      auth: 'user',
      idempotent: 'self',
      before: [bidLimit],
      params: idParams,
      body: bidBodies.autobid,
      responses: { 202: { description: 'queued', schema: queued('autobidId') }, 404: { description: 'no such auction' }, 409: { description: 'Idempotency-Key reused for another request' } },
      handler: async ({ params, user, body, req, res }) => {
        const autobidId = await bids.take(user!, params.id, 'autobid', body.maxAmount, parseIdempotencyKey(req.get('idempotency-key')));
        res.status(202).json({ autobidId, status: 'queued' });
      },
    }),
    defineRoute<Record<string, never>, { limit: number; cursor?: string }, { id: string }>({
      method: 'get',
      path: '/auctions/:id/bids',
      tag: 'bidding',
      summary: 'Bid history (manual and auto bids), newest first',
      params: idParams,
      query: Joi.object({ limit: limitSchema(), cursor: cursorSchema() }),
      responses: {
        200: {
          description: 'a page',
          schema: page(Joi.object({ id: uuid(), bidderId: uuid(), bidderName: Joi.string(), amount: Joi.number().integer(), auto: Joi.boolean(), createdAt: isoDate(), seq: Joi.number().integer() })),
        },
        404: { description: 'no such auction' },
      },
      handler: async ({ params, query, res }) => {
        await auctions.getAuction(deps, params.id);
        const before = decodeCursor(query.cursor, Joi.object({ seq: Joi.number().integer().min(1).required() })) as { seq: number } | null;
        res.json(pageOf(await bidHistory(deps.db, params.id, query.limit + 1, before?.seq ?? null), query.limit, (r) => ({ seq: r.seq })));
      },
    }),
    defineRoute({
      method: 'get',
      path: '/bids/:id',
      tag: 'bidding',
      summary: 'A bid or auto-bid request and its verdict (its bidder only; others get 404)',
      auth: 'user',
      params: idParams,
      responses: {
        200: {
          description: 'the bid',
          schema: Joi.object({
            id: uuid(),
            auctionId: uuid(),
            kind: Joi.string().valid('bid', 'autobid'),
            amount: Joi.number().integer(),
            status: Joi.string().valid('queued', 'accepted', 'rejected'),
            reason: Joi.string(),
            seq: Joi.number().integer(),
            receivedAt: isoDate(),
          }),
        },
        404: { description: 'no such bid of yours' },
      },
      handler: async ({ params, user, res }) => {
        const bid = await findBid(deps.db, params.id);
        if (!bid || bid.bidder_id !== user!.id) throw notFound('bid');
        res.json({
          id: bid.id,
          auctionId: bid.auction_id,
          kind: bid.kind,
          amount: Number(bid.amount),
          status: bid.status,
          ...(bid.reason ? { reason: bid.reason } : {}),
          ...(bid.seq !== null ? { seq: Number(bid.seq) } : {}),
          receivedAt: bid.received_at.toISOString(),
        });
      },
    }),
  ] as AnyRoute[];
}
