/**
 * Opaque keyset cursors: base64url of a small JSON tuple. A cursor that does not
 * decode to the expected shape is a 400, never a 500.
 */
import Joi from 'joi';
import { AppError } from '../../lib/errors.js';

export const limitSchema = () => Joi.number().integer().min(1).max(100).default(20);
export const cursorSchema = () => Joi.string().max(512).pattern(/^[A-Za-z0-9_-]+$/);

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(cursor: string | undefined, schema: Joi.Schema<T>): T | null {
  if (cursor === undefined) return null;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    const { value, error } = schema.validate(parsed, { convert: false });
    if (!error) return value;
  } catch {
    /* fall through */
  }
  throw new AppError('validation_failed', 'malformed cursor', [{ path: 'query.cursor', message: 'is not a cursor this API issued' }]);
}

/** A page from `rows` fetched with `limit + 1`: the data, and a cursor when there is more. */
export function pageOf<T>(rows: T[], limit: number, cursorOf: (last: T) => unknown): { data: T[]; nextCursor: string | null } {
  const data = rows.slice(0, limit);
  const last = data[data.length - 1];
  return { data, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(cursorOf(last)) : null };
}
