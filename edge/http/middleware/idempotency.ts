/**
 * Idempotency-Key on the write routes marked `idempotent: 'stored'` (API.md:
 * write endpoints that enqueue work accept one; the same key from the same user
 * returns the first response and never does the work twice). Bids and auto-bids
 * keep theirs on the bid row (services/bids.ts), which also orders them.
 *
 * The key is claimed before the route runs; the answer (status, Content-Type,
 * Location, body) is stored before it is sent, so a client that retries after any
 * answer gets that answer again (`Idempotent-Replayed: true`). A 5xx gives the key
 * up, so the retry runs, and so does a 400 (the request was refused before it did
 * anything: the client may correct it and send it again with the same key). The
 * same key for another request (method, path or body) is 409, and so is a retry
 * while the first is still running.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { claimKey, completeKey, findKey, releaseKey } from '../../../db/operations/idempotency.js';
import { AppError, conflict } from '../../../lib/errors.js';
import type { EdgeDeps } from '../deps.js';
import { parseIdempotencyKey } from '../services/bids.js';

/** The headers of an answer that are stored and replayed with it. */
const KEPT_HEADERS = ['content-type', 'location'];
/** Waits before the tries of recording an answer (see recordAnswer). */
const RECORD_RETRIES_MS = [100, 400, 1_500];

export function idempotency(deps: Pick<EdgeDeps, 'db' | 'logger'>): RequestHandler {
  return async (req, res, next) => {
    const header = req.get('idempotency-key');
    if (header === undefined || !req.user) return next();
    try {
      const key = parseIdempotencyKey(header)!;
      const userId = req.user.id;
      // Ids are case-insensitive (an upper-case UUID is the same auction).
      const fingerprint = createHash('sha256')
        .update(`${req.method} ${(req.baseUrl + req.path).toLowerCase()}\n${JSON.stringify(req.body ?? null)}`)
        .digest('base64url');
      if (!(await claimKey(deps.db, userId, key, fingerprint))) {
        const first = await findKey(deps.db, userId, key);
        // (Gone between the two statements: it had just expired.)
        if (!first) throw new AppError('conflict', 'this Idempotency-Key was just released, send the request again');
        if (first.fingerprint !== fingerprint) throw conflict('this Idempotency-Key was used for a different request');
        if (first.status === null) throw conflict('a request with this Idempotency-Key is still being processed');
        res.status(first.status);
        for (const [name, value] of Object.entries(first.headers ?? {})) res.setHeader(name, value);
        res.setHeader('Idempotent-Replayed', 'true');
        res.end(first.body ?? undefined);
        return;
      }
      recordAnswer(res, deps, userId, key, fingerprint);
      next();
    } catch (err) {
      next(err);
    }
  };
}

/**
 * Stores the route's answer before it goes out: `res.end` (which every way of
 * answering ends in) waits for the record. A record that fails is tried again: if
 * it never lands, the claim stays unanswered, retries get 409 and, a minute later,
 * run the route again (which then answers from the state the first left).
 */
function recordAnswer(res: Response, deps: Pick<EdgeDeps, 'db' | 'logger'>, userId: string, key: string, fingerprint: string): void {
  const end = res.end.bind(res) as (...args: unknown[]) => Response;
  let recorded = false;
  const record = async (chunk: unknown, encoding: unknown): Promise<void> => {
    const status = res.statusCode;
    const headers: Record<string, string> = {};
    for (const name of KEPT_HEADERS) {
      const value = res.getHeader(name);
      if (value !== undefined) headers[name] = String(value);
    }
    const body =
      chunk === undefined || chunk === null || typeof chunk === 'function'
        ? null
        : Buffer.isBuffer(chunk)
          ? chunk.toString('utf8')
          : String(chunk instanceof Uint8Array ? Buffer.from(chunk).toString((encoding as BufferEncoding) ?? 'utf8') : chunk);
    for (let attempt = 0; ; attempt++) {
      try {
        if (status >= 500 || status === 400) await releaseKey(deps.db, userId, key, fingerprint);
        else await completeKey(deps.db, userId, key, fingerprint, { status, headers, body });
        return;
      } catch (err) {
        if (attempt >= RECORD_RETRIES_MS.length) {
          deps.logger.error({ err: (err as Error).message, status }, 'idempotent answer not recorded; a retry of this key gets 409');
          return;
        }
        await new Promise((r) => setTimeout(r, RECORD_RETRIES_MS[attempt]));
      }
    }
  };
  res.end = ((...args: unknown[]) => {
    if (recorded) return end(...args);
    recorded = true;
    void record(args[0], args[1]).then(() => {
      // Answered meanwhile some other way (the socket closed, say): nothing to send.
      if (!res.writableEnded) end(...args);
    });
    return res;
  }) as Response['end'];
}
