/**
 * The bid fast path: POST /api/v1/auctions/:id/bid and /autobid, served ahead of
 * Express's router.
 *
 * Why: bids are the hottest route by far, and under bid load the edge was the
 * bottleneck of the whole pipeline. Express 5's per-request machinery (a router
 * walk through every layer, request/response decoration, pino-http's child logger,
 * body-parser's stream plumbing, passport) cost more CPU than everything the route
 * itself does: on the 2-core benchmark machine an empty Express POST route answers
 * about 3,900 requests/s where plain node:http answers 18,000. See README,
 * Performance, for what this path changed end to end.
 *
 * What it does is what the Express route does, step for step and in the same
 * order, with the same building blocks (helmet's headers, recorded once, and the
 * CORS middleware, the joi schemas of the route, the same token verification, the
 * same limiter keys and windows, the same error envelope), so a request gets the
 * same answer either way; test/edge/fast-bids.test.ts sends each case both ways
 * and compares. A plain lowercase id and a body of one in-range integer skip joi,
 * which accepts them unchanged (test/edge/fast-bids-parts.test.ts).
 * The differences: no ETag on the 202 (meaningless on a POST), and, for a token
 * already verified, both rate limits are counted in one Redis round trip, so a
 * bid refused by the IP limit still counts against its bidder's bid budget.
 *
 * It takes plain requests only: POST to the exact path with a lowercase or
 * uppercase UUID, no query string, Content-Type application/json (UTF-8), a
 * Content-Length of at most 4 KiB, no Content-Encoding, and in production a
 * secure (TLS-terminated) one. Anything else goes to Express, which answers as
 * it always has (redirects, 415, 413, chunked bodies, gzip, odd paths).
 */
import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, RequestHandler } from 'express';
import type Joi from 'joi';
import { AppError, unauthorized } from '../../lib/errors.js';
import { tokenVerifier, type AccessClaims } from '../../lib/jwt.js';
import type { Redis } from '../../lib/redis.js';
import type { EdgeDeps } from './deps.js';
import { errorResponse } from './middleware/error-handler.js';
import { limitCounter, limitKey, type LimitCheck, type LimitResult } from './middleware/rate-limit.js';
import { corsPolicy, securityHeaderWriter, securityHeaders } from './middleware/security.js';
import { assignRequestId, requestLogLevel } from './request-id.js';
import { BODY_OPTIONS, URL_OPTIONS, validatePart } from './route.js';
import { MONEY_MAX, UUID_PATTERN } from './schemas.js';
import { bidBodies, idParams } from './routes/auctions.js';
import { bidService, parseIdempotencyKey } from './services/bids.js';

