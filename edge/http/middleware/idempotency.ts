/**
 * Idempotency-Key on the write routes marked `idempotent` (API.md: write
 * endpoints that enqueue work accept one; the same key from the same user returns
 * the first response and never does the work twice). Bids and auto-bids keep
 * theirs on the bid row (services/bids.ts), which also orders them.
 *
 * The key is claimed before the route runs; the answer is stored before it is
 * sent, so a client that retries after any answer gets that answer again
 * (`Idempotent-Replayed: true`). A 5xx gives the key up, so the retry runs, and
 * so does a 400 (the request was refused before it did anything: the client may
 * correct it and send it again with the same key). The
 * same key for another request (method, path or body) is 409, and so is a retry
 * while the first is still running.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { claimKey, completeKey, findKey, releaseKey } from '../../../db/operations/idempotency.js';
import { AppError, conflict } from '../../../lib/errors.js';
import type { EdgeDeps } from '../deps.js';
import { parseIdempotencyKey } from '../services/bids.js';

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
        res.setHeader('Idempotent-Replayed', 'true');
        res.status(first.status);
        if (first.body === null) res.end();
        else res.json(first.body);
        return;
      }
      recordAnswer(res, deps, userId, key, fingerprint);
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** Stores the route's answer (status and JSON body) before it goes out. */
function recordAnswer(res: Response, deps: Pick<EdgeDeps, 'db' | 'logger'>, userId: string, key: string, fingerprint: string): void {
  const json = res.json.bind(res);
  const end = res.end.bind(res) as (...args: unknown[]) => Response;
  let recorded = false;
  const record = (body: unknown): Promise<void> =>
    (res.statusCode >= 500 || res.statusCode === 400 ? releaseKey(deps.db, userId, key, fingerprint) : completeKey(deps.db, userId, key, fingerprint, res.statusCode, body)).catch((err: unknown) => {
      // The answer still goes out; a retry finds the claim and gets 409 until it goes stale.
      deps.logger.warn({ err: (err as Error).message }, 'idempotent answer not recorded');
    });
  res.json = (body: unknown) => {
    if (recorded) return json(body);
    recorded = true;
    void record(body).then(() => json(body));
    return res;
  };
  res.end = ((...args: unknown[]) => {
    if (recorded) return end(...args);
    recorded = true;
    void record(undefined).then(() => end(...args));
    return res;
  }) as Response['end'];
}
