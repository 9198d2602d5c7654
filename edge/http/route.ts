/**
 * Routes are declared once, as data: method, path, who may call, joi schemas and
 * responses. The same declaration mounts the Express handler (with validation and
 * auth in front) and produces the route's OpenAPI operation, so the published
 * spec cannot drift from what the server validates.
 */
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import Joi from 'joi';
import { createRequire } from 'node:module';

// joi-to-swagger is CommonJS (`module.exports = fn`) while its typings declare a
// default export; require() gives the function under both module systems.
const j2s = createRequire(import.meta.url)('joi-to-swagger') as (schema: Joi.Schema) => { swagger: Record<string, unknown> };
import { AppError, forbidden, unauthorized } from '../../lib/errors.js';
import type { AccessClaims } from '../../lib/jwt.js';
import type { Role } from '../../db/tables.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface ResponseSpec {
  description: string;
  schema?: Joi.Schema;
}

export interface RouteContext<B, Q, P> {
  req: Request;
  res: Response;
  body: B;
  query: Q;
  params: P;
  /** Set when the route's `auth` is 'user' (always) or 'optional' (when signed in). */
  user: AccessClaims | undefined;
}

export interface RouteSpec<B = Record<string, never>, Q = Record<string, never>, P = Record<string, never>> {
  method: Method;
  /** Express-style path relative to the router's mount point, e.g. `/auth/login`. */
  path: string;
  summary: string;
  tag: string;
  /** 'user': a valid access token is required; 'none' (default): anyone. */
  auth?: 'none' | 'user';
  roles?: Role[];
  body?: Joi.ObjectSchema<B>;
  query?: Joi.ObjectSchema<Q>;
  params?: Joi.ObjectSchema<P>;
  /** Extra middleware run after auth and before validation (e.g. a rate limit). */
  before?: RequestHandler[];
  /**
   * Takes an Idempotency-Key (API.md: write endpoints that enqueue work): 'stored'
   * by the idempotency middleware (middleware/idempotency.ts), 'self' by the route
   * itself (bids: on the bid row). Either way the spec documents the header.
   */
  idempotent?: 'stored' | 'self';
  responses: Record<number, ResponseSpec>;
  handler: (ctx: RouteContext<B, Q, P>) => Promise<void> | void;
}

// Erases the generics so routes of different shapes can live in one list.
export type AnyRoute = RouteSpec<never, never, never>;

export function defineRoute<B = Record<string, never>, Q = Record<string, never>, P = Record<string, never>>(
  spec: RouteSpec<B, Q, P>,
): RouteSpec<B, Q, P> {
  return spec;
}

export const BODY_OPTIONS: Joi.ValidationOptions = { abortEarly: false, allowUnknown: false, convert: false, stripUnknown: false };
// Query strings and path params are text: they are converted (e.g. "20" → 20) by
// their schema; money in bodies never is.
export const URL_OPTIONS: Joi.ValidationOptions = { abortEarly: false, allowUnknown: false, convert: true };

/**
 * Paths of `__proto__` keys anywhere in a parsed JSON body. joi drops such keys
 * without an error; here they are unknown fields like any other (400). Iterative,
 * so a deeply nested body cannot overflow the stack.
 */
function protoKeyPaths(value: unknown): string[] {
  const found: string[] = [];
  const stack: [unknown, string][] = [[value, 'body']];
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (!v || typeof v !== 'object') continue;
    for (const key of Object.keys(v)) {
      if (key === '__proto__') found.push(`${path}.__proto__`);
      else stack.push([(v as Record<string, unknown>)[key], `${path}.${key}`]);
    }
  }
  return found;
}

export function validatePart<T>(schema: Joi.ObjectSchema<T> | undefined, value: unknown, options: Joi.ValidationOptions, part: string): T {
  if (!schema) {
    const isEmpty = value === undefined || (typeof value === 'object' && value !== null && Object.keys(value).length === 0);
    if (!isEmpty && part !== 'params') {
      throw new AppError('validation_failed', `this endpoint takes no ${part}`);
    }
    return {} as T;
  }
  if (part === 'body' && (value === undefined || value === null)) {
    throw new AppError('validation_failed', 'a JSON body is required (Content-Type: application/json)');
  }
  if (part === 'body') {
    const protoKeys = protoKeyPaths(value);
    if (protoKeys.length) {
      throw new AppError('validation_failed', 'body is not valid', protoKeys.map((path) => ({ path, message: 'is not allowed' })));
    }
  }
  const { value: out, error } = schema.validate(value ?? {}, options);
  if (error) {
    throw new AppError(
      'validation_failed',
      `${part} is not valid`,
      error.details.map((d) => ({ path: [part, ...d.path].join('.'), message: d.message })),
    );
  }
  return out as T;
}

