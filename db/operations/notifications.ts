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
