import type { Knex } from 'knex';
import type { Role, UserRow } from '../tables.js';

/** Inserts a user; a duplicate email raises 23505 (mapped to 409 by the edge). */
export async function insertUser(
  db: Knex,
  input: { email: string; name: string; role: Role; passwordHash: string },
): Promise<UserRow> {
  const [row] = await db<UserRow>('users')
    .insert({ email: input.email, name: input.name, role: input.role, password_hash: input.passwordHash })
    .returning('*');
  return row!;
}

export async function findUserByEmail(db: Knex, email: string): Promise<UserRow | undefined> {
  return db<UserRow>('users').where({ email }).first();
}

export async function findUserById(db: Knex, id: string): Promise<UserRow | undefined> {
  return db<UserRow>('users').where({ id }).first();
}

/** Those of `ids` that are no user's. */
export async function missingUserIds(db: Knex, ids: string[]): Promise<Set<string>> {
  const found = await db<UserRow>('users').whereIn('id', ids).pluck('id');
  const present = new Set(found);
  return new Set(ids.filter((id) => !present.has(id)));
}

export async function updatePasswordHash(db: Knex, id: string, passwordHash: string): Promise<void> {
  await db<UserRow>('users')
    .where({ id })
    .update({ password_hash: passwordHash, password_changed_at: db.fn.now(), updated_at: db.fn.now() });
}

export async function setUserRole(db: Knex, id: string, role: Role): Promise<void> {
  await db<UserRow>('users').where({ id }).update({ role, updated_at: db.fn.now() });
}

/** The public shape of a user (API.md `user`). */
export function toPublicUser(row: UserRow) {
  return { id: row.id, email: row.email, name: row.name, role: row.role, createdAt: row.created_at.toISOString() };
}
