import Joi from 'joi';
import { listNotifications, findNotification, markNotificationRead, type NotificationRow } from '../../../db/operations/notifications.js';
import { notFound } from '../../../lib/errors.js';
import type { EdgeDeps } from '../deps.js';
import { cursorSchema, decodeCursor, encodeCursor, limitSchema } from '../pagination.js';
import { defineRoute, type AnyRoute } from '../route.js';
import { isoDate, uuid } from '../schemas.js';

const notificationSchema = Joi.object({
  id: uuid(),
  kind: Joi.string(),
  payload: Joi.object().unknown(true),
  createdAt: Joi.string().isoDate(),
  readAt: Joi.string().isoDate().allow(null),
});

const toApi = (n: NotificationRow) => ({
  id: n.id,
  kind: n.kind,
  payload: n.payload,
  createdAt: n.created_at.toISOString(),
  readAt: n.read_at?.toISOString() ?? null,
});

const cursorTuple = Joi.array().ordered(isoDate().required(), uuid().required()).length(2);

export function notificationRoutes(deps: EdgeDeps): AnyRoute[] {
  return [
    defineRoute<Record<string, never>, { limit: number; cursor?: string }>({
      method: 'get',
      path: '/notifications',
      tag: 'notifications',
      summary: "The signed-in user's notifications, newest first",
      auth: 'user',
      query: Joi.object({ limit: limitSchema(), cursor: cursorSchema() }),
      responses: { 200: { description: 'a page', schema: Joi.object({ data: Joi.array().items(notificationSchema), nextCursor: Joi.string().allow(null) }) } },
      handler: async ({ user, query, res }) => {
        const c = decodeCursor(query.cursor, cursorTuple) as [string, string] | null;
        const rows = await listNotifications(deps.db, user!.id, query.limit + 1, c ? { createdAt: new Date(c[0]), id: c[1] } : null);
        const page = rows.slice(0, query.limit);
        const last = page[page.length - 1];
        res.json({
          data: page.map(toApi),
          nextCursor: rows.length > query.limit && last ? encodeCursor([last.created_at.toISOString(), last.id]) : null,
        });
      },
    }),
    defineRoute<Record<string, never>, Record<string, never>, { id: string }>({
      method: 'post',
      path: '/notifications/:id/read',
      tag: 'notifications',
      summary: 'Mark one of your notifications read (404 for anyone else)',
      auth: 'user',
      params: Joi.object({ id: uuid().required() }),
      responses: { 204: { description: 'marked read' }, 404: { description: 'no such notification of yours' } },
      handler: async ({ user, params, res }) => {
        const n = await findNotification(deps.db, params.id);
        // Someone else's notification is "not found": its existence is not revealed.
        if (!n || n.user_id !== user!.id) throw notFound('notification');
        await markNotificationRead(deps.db, n.id);
        res.status(204).end();
      },
    }),
  ] as AnyRoute[];
}
