import type { Knex } from 'knex';
import type { NotificationKind } from '../../queues/jobs.js';
import { insertUserEventBatch, type UserEvent } from './auctions.js';

const TEXT: Record<NotificationKind, string> = {
  welcome: 'Welcome to Blytz.live!',
  password_changed: 'Your password was changed. If this was not you, reset it now.',
};

/**
 * Stores a notification and its private `notification` event, as a batch of the
 * outbox (user_event_batches), once: returns the batch's id, or null when `id`
 * was stored already. Called in the transaction of the change it tells of, so
 * the change is never committed without it; the batch is then pushed by the
 * notification job, or, if that job is lost (enqueue refused, Redis wiped), by
 * the sweeper.
 */
export async function storeNotification(trx: Knex, n: { id: string; userId: string; kind: NotificationKind }): Promise<string | null> {
  const text = TEXT[n.kind];
  if (!(await insertNotificationOnce(trx, { id: n.id, userId: n.userId, kind: n.kind, payload: { text } }))) return null;
  return insertUserEventBatch(trx, [{ userId: n.userId, frame: { type: 'notification', id: n.id, kind: n.kind, text } }]);
}

/** The events of batch `id` while it is not yet published (null once it is, or when there is none). */
export async function unpublishedBatch(db: Knex, id: string): Promise<UserEvent[] | null> {
  const row = await db('user_event_batches').where({ id }).whereNull('published_at').first('events');
  if (!row) return null;
  const events = (typeof row.events === 'string' ? JSON.parse(row.events) : row.events) as { userId: string; event: UserEvent['frame'] }[];
  return events.map((e) => ({ userId: e.userId, frame: e.event }));
}

/** Inserts a notification once; returns false when `id` was already delivered. */
export async function insertNotificationOnce(
  db: Knex,
  input: { id: string; userId: string; kind: string; payload?: Record<string, unknown> },
): Promise<boolean> {
  const rows = await db('notifications')
    .insert({ id: input.id, user_id: input.userId, kind: input.kind, payload: JSON.stringify(input.payload ?? {}) })
    .onConflict('id')
    .ignore()
    .returning('id');
  return rows.length > 0;
}

export interface NotificationRow {
  id: string;
  user_id: string;
  kind: string;
  payload: Record<string, unknown>;
  created_at: Date;
  read_at: Date | null;
}

/** A page of a user's notifications, newest first; `before` is the keyset cursor. */
export async function listNotifications(
  db: Knex,
  userId: string,
  limit: number,
  before: { createdAt: Date; id: string } | null,
): Promise<NotificationRow[]> {
  const q = db<NotificationRow>('notifications').where({ user_id: userId });
  if (before) q.whereRaw('(created_at, id) < (?, ?)', [before.createdAt, before.id]);
  return q.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
}

export async function findNotification(db: Knex, id: string): Promise<NotificationRow | undefined> {
  return db<NotificationRow>('notifications').where({ id }).first();
}

export async function markNotificationRead(db: Knex, id: string): Promise<void> {
  await db('notifications').where({ id }).whereNull('read_at').update({ read_at: db.fn.now() });
}
