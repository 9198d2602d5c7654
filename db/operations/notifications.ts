import type { Knex } from 'knex';

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
