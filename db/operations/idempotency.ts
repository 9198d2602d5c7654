/**
 * Idempotency-Key records of the write endpoints other than bids (table
 * idempotent_requests; bids keep theirs on the bid row).
 */
import type { Knex } from 'knex';

/** How long a key is remembered. */
export const KEY_TTL = '24 hours';
/**
 * A claim with no answer after this long was left by a request whose process
 * died mid-way: the same request may then run again (its work may have been done;
 * the endpoints taking keys re-check their state: a second start or end is
 * refused or answers the state as it is).
 */
export const STALE_CLAIM = '60 seconds';

export interface StoredAnswer {
  fingerprint: string;
  status: number | null;
  headers: Record<string, string> | null;
  body: string | null;
}

/**
 * Claims (userId, key) for a request: true when it is new, or expired, or a stale
 * claim of the same request; false when a record stands (read it with findKey).
 */
export async function claimKey(db: Knex, userId: string, key: string, fingerprint: string): Promise<boolean> {
  const { rows } = await db.raw(
    `insert into idempotent_requests (user_id, key, fingerprint) values (?, ?, ?)
     on conflict (user_id, key) do update
       set fingerprint = excluded.fingerprint, status = null, headers = null, body = null, created_at = clock_timestamp()
       where idempotent_requests.created_at < clock_timestamp() - interval '${KEY_TTL}'
          or (idempotent_requests.status is null and idempotent_requests.fingerprint = excluded.fingerprint
              and idempotent_requests.created_at < clock_timestamp() - interval '${STALE_CLAIM}')
     returning 1 as claimed`,
    [userId, key, fingerprint],
  );
  return rows.length === 1;
}

export async function findKey(db: Knex, userId: string, key: string): Promise<StoredAnswer | undefined> {
  const row = await db('idempotent_requests').where({ user_id: userId, key }).first('fingerprint', 'status', 'headers', 'body');
  return row ? { fingerprint: row.fingerprint, status: row.status === null ? null : Number(row.status), headers: row.headers, body: row.body } : undefined;
}

/** Records the answer of a claimed key (a body of null: none, as a 204's). */
export async function completeKey(
  db: Knex,
  userId: string,
  key: string,
  fingerprint: string,
  answer: { status: number; headers: Record<string, string>; body: string | null },
): Promise<void> {
  await db('idempotent_requests')
    .where({ user_id: userId, key, fingerprint })
    .whereNull('status')
    .update({ status: answer.status, headers: JSON.stringify(answer.headers), body: answer.body });
}

/** Gives a claimed key up (the request failed with a 5xx: a retry may run it). */
export async function releaseKey(db: Knex, userId: string, key: string, fingerprint: string): Promise<void> {
  await db('idempotent_requests').where({ user_id: userId, key, fingerprint }).whereNull('status').del();
}

/** Deletes up to `limit` expired records; returns how many. */
export async function purgeExpiredKeys(db: Knex, limit = 5_000): Promise<number> {
  const { rowCount } = await db.raw(
    `delete from idempotent_requests where ctid = any(array(
       select ctid from idempotent_requests where created_at < clock_timestamp() - interval '${KEY_TTL}' limit ?))`,
    [limit],
  );
  return rowCount ?? 0;
}