const PATH = /^\/api\/v1\/auctions\/([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\/(bid|autobid)$/;
const JSON_TYPE = /^application\/json[ \t]*(;[ \t]*charset[ \t]*=[ \t]*"?utf-8"?[ \t]*)?$/i;
const MAX_BODY = 4096;
const UNIT: Record<string, number> = { b: 1, kb: 1024, mb: 1024 * 1024 };
const BEARER = /^Bearer [A-Za-z0-9_\-.]+$/i;

type Kind = 'bid' | 'autobid';
/** Per route: the body's amount field and the answer's id field (as in API.md). */
const KINDS = { bid: { amountField: 'amount', idField: 'bidId' }, autobid: { amountField: 'maxAmount', idField: 'autobidId' } } as const;

/**
 * The amount of a body that joi's bid schema (money(), strict, no unknown keys)
 * certainly accepts unchanged: a plain object whose only key is `field`, holding
 * an integer within money's bounds. Anything else returns undefined and goes
 * through joi, which gives the answer and the error details. Saves joi's
 * per-call state (a tenth of the edge's allocations per bid); a test checks that
 * joi agrees on everything this accepts.
 */
export function plainAmount(body: unknown, field: string): number | undefined {
  if (typeof body !== 'object' || body === null || Object.getPrototypeOf(body) !== Object.prototype) return undefined;
  let keys = 0;
  for (const key in body) {
    if (++keys > 1 || key !== field) return undefined;
  }
  const amount = (body as Record<string, unknown>)[field];
  return typeof amount === 'number' && Number.isInteger(amount) && amount >= 1 && amount <= MONEY_MAX ? amount : undefined;
}

/**
 * Runs connect-style middleware (helmet, cors) on a raw request. Both call next()
 * before they return: then there is nothing to wait for and no promise is made
 * (undefined; a middleware's error is thrown). A middleware that calls next()
 * later is waited for through the promise returned. As with a promise, the first
 * call of next() decides, and a throw after it is ignored.
 */
export function runMiddleware(mw: RequestHandler, req: IncomingMessage, res: ServerResponse): Promise<void> | undefined {
  let sync = true;
  let called = false;
  let error: unknown;
  let settle: ((err?: unknown) => void) | undefined;
  try {
    (mw as unknown as (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void)(req, res, (err?: unknown) => {
      if (called) return;
      called = true;
      if (sync) error = err;
      else settle?.(err);
    });
  } catch (err) {
    if (!called) throw err;
  }
  sync = false;
  if (called) {
    if (error) throw error;
    return undefined;
  }
  return new Promise((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
}

/** Reads the (small, Content-Length-framed) body. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** body-parser's json() with `strict`: an empty body is {}, anything but an object or array is refused. */
function parseJson(buf: Buffer): unknown {
  if (!isUtf8(buf)) throw new AppError('validation_failed', 'request body is not valid UTF-8');
  let text = buf.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // iconv strips a BOM there too
  if (text.length === 0) return {};
  const first = /^[\x20\x09\x0a\x0d]*([^\x20\x09\x0a\x0d])/.exec(text)?.[1];
  if (first !== '{' && first !== '[') throw new AppError('validation_failed', 'request body is not valid JSON');
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError('validation_failed', 'request body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const json = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}

function setHeaders(res: ServerResponse, headers: Record<string, string>): void {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
}

/**
 * `limitRedis` is a connection of the fast path's own, with auto-pipelining: the
 * limit checks of all requests in one turn of the event loop go to Redis in one
 * write, and its pipelines stay cheap (a pipeline copies every script defined on
 * its connection, and BullMQ defines dozens on the shared one).
 *
 * Returns a function that serves the request and returns true when it is a plain
 * bid request, and returns false without touching it otherwise.
 */
export function createBidFastPath(deps: EdgeDeps, app: Express, limitRedis: Redis): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { config, metrics, logger } = deps;
  const helmet = securityHeaders(config);
  const writeSecurityHeaders = securityHeaderWriter(config);
  const cors = corsPolicy(config);
  const limits = limitCounter({ ...deps, redis: limitRedis });
  const tokens = tokenVerifier(deps.keys, config);
  const bids = bidService(deps);
  const production = config.env === 'production';
  // Bodies over BODY_LIMIT go to Express, which answers 413.
  const [, n, unit] = /^(\d+)(b|kb|mb)$/.exec(config.bodyLimit) ?? [, '102400', 'b'];
  const maxBody = Math.min(MAX_BODY, Number(n) * UNIT[unit!]!);
  // Express's request prototype gives req.ip and req.secure with the app's `trust proxy`.
  const proto = app.request as object;

  async function serve(req: IncomingMessage & { ip?: string; secure?: boolean }, res: ServerResponse, auctionId: string, kind: Kind, start: bigint) {
    const reqId = assignRequestId(req, res);
    // As Express labels it: 'unmatched' until the request would reach the route.
    let route = 'unmatched';
    res.once('finish', () => {
      const status = res.statusCode;
      const labels = { method: 'POST', route, status: String(status) };
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      metrics.requests.inc(labels);
      metrics.duration.observe(labels, seconds);
      const level = requestLogLevel(status, false);
      if (logger.isLevelEnabled(level)) {
        logger[level]({ reqId, req: { id: reqId, method: 'POST', url: req.url, remoteAddress: req.socket.remoteAddress }, res: { statusCode: status }, responseTime: Math.round(seconds * 1000) }, 'request completed');
      }
    });
    try {
      if (writeSecurityHeaders) writeSecurityHeaders(res);
      else {
        const headersSet = runMiddleware(helmet, req, res);
        if (headersSet) await headersSet;
      }
      const corsSet = runMiddleware(cors, req, res);
      if (corsSet) await corsSet;

      // What the limit checks need first; the verdicts are then taken in the
      // Express chain's order.
      let raw: Buffer;
      try {
        raw = await readBody(req);
      } catch {
        return; // the client went away mid-body: nobody to answer
      }
      let body: unknown;
      let bodyError: unknown;
      try {
        body = parseJson(raw);
      } catch (err) {
        bodyError = err;
      }
      const ipCheck: LimitCheck = { name: 'ip', key: limitKey('ip', req.ip, undefined), limit: config.rateLimits.generalPerMinute };
      const header = req.headers.authorization;
      const token = header && BEARER.test(header) ? header.slice(7) : null;
      // A token not seen before costs a signature check: then the IP limit is
      // counted first, on its own, as in the Express chain, so that a client over
      // its limit cannot make the edge verify signatures. Otherwise (the usual
      // case) both limits are counted in one round trip.
      let ip: LimitResult | undefined;
      if (token !== null && !tokens.remembered(token)) [ip] = await limits([ipCheck]);
      let user: AccessClaims | null = null;
      let authError: AppError | null = null;
      if (header) {
        if (token === null) authError = unauthorized('malformed Authorization header');
        else if (!ip?.limited && !(user = tokens.verify(token))) authError = unauthorized('invalid or expired access token');
      }
      const checks: LimitCheck[] = ip ? [] : [ipCheck];
      if (user && bodyError === undefined) checks.push({ name: 'bids', key: limitKey('user', req.ip, user.id), limit: config.rateLimits.bidsPerMinute });
      const results = checks.length ? await limits(checks) : [];
      ip ??= results.shift()!;
      const bid = results[0];

      setHeaders(res, ip.headers);
      if (ip.limited) throw limited('ip', ip);
      if (bodyError !== undefined) throw bodyError;
      if (authError) throw authError;
      route = `/api/v1/auctions/:id/${kind}`;
      if (!user) throw unauthorized();
      if (bid) {
        setHeaders(res, bid.headers);
        if (bid.limited) throw limited('bids', bid);
      }
      // A lowercase id and a body of one integer amount are what joi accepts
      // unchanged; anything else gets joi's own answer.
      const id = UUID_PATTERN.test(auctionId) ? auctionId : validatePart(idParams, { id: auctionId }, URL_OPTIONS, 'params').id;
      const { amountField, idField } = KINDS[kind];
      const amount =
        plainAmount(body, amountField) ??
        validatePart(bidBodies[kind] as Joi.ObjectSchema<Record<string, number>>, body, BODY_OPTIONS, 'body')[amountField]!;
      const key = parseIdempotencyKey(req.headers['idempotency-key'] as string | undefined);
      send(res, 202, { [idField]: await bids.take(user, id, kind, amount, key), status: 'queued' });
    } catch (err) {
      const out = errorResponse(deps, err, logger.child({ reqId }));
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      setHeaders(res, out.headers);
      send(res, out.status, out.body);
    }
  }

  function limited(name: string, r: LimitResult): AppError {
    metrics.rateLimited.inc({ limit: name });
    return new AppError('rate_limited', 'too many requests, slow down', undefined, { 'Retry-After': String(r.retryAfter) });
  }

  return (req, res) => {
    if (req.method !== 'POST') return false;
    const m = PATH.exec(req.url ?? '');
    if (!m) return false;
    const type = req.headers['content-type'];
    if (type === undefined || !JSON_TYPE.test(type) || req.headers['content-encoding'] !== undefined) return false;
    const length = req.headers['content-length'];
    if (length === undefined || !/^\d{1,4}$/.test(length) || Number(length) > maxBody) return false;
    const start = process.hrtime.bigint();
    Object.setPrototypeOf(req, proto);
    // Plain HTTP in production: Express redirects it.
    if (production && !(req as IncomingMessage & { secure: boolean }).secure) return false;
    void serve(req, res, m[1]!, m[2] as Kind, start);
    return true;
  };
}
