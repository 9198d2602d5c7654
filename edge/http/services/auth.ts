/**
 * Accounts and sessions. A session is a refresh-token family: login starts one,
 * every refresh rotates within it, reuse of a rotated token revokes it, logout and
 * change-password revoke families. Access tokens are short-lived RS256 JWTs.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';

// @node-rs/argon2's Algorithm.Argon2id (a const enum, which isolated modules cannot read).
const ARGON2ID = 2;
import type { Knex } from 'knex';
import { AppError, conflict, unauthorized } from '../../../lib/errors.js';
import { signAccessToken } from '../../../lib/jwt.js';
import type { Role, UserRow } from '../../../db/tables.js';
import { findUserByEmail, findUserById, insertUser, toPublicUser, updatePasswordHash } from '../../../db/operations/users.js';
import {
  insertRefreshToken,
  lockRefreshToken,
  lockUserSessions,
  markRefreshTokenUsed,
  refreshTokenOwner,
  revokeFamily,
  revokeOtherFamilies,
} from '../../../db/operations/refresh-tokens.js';
import { storeNotification } from '../../../db/operations/notifications.js';
import type { JobPayloads } from '../../../queues/jobs.js';
import type { EdgeDeps } from '../deps.js';
import type { Config } from '../../../lib/env.js';

export interface Session {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export function hashPassword(config: Config, password: string): Promise<string> {
  return argon2Hash(password, { algorithm: ARGON2ID, ...config.passwordHash });
}

/** Checks a password against an argon2 hash; false for a malformed hash. */
export async function checkPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2Verify(hash, password);
  } catch {
    return false;
  }
}

// Verified against when the email is unknown, so both failures take as long.
let dummyHash: Promise<string> | undefined;

async function verifyPassword(config: Config, hash: string | undefined, password: string): Promise<boolean> {
  dummyHash ??= hashPassword(config, randomUUID());
  const ok = await checkPassword(hash ?? (await dummyHash), password);
  return ok && hash !== undefined;
}

async function startSession(deps: EdgeDeps, trx: Knex, user: UserRow, familyId: string = randomUUID()): Promise<Session> {
  const refreshToken = randomBytes(32).toString('base64url');
  await insertRefreshToken(trx, {
    userId: user.id,
    familyId,
    tokenHash: sha256(refreshToken),
    ttlSeconds: deps.config.jwt.refreshTtlSeconds,
  });
  const accessToken = signAccessToken(deps.keys, deps.config, { id: user.id, role: user.role, name: user.name, sid: familyId });
  return { accessToken, refreshToken, expiresIn: deps.config.jwt.accessTtlSeconds };
}

type Notice = JobPayloads['notification.send'];

/** Stores a notification in the transaction of the change it tells of (see storeNotification); push it with notify() after the commit. */
async function storeNotice(trx: Knex, userId: string, kind: Notice['kind']): Promise<Notice> {
  const notificationId = randomUUID();
  const batchId = await storeNotification(trx, { id: notificationId, userId, kind });
  return { notificationId, userId, kind, ...(batchId ? { batchId } : {}) };
}

async function notify(deps: EdgeDeps, notice: Notice): Promise<void> {
  try {
    await deps.producer.enqueue('notification.send', notice);
  } catch (err) {
    // Stored with the change; the sweeper pushes it.
    deps.logger.warn({ err, userId: notice.userId, kind: notice.kind }, 'notification not enqueued; the sweeper will push it');
  }
}

export async function register(deps: EdgeDeps, input: { email: string; password: string; name: string; role: Role }) {
  const passwordHash = await hashPassword(deps.config, input.password);
  const result = await deps.db.transaction(async (trx) => {
    const existing = await findUserByEmail(trx, input.email);
    if (existing) throw conflict('an account with this email already exists');
    const user = await insertUser(trx, { email: input.email, name: input.name, role: input.role, passwordHash });
    return { user, session: await startSession(deps, trx, user), notice: await storeNotice(trx, user.id, 'welcome') };
  });
  await notify(deps, result.notice);
  return { user: toPublicUser(result.user), ...result.session };
}

function failedLoginKey(deps: EdgeDeps, email: string): string {
  return `${deps.config.redis.prefix}:auth:failed:${sha256(email)}`;
}

/**
 * Counts a login attempt against the account's hourly budget of failures before
 * the password is checked, and refuses with 429 past it. Counted first, in one
 * step: checked first and counted after the (slow) password check, parallel
 * wrong guesses all passed the check before any was counted. A successful login
 * clears the count (so it never counts against the budget).
 */
