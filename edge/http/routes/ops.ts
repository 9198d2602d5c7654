import { Router, type RequestHandler } from 'express';
import { metricsAllowed } from '../../../lib/metrics-token.js';
import swaggerUi from 'swagger-ui-express';
import type { EdgeDeps } from '../deps.js';
import { AppError } from '../../../lib/errors.js';
import { readiness } from '../../../lib/readiness.js';

/** /healthz, /readyz, /metrics, /.well-known/jwks.json, /openapi.json and /docs. */
export function opsRouter(deps: EdgeDeps, spec: () => object): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const { ok, checks } = await readiness(deps);
    const ready = ok && !deps.state.shuttingDown;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', checks, shuttingDown: deps.state.shuttingDown });
  });
  const metricsAuth: RequestHandler = (req, _res, next) => {
    if (metricsAllowed(deps.config, req.headers.authorization)) return next();
    next(new AppError('unauthorized', 'metrics token required'));
  };
  router.get('/metrics', metricsAuth, async (_req, res) => {
    res.setHeader('Content-Type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });
  router.get('/.well-known/jwks.json', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.json({ keys: deps.keys.jwks });
  });
  router.get('/openapi.json', (_req, res) => {
    res.json(spec());
  });
  router.use('/docs', swaggerUi.serveFiles(undefined, { swaggerUrl: '/openapi.json' }), swaggerUi.setup(undefined, {
    swaggerUrl: '/openapi.json',
    customSiteTitle: 'Blytz.live API',
  }));
  return router;
}
