import Joi from 'joi';
import { chatHistory, deleteBan, deleteChatMessage, upsertBan } from '../../../db/operations/chat.js';
import { findUserById } from '../../../db/operations/users.js';
import { AppError, forbidden, notFound } from '../../../lib/errors.js';
import type { AccessClaims } from '../../../lib/jwt.js';
import { publishEvents } from '../../../lib/publisher.js';
import type { EdgeDeps } from '../deps.js';
import { cursorSchema, decodeCursor, limitSchema, pageOf } from '../pagination.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { isoDate, uuid } from '../schemas.js';
import { getAuction } from '../services/auctions.js';

const messageSchema = Joi.object({ id: uuid(), userId: uuid(), name: Joi.string(), text: Joi.string(), seq: Joi.number().integer(), createdAt: isoDate() });

export function chatRoutes(deps: EdgeDeps): AnyRoute[] {
  /** The auction, if the caller is its seller or an admin (404 if absent, 403 otherwise). */
  async function moderated(id: string, caller: AccessClaims) {
    const auction = await getAuction(deps, id);
    if (auction.seller_id !== caller.id && caller.role !== 'admin') throw forbidden('only the seller or an admin moderates this chat');
    return auction;
  }
  return [
    defineRoute<Record<string, never>, { limit: number; cursor?: string }, { id: string }>({
      method: 'get',
      path: '/auctions/:id/chat',
      tag: 'chat',
      summary: 'Chat history, newest first (deleted messages left out)',
      params: Joi.object({ id: uuid().required() }),
      query: Joi.object({ limit: limitSchema(), cursor: cursorSchema() }),
      responses: { 200: { description: 'a page', schema: Joi.object({ data: Joi.array().items(messageSchema), nextCursor: Joi.string().allow(null) }) }, 404: { description: 'no such auction' } },
      handler: async ({ params, query, res }) => {
        await getAuction(deps, params.id);
        const before = decodeCursor(query.cursor, Joi.object({ seq: Joi.number().integer().min(1).required() })) as { seq: number } | null;
        res.json(pageOf(await chatHistory(deps.db, params.id, query.limit + 1, before?.seq ?? null), query.limit, (m) => ({ seq: m.seq })));
      },
    }),
    defineRoute<Record<string, never>, Record<string, never>, { id: string; messageId: string }>({
      method: 'delete',
      path: '/auctions/:id/chat/:messageId',
      tag: 'chat',
      summary: 'Delete a message (the auction\'s seller, admins); subscribers get chat.deleted',
      auth: 'user',
      idempotent: 'stored',
      params: Joi.object({ id: uuid().required(), messageId: uuid().required() }),
      responses: { 204: { description: 'deleted' }, 403: { description: 'not yours to moderate' }, 404: { description: 'no such message' } },
      handler: async ({ params, user, res }) => {
        await moderated(params.id, user!);
        const frame = await deleteChatMessage(deps.db, params.id, params.messageId, user!.id);
        if (!frame) throw notFound('message');
        await publishEvents(deps.db, deps.redis, deps.config, [{ auctionId: params.id, seq: frame.seq, frame }], []).catch((err: unknown) =>
          deps.logger.warn({ err: (err as Error).message }, 'publish failed; the sweeper will retry'),
        );
        res.status(204).end();
      },
    }),
    defineRoute<{ userId: string; durationSeconds?: number }, Record<string, never>, { id: string }>({
      method: 'post',
      path: '/auctions/:id/chat/bans',
      tag: 'chat',
      summary: 'Ban a user from this auction\'s chat and bidding (for durationSeconds, or until lifted)',
      auth: 'user',
      idempotent: 'stored',
      params: Joi.object({ id: uuid().required() }),
      body: Joi.object({ userId: uuid().required(), durationSeconds: Joi.number().integer().strict().min(1).max(365 * 24 * 3600) }),
      responses: { 201: { description: 'banned', schema: Joi.object({ auctionId: uuid(), userId: uuid(), expiresAt: isoDate().allow(null) }) }, 403: { description: 'not yours to moderate' } },
      handler: async ({ params, body, user, res }) => {
        const auction = await moderated(params.id, user!);
        if (!(await findUserById(deps.db, body.userId))) throw new AppError('validation_failed', 'unknown user', [{ path: 'body.userId', message: 'no such user' }]);
        if (body.userId === auction.seller_id) throw new AppError('validation_failed', 'the seller cannot be banned from their own auction');
        const expiresAt = await upsertBan(deps.db, params.id, body.userId, body.durationSeconds ?? null, user!.id);
        res.status(201).json({ auctionId: params.id, userId: body.userId, expiresAt: expiresAt?.toISOString() ?? null });
      },
    }),
    defineRoute<Record<string, never>, Record<string, never>, { id: string; userId: string }>({
      method: 'delete',
      path: '/auctions/:id/chat/bans/:userId',
      tag: 'chat',
      summary: 'Lift a ban',
      auth: 'user',
      idempotent: 'stored',
      params: Joi.object({ id: uuid().required(), userId: uuid().required() }),
      responses: { 204: { description: 'lifted (or there was none)' }, 403: { description: 'not yours to moderate' } },
      handler: async ({ params, user, res }) => {
        await moderated(params.id, user!);
        await deleteBan(deps.db, params.id, params.userId);
        res.status(204).end();
      },
    }),
  ] as AnyRoute[];
}
