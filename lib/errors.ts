/**
 * One error hierarchy with stable codes; edge/http/middleware/error-handler.ts maps
 * it to HTTP in one place. Tests assert on `code`, never on message text.
 */
export type ErrorCode =
  | 'validation_failed'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'service_unavailable'
  | 'internal';

const STATUS: Record<ErrorCode, number> = {
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  service_unavailable: 503,
  internal: 500,
};

export interface ErrorDetail {
  path?: string;
  message: string;
}

export class AppError extends Error {
  override name = 'AppError';
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.status = STATUS[code];
  }
}

export const notFound = (what = 'resource') => new AppError('not_found', `${what} not found`);
export const unauthorized = (message = 'authentication required') => new AppError('unauthorized', message);
export const forbidden = (message = 'not allowed') => new AppError('forbidden', message);
export const conflict = (message: string) => new AppError('conflict', message);

/**
 * Postgres error codes mapped to API errors; the pool running dry (every
 * connection busy past the acquire timeout) and a database that cannot be reached
 * are a 503 the client may retry.
 */
export function fromPostgres(err: unknown): AppError | null {
  if ((err as { name?: unknown } | null)?.name === 'KnexTimeoutError') {
    return new AppError('service_unavailable', 'the service is busy, try again');
  }
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case '23505':
      return conflict('already exists');
    case '23503':
      return new AppError('validation_failed', 'a referenced resource does not exist');
    case '22P02':
      return new AppError('validation_failed', 'malformed identifier');
    case '22021': // character_not_in_repertoire: a NUL in a string
      return new AppError('validation_failed', 'text must not contain NUL characters');
    case '22003': // numeric_value_out_of_range
      return new AppError('validation_failed', 'a number is out of range');
    case '22007': // invalid_datetime_format
    case '22008': // datetime_field_overflow
    case '22009': // invalid_time_zone_displacement_value
      return new AppError('validation_failed', 'a date or time is out of range or malformed');
    case '57014':
      return new AppError('service_unavailable', 'the request took too long, try again');
    case '40P01': // deadlock detected
    case '40001': // serialization failure
      return new AppError('service_unavailable', 'the request conflicted with another, try again');
    default:
      return lostConnection(code, (err as { message?: unknown } | null)?.message) ? new AppError('service_unavailable', 'a service the request needs is unavailable, try again') : null;
  }
}

/** Socket error codes of a connection that cannot be made or was lost (to Postgres or Redis). */
export const SOCKET_ERROR_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * True for a database that is down, restarting or out of connections, which a
 * client may retry: Postgres's class 08 (connection exception), 57P01-57P03 (a
 * server shutting down or starting), 53300 (too many connections), a socket
 * error, and node-postgres's own messages for a connection ended under it. (A
 * socket error is taken as the database's: it is the only server the request
 * paths reach that throws them as they are; Redis's failures come as ioredis's
 * own errors, mapped where they are caught.)
 */
function lostConnection(code: unknown, message: unknown): boolean {
  // 08P01 (protocol violation) is in class 08 but a bug, not an outage: a retry fails alike.
  if (typeof code === 'string' && ((code.startsWith('08') && code !== '08P01') || ['57P01', '57P02', '57P03', '53300'].includes(code) || SOCKET_ERROR_CODES.has(code))) return true;
  return typeof message === 'string' && /^Connection terminated|^Client has encountered a connection error|^Connection ended unexpectedly/.test(message);
}
