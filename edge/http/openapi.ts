import type { AnyRoute } from './route.js';
import { addOperations, ERROR_SCHEMA } from './route.js';

export const API_BASE = '/api/v1';

/** The OpenAPI 3 document: generated from the route declarations, plus the ops endpoints. */
export function buildOpenApi(apiRoutes: AnyRoute[]): object {
  const paths: Record<string, Record<string, unknown>> = {};
  addOperations(paths, API_BASE, apiRoutes);
  const plain = (summary: string, tag = 'operations') => ({ summary, tags: [tag], responses: { 200: { description: 'ok' } } });
  paths['/healthz'] = { get: plain('The process is up') };
  paths['/readyz'] = {
    get: { ...plain('Postgres and Redis are reachable'), responses: { 200: { description: 'ready' }, 503: { description: 'not ready' } } },
  };
  paths['/metrics'] = { get: plain('Prometheus metrics (text format)') };
  paths['/.well-known/jwks.json'] = { get: plain('RS256 public keys that verify access tokens', 'auth') };
  paths['/openapi.json'] = { get: plain('This document') };
  paths['/admin/queues'] = { get: { ...plain('Bull Board (admins: Bearer token or the /admin/login cookie)'), responses: { 200: { description: 'html' }, 302: { description: 'to /admin/login' }, 401: { description: 'unauthorized' }, 403: { description: 'forbidden' } } } };
  return {
    openapi: '3.0.3',
    info: {
      title: 'Blytz.live API',
      version: '1.0.0',
      description:
        'Live auction marketplace. Errors use the envelope {error: {code, message, details?}}. Money is integer minor units.\n\n' +
        'WebSocket (ws://host:WS_PORT/ws, frames as in API.md). Beyond API.md: `{type: "unsubscribed", auctionId}` answers an unsubscribe ' +
        '(no event of that auction follows it); `error` codes are bad_frame, unknown_type, rate_limited, already_subscribed, not_subscribed, ' +
        'too_many_subscriptions, not_found, unavailable, and for chat.send unauthorized, blocked, banned and chat_closed; a signed-in socket whose session has ended is closed with 4401.',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (RS256)' } },
      schemas: { Error: ERROR_SCHEMA },
    },
    paths,
  };
}