/**
 * Mounts each route on `router` with auth, role and validation middleware, and
 * `idempotency` in front of the routes whose keys it stores.
 */
export function mountRoutes(router: Router, routes: AnyRoute[], idempotency?: RequestHandler): void {
  for (const route of routes) {
    const guard: RequestHandler = (req, res, next) => {
      // The route's pattern for the request metrics: read at 'finish', req.baseUrl
      // is no longer this router's when the request left it with an error.
      res.locals.routePattern = `${req.baseUrl}${route.path}`;
      if (route.auth === 'user' || route.roles) {
        if (!req.user) return next(unauthorized());
        if (route.roles && !route.roles.includes(req.user.role)) return next(forbidden('your role may not do this'));
      }
      next();
    };
    const run = async (req: Request, res: Response, next: NextFunction) => {
      try {
        const body = validatePart(route.body, req.body, BODY_OPTIONS, 'body');
        const query = validatePart(route.query, req.query, URL_OPTIONS, 'query');
        const params = validatePart(route.params, req.params, URL_OPTIONS, 'params');
        await route.handler({ req, res, body, query, params, user: req.user });
      } catch (err) {
        next(err);
      }
    };
    const keyed = route.idempotent === 'stored' && idempotency ? [idempotency] : [];
    router[route.method](route.path, guard, ...(route.before ?? []), ...keyed, run);
  }
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        details: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
  },
};

type OpenApiParam = { name: string; in: 'path' | 'query' | 'header'; required: boolean; schema: unknown; description?: string };

const IDEMPOTENCY_HEADER: OpenApiParam = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  schema: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,200}$' },
  description:
    'The same key from the same user (for a day) returns the first response (Idempotent-Replayed: true) and never does the work twice; ' +
    'the same key with another method, path or body is 409, and so is a retry while the first request still runs.',
};

function paramsOf(schema: Joi.ObjectSchema | undefined, where: 'path' | 'query'): OpenApiParam[] {
  if (!schema) return [];
  const { swagger } = j2s(schema) as { swagger: { properties?: Record<string, { description?: string }>; required?: string[] } };
  return Object.entries(swagger.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (swagger.required ?? []).includes(name),
    schema: s,
    ...(s.description ? { description: s.description } : {}),
  }));
}

/** The OpenAPI path (`/auctions/{id}`) of an Express path (`/auctions/:id`). */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** Adds each route's operation to `paths`, under `basePath`. */
export function addOperations(paths: Record<string, Record<string, unknown>>, basePath: string, routes: AnyRoute[]): void {
  for (const r of routes) {
    const p = openApiPath(basePath + r.path);
    const responses: Record<string, unknown> = {};
    for (const [status, spec] of Object.entries(r.responses)) {
      const content = spec.schema ? { 'application/json': { schema: j2s(spec.schema).swagger } } : undefined;
      responses[status] = { description: spec.description, ...(content ? { content } : {}) };
    }
    if (r.body) responses['400'] ??= { description: 'validation_failed', content: { 'application/json': { schema: ERROR_SCHEMA } } };
    if (r.auth === 'user' || r.roles) responses['401'] ??= { description: 'unauthorized', content: { 'application/json': { schema: ERROR_SCHEMA } } };
    if (r.roles) responses['403'] ??= { description: 'forbidden', content: { 'application/json': { schema: ERROR_SCHEMA } } };
    responses['429'] ??= { description: 'rate_limited (with Retry-After)', content: { 'application/json': { schema: ERROR_SCHEMA } } };
    paths[p] ??= {};
    paths[p][r.method] = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method}${p.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      ...(r.auth === 'user' || r.roles ? { security: [{ bearerAuth: [] }] } : {}),
      ...(r.roles ? { description: `Roles: ${r.roles.join(', ')}` } : {}),
      parameters: [...paramsOf(r.params, 'path'), ...paramsOf(r.query, 'query'), ...(r.idempotent ? [IDEMPOTENCY_HEADER] : [])],
      ...(r.body ? { requestBody: { required: true, content: { 'application/json': { schema: j2s(r.body).swagger } } } } : {}),
      responses,
    };
  }
}

export { ERROR_SCHEMA };
