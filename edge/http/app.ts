/**
 * createApp(deps) builds the edge's Express app and never listens: main.ts and
 * the tests do that. The order of middleware is the order a request meets them.
 */
import express, { Router, type Request } from 'express';
import cookieParser from 'cookie-parser';
import { pinoHttp } from 'pino-http';
import type { EdgeDeps } from './deps.js';
import { assignRequestId, requestLogLevel } from './request-id.js';
import { authenticate, createPassport } from './middleware/authenticate.js';
import { errorHandler, notFoundHandler, refuseInvalidUtf8 } from './middleware/error-handler.js';
import { limiter } from './middleware/rate-limit.js';
import { requestMetrics } from './middleware/request-metrics.js';
import { corsPolicy, securityHeaders } from './middleware/security.js';
import { idempotency } from './middleware/idempotency.js';
import { mountRoutes, type AnyRoute } from './route.js';
import { API_BASE, buildOpenApi } from './openapi.js';
import { opsRouter } from './routes/ops.js';
import { authRoutes } from './routes/auth.js';
import { notificationRoutes } from './routes/notifications.js';
import { adminUserRoutes } from './routes/admin-users.js';
import { catalogRoutes } from './routes/catalog.js';
import { auctionRoutes } from './routes/auctions.js';
import { chatRoutes } from './routes/chat.js';
import compression from 'compression';
import { adminRouter } from './admin/bull-board.js';

const UNLIMITED_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** Every API route declaration, in one list (the OpenAPI spec is made from it). */
export function apiRoutes(deps: EdgeDeps): AnyRoute[] {
  return [...authRoutes(deps), ...catalogRoutes(deps), ...auctionRoutes(deps), ...chatRoutes(deps), ...notificationRoutes(deps), ...adminUserRoutes(deps)];
}

export function createApp(deps: EdgeDeps) {
  const { config } = deps;
  const app = express();
  app.disable('x-powered-by');
  // The hop count of trusted proxies, never `true` (X-Forwarded-For is spoofable).
  app.set('trust proxy', config.trustProxyHops);
  app.set('etag', 'strong');

  app.use(
    pinoHttp({
      logger: deps.logger,
      genReqId: assignRequestId,
      autoLogging: { ignore: (req) => UNLIMITED_PATHS.has(req.url ?? '') },
      customLogLevel: (_req, res, err) => requestLogLevel(res.statusCode, Boolean(err)),
    }),
  );
  app.use(requestMetrics(deps.metrics));

  app.use(securityHeaders(config));
  if (config.env === 'production') {
    // Behind the platform's TLS proxy: plain HTTP is redirected (health checks excepted).
    // After helmet, so the redirect carries the security headers too.
    app.use((req, res, next) => {
      if (req.secure || UNLIMITED_PATHS.has(req.path)) return next();
      res.redirect(308, `https://${req.headers.host ?? 'localhost'}${req.originalUrl}`);
    });
  }
  app.use(corsPolicy(config));

  // "/auth/* 20 requests a minute, everything else 100" (API.md): the auth routes
  // have the auth budget only (below), matched as the router mounts them (case-insensitive).
  const authPath = new RegExp(`^${API_BASE}/auth(/|$)`, 'i');
  const skipGeneral = (req: Request) => UNLIMITED_PATHS.has(req.path) || req.path.startsWith('/admin/queues') || authPath.test(req.path);
  app.use(limiter(deps, 'ip', config.rateLimits.generalPerMinute, 'ip', { skip: skipGeneral }));

  // Health, metrics, keys and docs: before authentication, so a stale token a
  // client happens to send never fails a health check or a key fetch.
  const routes = apiRoutes(deps);
  let spec: object | undefined;
  app.use(opsRouter(deps, () => (spec ??= buildOpenApi(routes))));

  // gzip for responses over 1 kB when the client accepts it (catalog pages).
  // (Mounted for GET only: wrapping every bid's response costs CPU for nothing.)
  const gzip = compression({ threshold: 1024 });
  app.use((req, res, next) => (req.method === 'GET' ? gzip(req, res, next) : next()));
  app.use(express.json({ limit: config.bodyLimit, strict: true, verify: refuseInvalidUtf8 }));
  // Cookies matter to the operators' console only.
  app.use('/admin', cookieParser());
  app.use(authenticate(createPassport(config, deps.keys)));
  // Bids and auto-bids have a per-user limit of their own (RATE_LIMIT_BIDS_PER_MIN)
  // in place of this one: one Redis round trip less on the hottest path.
  const ownUserLimit = (req: Request) => !req.user || /^\/api\/v1\/auctions\/[^/]+\/(bid|autobid)$/.test(req.path);
  app.use(limiter(deps, 'user', config.rateLimits.userPerMinute, 'user', { skip: ownUserLimit }));

  app.use(adminRouter(deps));

  const api = Router();
  api.use('/auth', limiter(deps, 'auth', config.rateLimits.authPerMinute, 'ip'));
  mountRoutes(api, routes, idempotency(deps));
  app.use(API_BASE, api);

  app.use(notFoundHandler);
  app.use(errorHandler(deps));
  return app;
}