async function takeLoginAttempt(deps: EdgeDeps, email: string): Promise<void> {
  let attempts: number;
  let ttl: number;
  try {
    const key = failedLoginKey(deps, email);
    const replies = (await deps.redis.multi().incr(key).expire(key, 3600, 'NX').ttl(key).exec()) ?? [];
    attempts = Number(replies[0]?.[1]);
    ttl = Number(replies[2]?.[1]);
  } catch (err) {
    deps.logger.warn({ err }, 'failed-login counter unavailable');
    return;
  }
  if (attempts > deps.config.rateLimits.failedLoginsPerHour) {
    throw new AppError('rate_limited', 'too many failed logins for this account, try again later', undefined, {
      'Retry-After': String(Math.max(1, ttl)),
    });
  }
}

/**
 * The user these credentials are of: counted against the account's failed-login
 * budget first (429 past it), the same work whether the email exists or not,
 * 401 for either mistake. Shared by the API's login and the admin console's.
 */
export async function authenticate(deps: EdgeDeps, email: string, password: string): Promise<UserRow> {
  await takeLoginAttempt(deps, email);
  const user = await findUserByEmail(deps.db, email);
  const ok = await verifyPassword(deps.config, user?.password_hash, password);
  if (!user || !ok) throw unauthorized('invalid email or password');
  await deps.redis.del(failedLoginKey(deps, email)).catch(() => undefined);
  return user;
}

export async function login(deps: EdgeDeps, input: { email: string; password: string }) {
  const user = await authenticate(deps, input.email, input.password);
  const session = await deps.db.transaction(async (trx) => {
    // After a password change that committed since the check above, the old
    // password opens no session (the change revoked the others; this one would survive it).
    await lockUserSessions(trx, user.id);
    const now = await findUserById(trx, user.id);
    if (!now || now.password_hash !== user.password_hash) throw unauthorized('invalid email or password');
    return startSession(deps, trx, user);
  });
  return { user: toPublicUser(user), ...session };
}

/**
 * Rotates a refresh token. The row is locked, so two concurrent refreshes with one
 * token serialize: the first rotates, the second is a reuse and revokes the family.
 */
export async function refresh(deps: EdgeDeps, refreshToken: string): Promise<Session> {
  const hash = sha256(refreshToken);
  const owner = await refreshTokenOwner(deps.db, hash);
  if (!owner) throw unauthorized('invalid refresh token');
  const outcome = await deps.db.transaction(async (trx) => {
    await lockUserSessions(trx, owner);
    const row = await lockRefreshToken(trx, hash);
    if (!row) return { error: 'invalid refresh token' } as const;
    if (row.used_at || row.revoked_at) {
      await revokeFamily(trx, row.family_id, 'reuse');
      return { error: 'refresh token already used; the session is revoked', familyRevoked: row.family_id } as const;
    }
    if (row.expired) return { error: 'refresh token expired' } as const;
    const user = await findUserById(trx, row.user_id);
    if (!user) return { error: 'invalid refresh token' } as const;
    await markRefreshTokenUsed(trx, row.id);
    return { session: await startSession(deps, trx, user, row.family_id) } as const;
  });
  if ('error' in outcome) {
    if ('familyRevoked' in outcome) deps.logger.warn({ familyId: outcome.familyRevoked }, 'refresh token reuse: family revoked');
    throw unauthorized(outcome.error);
  }
  return outcome.session;
}

/** Ends the session the refresh token belongs to, if it is the caller's. */
export async function logout(deps: EdgeDeps, userId: string, refreshToken: string): Promise<void> {
  await deps.db.transaction(async (trx) => {
    await lockUserSessions(trx, userId);
    const row = await lockRefreshToken(trx, sha256(refreshToken));
    if (row && row.user_id === userId) await revokeFamily(trx, row.family_id, 'logout');
  });
}

export async function changePassword(
  deps: EdgeDeps,
  caller: { id: string; sid: string },
  input: { currentPassword: string; newPassword: string },
): Promise<void> {
  const user = await findUserById(deps.db, caller.id);
  if (!user) throw unauthorized();
  // Counted against the account's failed-login budget, as a login is: a stolen
  // access token must not buy unlimited guesses at the password.
  try {
    await authenticate(deps, user.email, input.currentPassword);
  } catch (err) {
    if (err instanceof AppError && err.code === 'unauthorized') {
      throw new AppError('validation_failed', 'current password is wrong', [{ path: 'body.currentPassword', message: 'does not match' }]);
    }
    throw err;
  }
  const hash = await hashPassword(deps.config, input.newPassword);
  const notice = await deps.db.transaction(async (trx) => {
    await lockUserSessions(trx, user.id);
    await updatePasswordHash(trx, user.id, hash);
    await revokeOtherFamilies(trx, user.id, caller.sid, 'password_changed');
    return storeNotice(trx, user.id, 'password_changed');
  });
  await notify(deps, notice);
}

export async function profile(deps: EdgeDeps, userId: string) {
  const user = await findUserById(deps.db, userId);
  if (!user) throw unauthorized('this account no longer exists');
  return toPublicUser(user);
}
