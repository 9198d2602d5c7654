import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import Joi from 'joi';
import { AppError, fromPostgres } from '../../../lib/errors.js';
import type { EdgeDeps } from '../deps.js';
import type { Logger } from '../../../lib/logger.js';

const INVALID_UTF8 = 'entity.utf8.invalid';

/**
 * body-parser's `verify` for JSON bodies: a UTF-8 body (JSON text is UTF-8, RFC
 * 8259) with bytes that are not UTF-8 is refused. Decoded as it is, each such byte
 * would become U+FFFD and be stored in its place.
 */
export function refuseInvalidUtf8(_req: unknown, _res: unknown, buf: Buffer, encoding: string): void {
  if (/^utf-?8$/i.test(encoding) && !isUtf8(buf)) throw Object.assign(new Error('request body is not valid UTF-8'), { type: INVALID_UTF8 });
}

/** body-parser's error types, mapped to API errors. */
function fromBodyParser(err: unknown): AppError | null {
  const type = (err as { type?: unknown } | null)?.type;
  switch (type) {
    case 'entity.too.large':
      return new AppError('payload_too_large', 'request body is too large');
    case 'entity.parse.failed':
      return new AppError('validation_failed', 'request body is not valid JSON');
    case INVALID_UTF8:
      return new AppError('validation_failed', 'request body is not valid UTF-8');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('unsupported_media_type', 'unsupported body encoding');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
    case 'stream.not.readable':
      return new AppError('validation_failed', 'request body could not be read');
    default:
      return null;
  }
}

export function toAppError(err: unknown): AppError | null {
  if (err instanceof AppError) return err;
  if (err instanceof Joi.ValidationError) {
    return new AppError(
      'validation_failed',
      'request is not valid',
      err.details.map((d) => ({ path: d.path.join('.'), message: d.message })),
    );
  }
  return fromBodyParser(err) ?? fromClientError(err) ?? fromPostgres(err);
}

/**
 * Other errors Express raises for a bad request carry `status: 400`: a body that
 * fails to decompress, the router's URIError for a malformed %-escape in a path
 * parameter. They are the client's fault: 400, not 500 (library message withheld).
 */
function fromClientError(err: unknown): AppError | null {
  return (err as { status?: unknown } | null)?.status === 400 ? new AppError('validation_failed', 'the request could not be read') : null;
}

export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: string; message: string; details?: unknown } };
}

/**
 * The one place errors become HTTP: the status and envelope of API.md, never a
 * stack trace, SQL or library message. Unknown errors are 500 `internal` with an
 * error id that is also in the log. Used by the Express app and the bid fast path.
 */
export function errorResponse(deps: Pick<EdgeDeps, 'metrics'>, err: unknown, log: Pick<Logger, 'error' | 'warn'> | undefined): ErrorResponse {
  let appErr = toAppError(err);
  if (!appErr) {
    const errorId = randomUUID();
    log?.error({ err, errorId }, 'unhandled error');
    appErr = new AppError('internal', `internal error (id ${errorId})`);
  } else if (appErr.status >= 500) {
    log?.warn({ err }, 'request failed');
  }
  deps.metrics.errors.inc({ code: appErr.code, status: String(appErr.status) });
  const body: ErrorResponse['body'] = { error: { code: appErr.code, message: appErr.message } };
  if (appErr.details?.length) body.error.details = appErr.details;
  return { status: appErr.status, headers: appErr.headers ?? {}, body };
}

export function errorHandler(deps: EdgeDeps): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const out = errorResponse(deps, err, req.log);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    for (const [k, v] of Object.entries(out.headers)) res.setHeader(k, v);
    res.status(out.status).json(out.body);
  };
}

export const notFoundHandler: RequestHandler = (_req, _res, next) => {
  next(new AppError('not_found', 'no such route'));
};
