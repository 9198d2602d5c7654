import type { Knex } from 'knex';
import type { RefreshTokenRow } from '../tables.js';
import { withArrayLiterals } from '../arrays.js';

export async function insertRefreshToken(
  trx: Knex,
  input: { userId: string; familyId: string; tokenHash: string; ttlSeconds: number },
): Promise<void> {
  await trx<RefreshTokenRow>('refresh_tokens').insert({
    user_id: input.userId,
    family_id: input.familyId,
    token_hash: input.tokenHash,
    expires_at: trx.raw(`clock_timestamp() + make_interval(secs => ?)`, [input.ttlSeconds]) as unknown as Date,
  });
}

/**
 * Serializes a user's session changes (refresh, logout, reuse revocation,
 * password change, login), for the rest of `trx`: taken first, before any
 * token's row lock, everywhere. Without it, a revocation (an UPDATE over the
 * user's or the family's tokens) that waited for a refresh in flight saw the
 * token it had rotated but not the new one the refresh inserted, which stayed
 * valid: a thief refreshing in a loop survived reuse detection, logout and the
 * victim's password change. An advisory lock, not the users row: a row lock
 * would also stop that user's bids (their foreign-key checks) meanwhile.
 */
export async function lockUserSessions(trx: Knex.Transaction, userId: string): Promise<void> {
  await trx.raw("select pg_advisory_xact_lock(hashtextextended('sessions:' || ?::text, 0))", [userId]);
}

/** The user a refresh token belongs to, read without a lock (to take lockUserSessions first). */
export async function refreshTokenOwner(db: Knex, tokenHash: string): Promise<string | undefined> {
  const row = await db<RefreshTokenRow>('refresh_tokens').where({ token_hash: tokenHash }).first('user_id');
  return row?.user_id;
}

/** Locks the token's row for the rest of `trx` (concurrent rotations serialize); take lockUserSessions first. */
export async function lockRefreshToken(trx: Knex.Transaction, tokenHash: string): Promise<(RefreshTokenRow & { expired: boolean }) | undefined> {
  return trx<RefreshTokenRow>('refresh_tokens')
    .select('*', trx.raw('expires_at <= clock_timestamp() as expired'))
    .where({ token_hash: tokenHash })
    .forUpdate()
    .first() as Promise<(RefreshTokenRow & { expired: boolean }) | undefined>;
}

export async function markRefreshTokenUsed(trx: Knex, id: string): Promise<void> {
  await trx<RefreshTokenRow>('refresh_tokens').where({ id }).update({ used_at: trx.raw('clock_timestamp()') as unknown as Date });
}

export async function revokeFamily(db: Knex, familyId: string, reason: string): Promise<number> {
  return db<RefreshTokenRow>('refresh_tokens')
    .where({ family_id: familyId })
    .whereNull('revoked_at')
    .update({ revoked_at: db.raw('clock_timestamp()') as unknown as Date, revoked_reason: reason });
}

/**
 * Of the sessions `sids` (refresh-token families, the `sid` of access tokens,
 * UUIDs: claimsFromPayload checks), those that have ended: no token of theirs
 * is left unrevoked (logout, a password change elsewhere, a reused token), or
 * none is left at all (the account deleted).
 */
export async function endedSessions(db: Knex, sids: readonly string[]): Promise<Set<string>> {
  const ended = new Set<string>();
  const ids = [...new Set(sids)];
  if (ids.length === 0) return ended;
  const { rows } = (await db.raw(
    `select s.sid from unnest(?::uuid[]) as s(sid)
      where not exists (select 1 from refresh_tokens r where r.family_id = s.sid and r.revoked_at is null)`,
    withArrayLiterals([ids]) as Knex.RawBinding[],
  )) as { rows: { sid: string }[] };
  for (const r of rows) ended.add(r.sid);
  return ended;
}

/** Revokes every session of a user except `keepFamilyId` (change-password). */
export async function revokeOtherFamilies(db: Knex, userId: string, keepFamilyId: string | null, reason: string): Promise<number> {
  const q = db<RefreshTokenRow>('refresh_tokens').where({ user_id: userId }).whereNull('revoked_at');
  if (keepFamilyId) q.whereNot({ family_id: keepFamilyId });
  return q.update({ revoked_at: db.raw('clock_timestamp()') as unknown as Date, revoked_reason: reason });
}
